"""``deepaas-host remote …``: use a running host through :mod:`deepaas_host.client`.

The host is named by ``--url`` (and ``--token``) or by ``--profile NAME`` from a
profile file (``--profiles-file``, else ``deepaas-host.ini`` in the current or the
home folder); flags win over the profile. Without either, a profile called
``default`` is used when one exists.

Model arguments of ``predict`` and ``train`` are written as for the local
commands: ``--name value`` (``--name=value``), repeated for a list, ``--flag``
alone for true, ``@path`` for a file.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deepaas_host.client import Client

__all__ = ["add_parser", "parse_model_arguments", "run"]

# The client (and requests) is imported when a remote command runs, not whenever
# the ``deepaas-host`` parser is built.
_AUTH_TYPES = ("bearer", "standalone")


def add_parser(subparsers: Any) -> None:
    """Add ``remote`` and its subcommands to the ``deepaas-host`` parser."""
    remote = subparsers.add_parser(
        "remote",
        help="use a running host: models, versions, upload, download, predict, train",
        description="Use a running deepaas-host over HTTP, by URL or by profile.",
    )
    commands = remote.add_subparsers(dest="remote_command", required=True, metavar="COMMAND")

    connection = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    where = connection.add_argument_group("host")
    where.add_argument("--profile", metavar="NAME", help="profile of a profile file")
    where.add_argument(
        "--profiles-file",
        metavar="PATH",
        help="profile file, or folder holding deepaas-host.ini (then ./ and ~/ are searched)",
    )
    where.add_argument("--url", help="URL of the host, with its base path (overrides the profile)")
    where.add_argument("--token", help="access token (overrides the profile)")
    where.add_argument("--auth-type", choices=_AUTH_TYPES, help="how the token is sent")
    where.add_argument("--timeout", type=float, metavar="SECONDS", help="per request (30)")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = commands.add_parser(
            name, help=help, description=help, parents=[connection], allow_abbrev=False
        )
        return p

    models = command("models", "list the models the host serves")
    models.add_argument("--json", action="store_true", help="print JSON")

    versions = command("versions", "list the versions of a model")
    versions.add_argument("model")
    versions.add_argument("--json", action="store_true", help="print JSON")

    upload = command("upload", "upload a file as a version of a model")
    upload.add_argument("model")
    upload.add_argument("file", type=Path)
    upload.add_argument("--engine", required=True, help="onnx, pickle, joblib, river, custom, …")
    upload.add_argument("--version", help="version name (the host makes one up otherwise)")
    upload.add_argument("--description")
    upload.add_argument("--force", action="store_true", help="replace an existing version")

    download = command("download", "download the file of a version (resumes, verifies)")
    download.add_argument("model")
    download.add_argument("version")
    download.add_argument("-o", "--output", metavar="PATH", help="file or folder")
    download.add_argument("--no-resume", dest="resume", action="store_false")

    predict = command("predict", "run a prediction; model arguments as --name value")
    predict.add_argument("model")
    predict.add_argument("--version", help="version of the model (its default otherwise)")
    predict.add_argument("-o", "--output", metavar="FILE", help="write the answer to FILE")

    train = command("train", "start a training job; model arguments as --name value")
    train.add_argument("model")
    train.add_argument("--wait", action="store_true", help="wait for the job to end")

    job = command("job", "show a training job")
    job.add_argument("model")
    job.add_argument("job_id")
    job.add_argument("--wait", action="store_true", help="wait for the job to end")

    cancel = command("cancel", "cancel a training job")
    cancel.add_argument("model")
    cancel.add_argument("job_id")


def parse_model_arguments(tokens: Sequence[str]) -> dict[str, Any]:
    """``--name value`` pairs into keyword arguments: repeats make lists, ``--flag``
    alone is true, ``@path`` is a file to upload."""
    values: dict[str, list[Any]] = {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("--") or token == "--":
            raise ValueError(
                f"Unexpected argument {token!r}; give model arguments as --name value."
            )
        name, eq, text = token[2:].partition("=")
        value: Any = text
        if not eq:
            following = tokens[i + 1] if i + 1 < len(tokens) else None
            if following is None or following.startswith("--"):
                value = True
            else:
                value = following
                i += 1
        if isinstance(value, str) and value.startswith("@"):
            path = Path(value[1:]).expanduser()
            if not path.is_file():
                raise ValueError(f"Argument {name!r}: no such file {str(path)!r}.")
            value = path
        values.setdefault(name, []).append(value)
        i += 1
    return {name: items[0] if len(items) == 1 else items for name, items in values.items()}


def _client(args: argparse.Namespace) -> Client:
    from deepaas_host.client import ProfileError, create_client_from_token, load_profile

    profile = None
    if args.profile:
        profile = load_profile(args.profile, args.profiles_file)
    elif not args.url:
        try:
            profile = load_profile("default", args.profiles_file)
        except ProfileError as exc:
            raise ProfileError(
                f"Name the host with --url or --profile (no [default] profile either: {exc})"
            ) from exc
    url = args.url or (profile.url if profile else "")
    token = args.token if args.token is not None else (profile.token if profile else None)
    auth_type = args.auth_type or (profile.auth_type if profile else _AUTH_TYPES[0])
    download_path = profile.download_path if profile else None
    options: dict[str, Any] = {}
    if args.timeout is not None:
        options["timeout"] = args.timeout
    return create_client_from_token(url, token, auth_type, download_path, **options)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _table(rows: Iterable[Sequence[str]]) -> None:
    rows = list(rows)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _size(value: Any) -> str:
    if not isinstance(value, int):
        return "?"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(value)


def _models(client: Client, args: argparse.Namespace) -> int:
    models = client.get_models()
    if args.json:
        _print_json(models)
        return 0
    rows = [("NAME", "VERSION", "DESCRIPTION")]
    for m in models:
        text = str(m.get("description") or "").splitlines()[0] if m.get("description") else ""
        rows.append((str(m.get("name", "")), str(m.get("version", "")), text[:70]))
    _table(rows)
    return 0


def _versions(client: Client, args: argparse.Namespace) -> int:
    versions = client.get_versions(args.model)
    if args.json:
        _print_json(versions)
        return 0
    if not versions:
        print(f"Model {args.model!r} has no versions.")
        return 0
    rows = [("VERSION", "ENGINE", "SIZE", "CREATED", "SOURCE", "STATE")]
    for v in versions:
        state = ", ".join(s for s in ("default", "loaded") if v.get(s))
        rows.append(
            (
                str(v.get("name", "")),
                str(v.get("engine", "")),
                _size(v.get("size")),
                str(v.get("created", "")),
                str(v.get("source", "")),
                state,
            )
        )
    _table(rows)
    return 0


def _predict(client: Client, args: argparse.Namespace, extra: Sequence[str]) -> int:
    answer = client.predict(
        args.model, args.version, output=args.output, arguments=parse_model_arguments(extra)
    )
    if isinstance(answer, Path):
        print(f"wrote {answer.stat().st_size} bytes to {answer}", file=sys.stderr)
    elif isinstance(answer, bytes):
        if sys.stdout.isatty():
            raise ValueError(f"The answer is binary ({len(answer)} bytes); save it with -o FILE.")
        sys.stdout.buffer.write(answer)
    elif args.output:
        Path(args.output).write_text(json.dumps(answer, indent=2, ensure_ascii=False) + "\n")
    else:
        _print_json(answer)
    return 0


def _finish(client: Client, model: str, job: dict[str, Any], wait: bool) -> int:
    if wait:
        job = client.wait_for_training(model, str(job["id"]))
    _print_json(job)
    return 0 if not wait or job.get("status") == "done" else 1


def _dispatch(client: Client, args: argparse.Namespace, extra: Sequence[str]) -> int:
    command = args.remote_command
    if command == "models":
        return _models(client, args)
    if command == "versions":
        return _versions(client, args)
    if command == "upload":
        _print_json(
            client.add_model(
                args.model,
                args.engine,
                args.file,
                description=args.description,
                force=args.force,
                version=args.version,
            )
        )
        return 0
    if command == "download":
        print(client.download(args.model, args.version, args.output, resume=args.resume))
        return 0
    if command == "predict":
        return _predict(client, args, extra)
    if command == "train":
        job = client.train(args.model, arguments=parse_model_arguments(extra))
        return _finish(client, args.model, job, args.wait)
    if command == "job":
        return _finish(client, args.model, client.train_status(args.model, args.job_id), args.wait)
    _print_json(client.cancel_training(args.model, args.job_id))
    return 0


def run(args: argparse.Namespace, extra: Sequence[str] = ()) -> int:
    """Run ``deepaas-host remote …``; ``extra`` holds the model arguments of
    ``predict`` and ``train``. Errors are printed; the exit status says what failed
    (1 the host or the connection, 2 the command line, arguments or profile)."""
    from deepaas_host.client import ClientError, HostError, ProfileError, ValidationError

    if extra and args.remote_command not in ("predict", "train"):
        print(f"deepaas-host remote: unrecognized arguments: {' '.join(extra)}", file=sys.stderr)
        return 2
    try:
        with _client(args) as client:
            return _dispatch(client, args, extra)
    except ValidationError as exc:
        print(f"deepaas-host remote: {exc}", file=sys.stderr)
        for name, messages in exc.fields.items():
            print(f"  {name}: {' '.join(messages)}", file=sys.stderr)
        return 2
    except HostError as exc:
        print(f"deepaas-host remote: {exc}", file=sys.stderr)
        return 1
    except (ProfileError, ValueError, FileNotFoundError) as exc:
        print(f"deepaas-host remote: {exc}", file=sys.stderr)
        return 2
    except ClientError as exc:
        print(f"deepaas-host remote: {exc}", file=sys.stderr)
        return 1
