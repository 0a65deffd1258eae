"""``deepaas-host token create|list|revoke``: manage the access tokens of a data directory.

The commands open the same database as ``deepaas-host run`` with the same
``--data-dir`` / ``--config`` / ``DEEPAAS_HOST_*`` settings; a running host
notices a change within a few seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from deepaas_host.auth.scopes import Scope
from deepaas_host.settings import Settings

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    """Add ``token`` and its subcommands to the ``deepaas-host`` parser."""
    token = subparsers.add_parser(
        "token",
        help="create, list and revoke access tokens",
        description="Access tokens for the HTTP API, stored hashed in the data directory.",
    )
    commands = token.add_subparsers(dest="token_command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = commands.add_parser(name, help=help, description=help)
        p.add_argument("--config", metavar="FILE", help="TOML settings file")
        p.add_argument(
            "--data-dir",
            metavar="DIR",
            help="data directory of the host (default ~/.local/share/deepaas-host)",
        )
        return p

    create = command("create", "create a token and print it (it is shown only this once)")
    create.add_argument(
        "--scope",
        required=True,
        choices=[s.value for s in Scope],
        help="predict: metadata, predict, learn; manage: everything",
    )
    create.add_argument("--name", default="", help="a name to recognise and revoke it by")
    create.add_argument("--json", action="store_true", help="print JSON")

    listing = command("list", "list tokens, revoked ones too (never the tokens themselves)")
    listing.add_argument("--json", action="store_true", help="print JSON")

    revoke = command("revoke", "revoke a token by id or name")
    revoke.add_argument("token", metavar="ID_OR_NAME")


def run(args: argparse.Namespace) -> int:
    """Run ``deepaas-host token …``; errors propagate as ``HostError``/``SettingsError``."""
    settings = Settings.load({"data_dir": args.data_dir}, config_file=args.config)
    return asyncio.run(_run(args, settings.db_url))


async def _run(args: argparse.Namespace, url: str) -> int:
    from deepaas_host.store.tokens import TokenStore

    async with await TokenStore.open(url) as store:
        if args.token_command == "create":
            record, token = await store.create(Scope(args.scope), args.name)
            if args.json:
                print(json.dumps({**record.to_dict(), "token": token}, indent=2))
            else:
                print(token)
                named = f", name {record.name!r}" if record.name else ""
                print(
                    f"token {record.id} (scope {record.scope}{named}) created; "
                    "store it now, it is not shown again",
                    file=sys.stderr,
                )
        elif args.token_command == "list":
            records = [r.to_dict() for r in await store.list()]
            if args.json:
                print(json.dumps(records, indent=2))
            else:
                _print_table(records)
        else:
            record = await store.revoke(args.token)
            named = f" ({record.name!r})" if record.name else ""
            print(
                f"token {record.id}{named} revoked at {_short(record.to_dict()['revoked'])}; "
                "running hosts refuse it within seconds"
            )
    return 0


def _print_table(records: list[dict[str, Any]]) -> None:
    if not records:
        print("No access tokens (create one with: deepaas-host token create --scope …).")
        return
    rows = [("ID", "NAME", "SCOPE", "CREATED", "LAST USED", "REVOKED")]
    for r in records:
        rows.append(
            (
                r["id"],
                r["name"] or "-",
                r["scope"],
                _short(r["created"]),
                _short(r["last_used"]),
                _short(r["revoked"]),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _short(moment: str | None) -> str:
    """``2024-05-01T12:30:05.123Z`` → ``2024-05-01 12:30:05Z``; None → ``-``."""
    if moment is None:
        return "-"
    return moment.replace("T", " ").split(".")[0] + "Z"
