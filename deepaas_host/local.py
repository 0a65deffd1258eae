"""Run one prediction or training in this process, through the same validation
as the HTTP routes (``deepaas-host predict`` / ``deepaas-host train``)."""

from __future__ import annotations

import json
import mimetypes
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import marshmallow
from multidict import MultiDict

from deepaas_host.errors import ArgumentError, HostError, ModelError
from deepaas_host.model.arguments import ArgumentSpec, merge_arguments
from deepaas_host.model.discovery import load_plugins, quiet_legacy_warnings
from deepaas_host.model.failures import refusal_of
from deepaas_host.model.outputs import Outcome, OutputError, dumps, render_output
from deepaas_host.model.v2 import UploadedFile, reporting_progress_to
from deepaas_host.model.wrapper import ModelWrapper

__all__ = ["parse_cli_arguments", "run_local"]


def parse_cli_arguments(spec: ArgumentSpec, tokens: Sequence[str]) -> dict[str, Any]:
    """``--name value`` pairs (``--name=value`` too, repeatable for lists; ``@path``
    for files, ``--flag`` alone for true) validated against ``spec``."""
    raw: MultiDict[Any] = MultiDict()
    items = list(tokens)
    i = 0
    while i < len(items):
        token = items[i]
        if not token.startswith("--") or token == "--":
            raise ArgumentError(f"Unexpected argument {token!r}; use --name value.")
        name, eq, value = token[2:].partition("=")
        name = name.replace("-", "_") if name.replace("-", "_") in spec.fields else name
        if not eq:
            nxt = items[i + 1] if i + 1 < len(items) else None
            if nxt is None or nxt.startswith("--"):
                value = "true"
            else:
                value = nxt
                i += 1
        i += 1
        if name in spec.file_fields:
            if not value.startswith("@"):
                raise ArgumentError(
                    f"Invalid arguments: {name}.",
                    details={name: [f"Give a file as @path, not {value!r}."]},
                )
            path = Path(value[1:]).expanduser()
            if not path.is_file():
                raise ArgumentError(
                    f"Invalid arguments: {name}.",
                    details={name: [f"No such file: {path}"]},
                )
            ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            raw.add(name, UploadedFile(name, str(path.resolve()), ctype, path.name))
        else:
            raw.add(name, value)
    try:
        with quiet_legacy_warnings():
            return spec.load(merge_arguments(raw, {}, spec.schema))
    except marshmallow.ValidationError as exc:
        messages = exc.normalized_messages()  # type: ignore[no-untyped-call]
        names = ", ".join(sorted(messages)) if isinstance(messages, dict) else ""
        raise ArgumentError(f"Invalid arguments: {names}.", details=messages) from exc


def _progress(fraction: float | None, message: str) -> None:
    if sys.stderr.isatty():
        pct = "  ?%" if fraction is None else f"{fraction * 100:5.1f}%"
        bar = "#" * int((fraction or 0) * 30)
        sys.stderr.write(f"\r[{bar:<30}] {pct} {message[:60]:<60}")
        if fraction is not None and fraction >= 1:
            sys.stderr.write("\n")
    else:
        pct = "?" if fraction is None else f"{fraction * 100:.0f}%"
        sys.stderr.write(f"progress {pct} {message}\n")
    sys.stderr.flush()


def run_local(
    model_name: str,
    method: str,
    tokens: Sequence[str],
    *,
    output: str | None = None,
    warm: bool = True,
) -> int:
    """Load ``model_name``, validate ``tokens`` and run ``method``; print the result."""
    loaded, _ = load_plugins([model_name])
    wrapper = ModelWrapper.from_plugin(loaded[0])
    spec = wrapper.predict_args if method == "predict" else wrapper.train_args
    if spec is None:
        raise HostError(f"Model {model_name!r} does not support training.")
    kwargs = parse_cli_arguments(spec, tokens)
    model = loaded[0].model
    if warm and callable(getattr(model, "warm", None)):
        with quiet_legacy_warnings():
            model.warm()
    try:
        if method == "train":
            with reporting_progress_to(_progress):
                result = model.train(**kwargs)
            outcome = Outcome("json", "application/json", body=dumps(result))
        else:
            result = model.predict(**kwargs)
            outcome = render_output(
                result,
                accept=kwargs.get("accept") if spec.accept else None,
                schema=wrapper.response_schema,
            )
    except OutputError as exc:
        raise HostError(str(exc), details=exc.details) from exc
    except Exception as exc:
        refusal = refusal_of(exc, model_name)
        if refusal is not None:
            raise ArgumentError(refusal.message, details=refusal.details) from exc
        raise ModelError(type(exc).__name__, str(exc), model=model_name) from exc
    return _emit(outcome, output)


def _emit(outcome: Outcome, output: str | None) -> int:
    if outcome.kind == "json":
        text = json.dumps(json.loads(outcome.body), indent=2, ensure_ascii=False) + "\n"
        if output:
            Path(output).write_text(text)
        else:
            sys.stdout.write(text)
        return 0
    data = (
        Path(outcome.path).read_bytes() if outcome.kind == "path" and outcome.path else outcome.body
    )
    if output:
        Path(output).write_bytes(data)
        sys.stderr.write(f"wrote {len(data)} bytes ({outcome.media_type}) to {output}\n")
        return 0
    if sys.stdout.isatty():
        raise HostError(
            f"The answer is {outcome.media_type} ({len(data)} bytes); save it with -o FILE."
        )
    sys.stdout.buffer.write(data)
    return 0
