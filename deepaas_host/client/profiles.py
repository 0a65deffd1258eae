"""Connection profiles in INI files.

::

    [dev]
    url = http://127.0.0.1:5000
    token = 1b1f…
    auth_type = bearer          ; or standalone (optional, bearer by default)
    download_path = ~/models    ; optional, the current folder by default

A profile is looked up in the file given (a folder means its ``deepaas-host.ini``),
then in a file of the same name in the current folder, then in the home folder;
the first file that has the profile wins.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from pathlib import Path

from deepaas_host.client.auth import AUTH_TYPES, BEARER
from deepaas_host.client.errors import ProfileError

__all__ = ["PROFILE_FILE", "Profile", "load_profile", "profile_files"]

#: The profile file looked for in a folder, the current folder and the home folder.
PROFILE_FILE = "deepaas-host.ini"

_KEYS = frozenset({"url", "token", "auth_type", "download_path"})


@dataclass(frozen=True)
class Profile:
    """One section of a profile file."""

    name: str
    url: str
    token: str | None = None
    auth_type: str = BEARER
    download_path: str | None = None
    source: Path | None = None

    def __repr__(self) -> str:
        token = "<hidden>" if self.token else None
        return (
            f"Profile(name={self.name!r}, url={self.url!r}, token={token}, "
            f"auth_type={self.auth_type!r}, download_path={self.download_path!r}, "
            f"source={self.source!r})"
        )


def profile_files(path: str | os.PathLike[str] | None = None) -> list[Path]:
    """The files searched, in order: ``path`` (a file, or a folder's ``deepaas-host.ini``),
    then the same file name in the current folder and in the home folder."""
    folders: list[Path] = []
    filename = PROFILE_FILE
    if path is not None:
        given = Path(path).expanduser()
        if given.is_dir() or str(path).endswith(("/", os.sep)):
            folders.append(given)
        else:
            filename = given.name
            folders.append(given.parent)
    folders += [Path.cwd(), Path.home()]
    files: list[Path] = []
    for folder in folders:
        candidate = (folder / filename).absolute()
        if candidate not in files:
            files.append(candidate)
    return files


def load_profile(name: str, path: str | os.PathLike[str] | None = None) -> Profile:
    """Find and validate profile ``name`` (see :func:`profile_files` for where)."""
    searched = profile_files(path)
    for file in searched:
        if not file.is_file():
            continue
        # "; comment" after a value is a comment (a space before it is required, so
        # tokens and URLs containing ; or # are read whole).
        parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";", "#"))
        try:
            with file.open(encoding="utf-8") as fh:
                parser.read_file(fh)
        except (configparser.Error, UnicodeDecodeError, OSError) as exc:
            raise ProfileError(f"Cannot read profile file {file}: {exc}") from exc
        if parser.has_section(name):
            return _profile(name, parser[name], file)
    where = ", ".join(str(f) + ("" if f.is_file() else " (absent)") for f in searched)
    raise ProfileError(f"Profile {name!r} not found; looked in: {where}.")


def _profile(name: str, section: configparser.SectionProxy, file: Path) -> Profile:
    unknown = sorted(set(section) - _KEYS)
    if unknown:
        raise ProfileError(
            f"Profile {name!r} in {file}: unknown key(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(_KEYS))}."
        )
    url = section.get("url", "").strip()
    if not url:
        raise ProfileError(f"Profile {name!r} in {file} has no url.")
    auth_type = section.get("auth_type", BEARER).strip().lower() or BEARER
    if auth_type not in AUTH_TYPES:
        raise ProfileError(
            f"Profile {name!r} in {file}: auth_type {auth_type!r} is not one of "
            f"{', '.join(AUTH_TYPES)}."
        )
    token = section.get("token", "").strip() or None
    download_path = section.get("download_path", "").strip() or None
    return Profile(name, url, token, auth_type, download_path, file)
