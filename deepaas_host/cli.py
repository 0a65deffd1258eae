"""``deepaas-host``: run the server, list plugins, predict/train locally, print the spec."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from deepaas_host import __version__, tokens_cli
from deepaas_host.errors import ArgumentError, HostError
from deepaas_host.settings import Settings, SettingsError

if TYPE_CHECKING:
    from deepaas_host.store.lock import DataDirLock

__all__ = ["build_parser", "main"]

log = logging.getLogger("deepaas_host")


def _add_serving_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML settings file")
    p.add_argument(
        "--model",
        dest="models",
        action="append",
        metavar="NAME",
        help="serve only this plugin (repeatable; default: every plugin)",
    )
    p.add_argument(
        "--skip-broken",
        action="store_const",
        const=True,
        default=None,
        help="serve the plugins that load, report the others",
    )
    p.add_argument("--base-path", metavar="PREFIX", help="prefix of every route, e.g. /models")
    p.add_argument(
        "--no-train",
        dest="train",
        action="store_const",
        const=False,
        default=None,
        help="no training routes",
    )
    p.add_argument(
        "--no-predict",
        dest="predict",
        action="store_const",
        const=False,
        default=None,
        help="no predict routes",
    )
    p.add_argument(
        "--no-docs",
        dest="docs",
        action="store_const",
        const=False,
        default=None,
        help="no OpenAPI document or Swagger UI",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepaas-host",
        description="Serve pip-installed model packages as a documented REST API.",
    )
    parser.add_argument("--version", action="version", version=f"deepaas-host {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the server")
    _add_serving_flags(run)
    run.add_argument("--listen-ip", metavar="IP", help="address to listen on (default 127.0.0.1)")
    run.add_argument("--listen-port", type=int, metavar="PORT", help="port (default 5000)")
    run.add_argument(
        "--workers", type=int, metavar="N", help="predict worker processes (default 1)"
    )
    run.add_argument(
        "--train-workers",
        type=int,
        metavar="N",
        help="concurrent training jobs (default 1)",
    )
    warm = run.add_mutually_exclusive_group()
    warm.add_argument(
        "--warm",
        dest="warm",
        action="store_const",
        const=True,
        default=None,
        help="warm every worker before it serves (default)",
    )
    warm.add_argument(
        "--no-warm", dest="warm", action="store_const", const=False, help="skip warm()"
    )
    run.add_argument("--max-body-size", metavar="SIZE", help="largest request body, e.g. 100M")
    run.add_argument(
        "--queue-size",
        type=int,
        metavar="N",
        help="predict calls that may wait for a worker before 503 (default 256)",
    )
    run.add_argument(
        "--max-loaded-versions",
        type=int,
        metavar="N",
        help="model versions each predict worker keeps loaded, least recently used "
        "released first (default 2)",
    )
    run.add_argument(
        "--data-dir",
        metavar="DIR",
        help="where jobs, versions and uploads live (default ~/.local/share/deepaas-host)",
    )
    run.add_argument(
        "--artifact-url",
        metavar="URL",
        help="where version artifacts live: a directory or an fsspec URL such as "
        "s3://bucket/prefix (default DATA_DIR/artifacts)",
    )
    run.add_argument(
        "--online-workers",
        type=int,
        metavar="N",
        help="processes holding the online models, each model in exactly one (default 1)",
    )
    run.add_argument(
        "--no-online-fsync",
        dest="online_fsync",
        action="store_const",
        const=False,
        default=None,
        help="acknowledge online events once written, without fsync (survives a killed "
        "host, not a power cut)",
    )
    run.add_argument(
        "--snapshot-every",
        type=int,
        metavar="N",
        help="events between snapshots of an online model (default 10000)",
    )
    run.add_argument(
        "--keep-predictions",
        type=int,
        metavar="N",
        help="predictions kept per online model awaiting a label (default 10000)",
    )
    run.add_argument(
        "--keep-seconds",
        type=float,
        metavar="S",
        help="how long a kept prediction awaits its label (default 3600)",
    )
    run.add_argument(
        "--metrics-window",
        type=int,
        metavar="N",
        help="events in the rolling window of online metrics (default 1000)",
    )
    run.add_argument(
        "--keep-bytes",
        metavar="SIZE",
        help="memory of the predictions kept per online model awaiting a label (default 64M)",
    )
    run.add_argument(
        "--max-features",
        type=int,
        metavar="N",
        help="features in one online sample (default 10000)",
    )
    run.add_argument(
        "--max-feature-names",
        type=int,
        metavar="N",
        help="distinct feature names one online model may learn (default 100000)",
    )
    run.add_argument(
        "--allowed-host",
        dest="allowed_hosts",
        action="append",
        metavar="NAME",
        help="a name the Host header may carry besides loopback names and the listen "
        "address (repeatable; '*' accepts any)",
    )
    run.add_argument(
        "--header-timeout",
        type=float,
        metavar="S",
        help="seconds a client has to send a complete request header (default 10)",
    )
    run.add_argument(
        "--body-timeout",
        type=float,
        metavar="S",
        help="seconds a request body may stall before the request fails (default 30)",
    )
    run.add_argument(
        "--keepalive-timeout",
        type=float,
        metavar="S",
        help="idle seconds before a keep-alive connection is closed (default 75)",
    )
    run.add_argument(
        "--max-connections-per-client",
        type=int,
        metavar="N",
        help="open connections per client address, 0 for no cap (default 256)",
    )
    run.add_argument(
        "--version-history-limit",
        type=int,
        metavar="N",
        help="versions produced by training kept per model; the default and pinned "
        "versions are never pruned (default 20)",
    )
    run.add_argument("--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING, ERROR")
    run.add_argument("--log-format", choices=["text", "json"], help="log line format")
    run.add_argument(
        "--insecure",
        action="store_const",
        const=True,
        default=None,
        help="serve without access tokens on an address other than loopback",
    )

    tokens_cli.add_parser(sub)
    sub.add_parser("list", help="list installed plugins without importing them").add_argument(
        "--json", action="store_true", help="print JSON"
    )

    spec = sub.add_parser("openapi", help="print the OpenAPI document")
    _add_serving_flags(spec)

    for name, verb in (
        ("predict", "run one prediction"),
        ("train", "run one training"),
    ):
        p = sub.add_parser(
            name,
            help=f"{verb} locally, arguments as --name value (files as @path)",
            description=f"{verb.capitalize()} in this process with the same validation as "
            "the API. Arguments: --name value, repeat for lists, @path for files.",
        )
        p.add_argument("model", help="plugin name")
        p.add_argument("-o", "--output", metavar="FILE", help="write the answer to FILE")
        p.add_argument("--no-warm", dest="warm", action="store_false", help="skip warm()")
    from deepaas_host import remote_cli

    remote_cli.add_parser(sub)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    names = (
        "listen_ip",
        "listen_port",
        "base_path",
        "models",
        "skip_broken",
        "workers",
        "train_workers",
        "warm",
        "train",
        "predict",
        "docs",
        "max_body_size",
        "queue_size",
        "max_loaded_versions",
        "data_dir",
        "log_level",
        "log_format",
        "insecure",
        "artifact_url",
        "online_workers",
        "online_fsync",
        "snapshot_every",
        "keep_predictions",
        "keep_seconds",
        "metrics_window",
        "keep_bytes",
        "max_features",
        "max_feature_names",
        "allowed_hosts",
        "header_timeout",
        "body_timeout",
        "keepalive_timeout",
        "max_connections_per_client",
        "version_history_limit",
    )
    overrides: dict[str, Any] = {n: getattr(args, n, None) for n in names}
    return Settings.load(overrides, config_file=getattr(args, "config", None))


def _cmd_list(args: argparse.Namespace) -> int:
    from deepaas_host.model.discovery import list_plugins

    plugins = list_plugins()
    if args.json:
        print(json.dumps([p.to_dict() for p in plugins], indent=2))
        return 0
    if not plugins:
        print("No plugins installed (entry points deepaas_host.model.v2 / deepaas.v2.model).")
        return 0
    rows = [("NAME", "NAMESPACE", "DISTRIBUTION", "VERSION", "TARGET")]
    rows += [(p.name, p.namespace, p.distribution, p.version, p.target) for p in plugins]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _cmd_openapi(args: argparse.Namespace) -> int:
    from deepaas_host.api.app import load_all
    from deepaas_host.api.openapi import build_openapi

    settings = _settings(args)
    models, online = load_all(settings)
    print(json.dumps(build_openapi(settings, models.values(), online=online), indent=2))
    return 0


async def _serve(settings: Settings, data_lock: DataDirLock | None = None) -> int:
    from aiohttp import web

    from deepaas_host.api import create_app
    from deepaas_host.api.connections import ConnectionLimits, GuardedSite
    from deepaas_host.api.keys import MODELS, ONLINE_PLUGINS, STARTUP

    app = create_app(settings, data_lock=data_lock)
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=settings.shutdown_timeout,
        keepalive_timeout=settings.keepalive_timeout,
    )
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    code = 0
    try:
        site = GuardedSite(
            runner,
            settings.listen_ip,
            settings.listen_port,
            limits=ConnectionLimits.from_settings(settings),
            reuse_address=True,
        )
        await site.start()
        names = ", ".join(app[MODELS].keys()) or "none"
        online = [p.info.name for p in app[ONLINE_PLUGINS]]
        if online:
            names += f"; online plugins {', '.join(online)}"
        url = f"http://{settings.listen_ip}:{settings.listen_port}{settings.base_path}"
        log.info("serving %s on %s (docs: %s/api)", names, url, url)
        startup = app[STARTUP]
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({startup, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if startup.done() and not startup.cancelled() and startup.exception() is not None:
            log.critical("start-up failed: %s", startup.exception())
            code = 1
        else:
            await stopper
        log.info("shutting down")
    finally:
        await runner.cleanup()
    return code


def _cmd_run(args: argparse.Namespace) -> int:
    from deepaas_host.logs import configure_logging
    from deepaas_host.store.lock import DataDirLock

    settings = _settings(args)
    configure_logging(settings.log_level, settings.log_format)
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    # Before any plugin is imported or any file touched: a second host on this
    # directory leaves at once, naming the first (DataDirectoryInUse, status 1).
    with DataDirLock.acquire(settings.data_dir) as data_lock:
        return int(runner(_serve(settings, data_lock)))


def _cmd_local(args: argparse.Namespace, rest: Sequence[str]) -> int:
    from deepaas_host.local import run_local

    return run_local(args.model, args.command, rest, output=args.output, warm=args.warm)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and args.command not in ("predict", "train", "remote"):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "list":
            return _cmd_list(args)
        if args.command == "token":
            return tokens_cli.run(args)
        if args.command == "remote":
            from deepaas_host import remote_cli

            return remote_cli.run(args, rest)
        if args.command == "openapi":
            return _cmd_openapi(args)
        return _cmd_local(args, rest)
    except SettingsError as exc:
        print(f"deepaas-host: configuration error: {exc}", file=sys.stderr)
        return 2
    except ArgumentError as exc:
        print(f"deepaas-host: {exc.message}", file=sys.stderr)
        if isinstance(exc.details, dict):
            for name, messages in exc.details.items():
                print(
                    f"  {name}: {' '.join(map(str, _flatten(messages)))}",
                    file=sys.stderr,
                )
        return 2
    except HostError as exc:
        print(f"deepaas-host: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``deepaas-host list | head``): not an error.
        sys.stderr.close()
        return 0


def _flatten(messages: Any) -> list[Any]:
    if isinstance(messages, list):
        return messages
    if isinstance(messages, dict):
        return [f"{k}: {v}" for k, v in messages.items()]
    return [messages]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
