"""Access tokens seen from the client: 401 and 403 as ``AuthenticationError``."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import BIN, Host

from deepaas_host.client import (
    AuthenticationError,
    BearerTokenAuth,
    Client,
    StandAloneTokenAuth,
    create_client_from_token,
)


def create_token(data_dir: Path, scope: str) -> str:
    result = subprocess.run(
        [str(BIN), "token", "create", "--scope", scope, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


@pytest.fixture
def guarded(start_host: Callable[..., Host], tmp_path: Path) -> tuple[Host, str, str]:
    """A host whose data directory holds a manage and a predict token."""
    data_dir = tmp_path / "guarded"
    manage = create_token(data_dir, "manage")
    predict = create_token(data_dir, "predict")
    host = start_host(["--model", "demo", "--no-train"], data_dir=data_dir)
    return host, manage, predict


def test_tokens(guarded: tuple[Host, str, str], tmp_path: Path) -> None:
    host, manage, predict = guarded
    with Client(host.url) as anonymous, pytest.raises(AuthenticationError) as info:
        anonymous.get_models()
    assert info.value.status == 401

    with Client(host.url, BearerTokenAuth("not-a-token")) as wrong:
        with pytest.raises(AuthenticationError) as info:
            wrong.predict("demo")
        assert info.value.status == 401

    source = tmp_path / "v.json"
    source.write_text("{}")
    for auth in (BearerTokenAuth(predict), StandAloneTokenAuth(predict)):
        with Client(host.url, auth, progress=False) as client:
            assert client.predict("demo", label="dog")["predictions"]["label"] == "dog"
            with pytest.raises(AuthenticationError) as info:
                client.add_model("demo", "custom", source, version="denied")
            assert info.value.status == 403
            assert info.value.error == "PermissionDenied"

    with create_client_from_token(host.url, manage, progress=False) as admin:
        document = admin.add_model("demo", "custom", source, version="allowed")
        assert document["name"] == "allowed"
