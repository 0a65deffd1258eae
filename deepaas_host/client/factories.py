"""Clients in one call: from a token, or from a named profile."""

from __future__ import annotations

import os
from typing import Any

from deepaas_host.client.auth import BEARER, token_auth
from deepaas_host.client.client import Client
from deepaas_host.client.downloader import FileSystemDownloader
from deepaas_host.client.profiles import load_profile

__all__ = ["create_client_from_profile", "create_client_from_token"]


def create_client_from_token(
    url: str,
    token: str | None,
    auth_type: str = BEARER,
    download_path: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> Client:
    """A :class:`Client` authenticated with ``token``.

    ``auth_type`` is ``BEARER`` (``Authorization: Bearer``, the default) or
    ``STANDALONE`` (``standAloneToken`` header); ``None`` or ``""`` as the token
    means a host without tokens. ``download_path`` sets up a
    :class:`FileSystemDownloader`. Other keywords go to :class:`Client`
    (``timeout=45``, ``verify=False``, …).
    """
    auth = token_auth(token, auth_type) if token else None
    if download_path is not None:
        kwargs["downloader"] = FileSystemDownloader(download_path)
    return Client(url, auth, **kwargs)


def create_client_from_profile(
    profile: str, path: str | os.PathLike[str] | None = None, **kwargs: Any
) -> Client:
    """A :class:`Client` for profile ``profile`` of a profile file.

    ``path`` is a profile file or a folder holding ``deepaas-host.ini``; the
    current folder and the home folder are searched after it
    (:class:`ProfileError` names every place looked at when it is not found).
    Keywords go to :class:`Client`.
    """
    found = load_profile(profile, path)
    return create_client_from_token(
        found.url,
        found.token,
        auth_type=found.auth_type,
        download_path=found.download_path,
        **kwargs,
    )
