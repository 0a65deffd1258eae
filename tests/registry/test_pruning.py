"""Trained versions are bounded like job history; pinned, default and uploaded ones stay."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Host, cli

from deepaas_host.client import BearerTokenAuth, Client, VersionNotFound

DEMO = "/v2/models/demo"


def train(host: Host, **headers: str) -> str:
    """Run one demo training to its end; the version it registered."""
    accepted = host.post(f"{DEMO}/train/", data={"epochs": 1, "duration": 0}, headers=headers)
    assert accepted.status_code == 202, accepted.text
    deadline = time.monotonic() + 60
    while (record := host.get(f"{DEMO}/train/{accepted.json()['id']}", headers=headers).json())[
        "status"
    ] in ("queued", "running"):
        assert time.monotonic() < deadline, record
        time.sleep(0.05)
    assert record["status"] == "done", record
    name: str = record["version"]
    return name


def versions(host: Host) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in host.get(f"{DEMO}/versions/").json()["versions"]}


def artifacts(host: Host) -> list[Path]:
    return list((host.data_dir / "artifacts" / "demo").iterdir())


def test_old_trained_versions_are_pruned_but_never_pinned_default_or_uploaded(
    start_host: Callable[..., Host],
) -> None:
    host = start_host(["--model", "demo", "--workers", "1", "--version-history-limit", "2"])
    uploaded = host.post(
        f"{DEMO}/versions/",
        data={"engine": "custom", "version": "mine"},
        files={"file": ("mine.json", json.dumps({"tag": "mine"}).encode())},
    )
    assert uploaded.status_code == 201
    a = train(host)
    pin = host.post(f"{DEMO}/versions/{a}/pin")
    assert pin.status_code == 200 and pin.json()["pinned"] is True
    b = train(host)
    assert host.post(f"{DEMO}/versions/{b}/default").json()["default"] is True
    c, d = train(host), train(host)
    assert set(versions(host)) == {"mine", a, b, c, d}  # c and d: two, the limit

    e = train(host)
    kept = versions(host)
    assert set(kept) == {"mine", a, b, d, e}  # c, the oldest unprotected, went
    assert host.get(f"{DEMO}/versions/{c}").status_code == 404
    assert len(artifacts(host)) == 5  # its file too
    assert kept[a]["pinned"] is True and kept[b]["default"] is True
    assert kept["mine"]["source"] == "upload" and kept[e]["source"] == "training"

    unpin = host.post(f"{DEMO}/versions/{a}/unpin")
    assert unpin.status_code == 200 and unpin.json()["pinned"] is False
    assert set(versions(host)) == {"mine", a, b, d, e}  # unpinning prunes nothing by itself
    f = train(host)
    assert set(versions(host)) == {"mine", b, e, f}
    assert len(artifacts(host)) == 4
    # The default still serves; the pruned versions answer 404.
    predicted = host.post(f"{DEMO}/predict/").json()["predictions"]
    assert predicted["version"] == {"epochs": 1, "loss": 0.5}
    assert host.post(f"{DEMO}/predict/", params={"version": d}).status_code == 404

    for action in ("pin", "unpin"):
        missing = host.post(f"{DEMO}/versions/{c}/{action}")
        assert missing.status_code == 404 and missing.json()["error"] == "VersionNotFound"
        unknown = host.post(f"/v2/models/nope/versions/{b}/{action}")
        assert unknown.status_code == 404 and unknown.json()["error"] == "ModelNotFound"


def test_pinning_needs_a_manage_token_and_survives_a_restart(
    start_host: Callable[..., Host], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    secrets, tokens = {}, {}
    for scope in ("manage", "predict"):
        made = cli("token", "create", "--scope", scope, "--json", "--data-dir", str(data_dir))
        assert made.returncode == 0, made.stderr
        secrets[scope] = json.loads(made.stdout)["token"]
        tokens[scope] = {"Authorization": f"Bearer {secrets[scope]}"}
    args = ["--model", "demo", "--workers", "1"]
    host = start_host(args, data_dir=data_dir)
    name = train(host, **tokens["manage"])

    refused = host.post(f"{DEMO}/versions/{name}/pin", headers=tokens["predict"])
    assert refused.status_code == 403, refused.text
    assert host.post(f"{DEMO}/versions/{name}/pin").status_code == 401
    with Client(host.url, BearerTokenAuth(secrets["manage"]), progress=False) as client:
        assert client.pin_version("demo", name)["pinned"] is True
        with pytest.raises(VersionNotFound):
            client.pin_version("demo", "v99")
    assert host.stop() == 0

    again = start_host(args, data_dir=data_dir)
    with Client(again.url, BearerTokenAuth(secrets["manage"]), progress=False) as client:
        assert client.get_version("demo", name)["pinned"] is True
        assert client.unpin_version("demo", name)["pinned"] is False
        assert client.get_version("demo", name)["pinned"] is False
