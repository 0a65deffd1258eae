"""Profiles, factories, authentication handlers and the downloader's folder."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests
from conftest import Host

from deepaas_host.client import (
    BEARER,
    PROFILE_FILE,
    STANDALONE,
    BearerTokenAuth,
    FileSystemDownloader,
    ProfileError,
    StandAloneTokenAuth,
    create_client_from_profile,
    create_client_from_token,
    load_profile,
)


def write_profiles(path: Path, url: str = "http://127.0.0.1:9", **extra: str) -> Path:
    lines = ["[dev]", f"url = {url}", "token = tok%en;#1", "download_path = ~/models ; comment"]
    lines += [f"{k} = {v}" for k, v in extra.items()]
    lines += ["", "[other]", "url: http://example.invalid", "auth_type: standalone"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty home folder and an empty current folder of the test's own."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return home


def test_profile_from_a_file(tmp_path: Path, home: Path) -> None:
    path = write_profiles(tmp_path / "conf" / "profiles.ini")
    profile = load_profile("dev", path)
    assert profile.url == "http://127.0.0.1:9"
    assert profile.token == "tok%en;#1"  # no interpolation, no comment
    assert profile.auth_type == BEARER
    assert profile.download_path == "~/models"
    assert profile.source == path
    assert "tok%en" not in repr(profile)
    assert load_profile("other", path).auth_type == STANDALONE


def test_profile_from_a_folder(tmp_path: Path, home: Path) -> None:
    write_profiles(tmp_path / "conf" / PROFILE_FILE)
    assert load_profile("dev", tmp_path / "conf").url == "http://127.0.0.1:9"


def test_profile_from_the_current_then_the_home_folder(home: Path) -> None:
    write_profiles(home / PROFILE_FILE, url="http://home.invalid")
    assert load_profile("dev").url == "http://home.invalid"
    write_profiles(Path.cwd() / PROFILE_FILE, url="http://cwd.invalid")
    assert load_profile("dev").url == "http://cwd.invalid"
    # A named file is looked for under that name in those folders too.
    write_profiles(home / "team.ini", url="http://team.invalid")
    assert load_profile("dev", "team.ini").url == "http://team.invalid"


def test_first_file_with_the_profile_wins(tmp_path: Path, home: Path) -> None:
    given = tmp_path / "conf" / PROFILE_FILE
    given.parent.mkdir()
    given.write_text("[staging]\nurl = http://staging.invalid\n")
    write_profiles(home / PROFILE_FILE, url="http://home.invalid")
    assert load_profile("staging", given).url == "http://staging.invalid"
    assert load_profile("dev", given).url == "http://home.invalid"


def test_missing_profile_names_where_it_looked(tmp_path: Path, home: Path) -> None:
    path = write_profiles(tmp_path / "profiles.ini")
    with pytest.raises(ProfileError) as info:
        load_profile("prod", path)
    message = str(info.value)
    assert "'prod'" in message
    assert str(path) in message
    assert str(home / "profiles.ini") in message


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("[dev]\ntoken = x\n", "no url"),
        ("[dev]\nurl = http://h\nauth_type = basic\n", "auth_type 'basic'"),
        ("[dev]\nurl = http://h\ntokne = x\n", "unknown key"),
        ("[dev\nurl = http://h\n", "Cannot read"),
    ],
)
def test_invalid_profiles(tmp_path: Path, home: Path, body: str, match: str) -> None:
    path = tmp_path / "bad.ini"
    path.write_text(body)
    with pytest.raises(ProfileError, match=match):
        load_profile("dev", path)


def test_client_from_profile_talks_to_the_host(served: Host, tmp_path: Path, home: Path) -> None:
    path = write_profiles(tmp_path / "profiles.ini", url=served.url)
    with create_client_from_profile("dev", path, timeout=10) as client:
        assert isinstance(client.downloader, FileSystemDownloader)
        assert client.downloader.path == home / "models"
        assert client.predict("demo", label="dog")["predictions"]["label"] == "dog"


def test_client_from_token_sends_the_token(served: Host) -> None:
    seen: list[requests.PreparedRequest] = []

    def record(response: requests.Response, *args: object, **kwargs: object) -> None:
        seen.append(response.request)

    client = create_client_from_token(served.url, "s3cret", hooks={"response": [record]})
    client.get_models()
    assert seen[-1].headers["Authorization"] == "Bearer s3cret"
    client = create_client_from_token(
        served.url, "s3cret", auth_type=STANDALONE, hooks={"response": [record]}
    )
    client.get_models()
    assert seen[-1].headers["standAloneToken"] == "s3cret"
    assert "Authorization" not in seen[-1].headers


def test_auth_handlers() -> None:
    assert BearerTokenAuth("abc") == BearerTokenAuth("abc") != StandAloneTokenAuth("abc")
    assert "abc" not in repr(BearerTokenAuth("abc"))
    with pytest.raises(ValueError):
        BearerTokenAuth("two\nlines")
    with pytest.raises(ValueError, match="Unknown auth type"):
        create_client_from_token("http://h", "t", auth_type="basic")


def test_downloader_expands_home(tmp_path: Path) -> None:
    # A fresh interpreter with HOME elsewhere: ``~`` follows it.
    code = textwrap.dedent(
        """
        from deepaas_host.client import FileSystemDownloader
        print(FileSystemDownloader("~/models").directory("iris", "v2"))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": str(tmp_path)},
        check=True,
    )
    assert result.stdout.strip() == str(tmp_path / "models" / "iris" / "v2")


def test_downloader_folders_are_safe() -> None:
    downloader = FileSystemDownloader("/srv/models")
    assert downloader.directory("a/b", "..") == Path("/srv/models/a_b/__")
