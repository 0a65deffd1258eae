"""``deepaas-host token create|list|revoke`` as a user runs it."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .conftest import create_token, token_cli

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_create_prints_the_token_alone_on_stdout(tmp_path: Path) -> None:
    result = token_cli(tmp_path, "create", "--scope", "manage", "--name", "ops")
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"dh_[A-Za-z0-9_-]{43}\n", result.stdout)
    assert re.fullmatch(
        r"token [0-9a-f]{8} \(scope manage, name 'ops'\) created; "
        r"store it now, it is not shown again\n",
        result.stderr,
    )


def test_create_list_and_revoke(tmp_path: Path) -> None:
    assert token_cli(tmp_path, "list").stdout.startswith("No access tokens")
    assert json.loads(token_cli(tmp_path, "list", "--json").stdout) == []

    reader = create_token(tmp_path, "predict", "reader")
    anonymous = create_token(tmp_path, "manage")
    assert reader["scope"] == "predict"
    assert ISO.match(reader["created"])
    assert (reader["last_used"], reader["revoked"]) == (None, None)
    assert anonymous["name"] == ""
    assert reader["token"] != anonymous["token"]

    revoked = token_cli(tmp_path, "revoke", anonymous["id"])
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.startswith(f"token {anonymous['id']} revoked at ")

    listed = json.loads(token_cli(tmp_path, "list", "--json").stdout)
    assert [t["id"] for t in listed] == [reader["id"], anonymous["id"]]
    assert "token" not in listed[0]
    assert listed[0]["revoked"] is None
    assert ISO.match(listed[1]["revoked"])

    table = token_cli(tmp_path, "list").stdout.splitlines()
    assert table[0].split() == ["ID", "NAME", "SCOPE", "CREATED", "LAST", "USED", "REVOKED"]
    assert table[1].split()[:3] == [reader["id"], "reader", "predict"]
    assert table[1].endswith("-")
    assert table[2].split()[:3] == [anonymous["id"], "-", "manage"]
    assert not table[2].endswith("-")


def test_errors_are_one_clear_line(tmp_path: Path) -> None:
    create_token(tmp_path, "predict", "ci")
    taken = token_cli(tmp_path, "create", "--scope", "manage", "--name", "ci")
    assert taken.returncode == 1
    assert taken.stderr == (
        "deepaas-host: An active token is already named 'ci'; revoke it or choose another name.\n"
    )
    unknown = token_cli(tmp_path, "revoke", "nope")
    assert unknown.returncode == 1
    assert unknown.stderr == "deepaas-host: No access token has the id or name 'nope'.\n"
    bad_scope = token_cli(tmp_path, "create", "--scope", "admin")
    assert bad_scope.returncode == 2
    assert "invalid choice: 'admin'" in bad_scope.stderr


def test_the_config_file_or_data_dir_names_the_database(tmp_path: Path) -> None:
    data_dir = tmp_path / "from-file"
    config = tmp_path / "host.toml"
    config.write_text(f'data_dir = "{data_dir}"\n')
    created = token_cli(None, "create", "--scope", "predict", "--config", str(config))
    assert created.returncode == 0, created.stderr
    assert (data_dir / "deepaas-host.db").exists()
    assert len(json.loads(token_cli(data_dir, "list", "--json").stdout)) == 1
    # --data-dir wins over the file, as for ``run``.
    other = token_cli(tmp_path / "other", "list", "--json", "--config", str(config))
    assert json.loads(other.stdout) == []
