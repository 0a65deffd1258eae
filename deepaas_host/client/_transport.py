"""One ``requests`` session bound to a host: URLs, authentication, timeouts, errors."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import quote

import requests
from requests.auth import AuthBase
from requests.utils import default_user_agent

from deepaas_host import __version__
from deepaas_host.client.errors import HostError, HostUnreachable, error_from_response

__all__ = ["Timeout", "Transport"]

Timeout = float | tuple[float, float] | None


class Transport:
    """Sends requests to the host at ``url`` (which may end in a base path)."""

    def __init__(
        self,
        url: str,
        auth: AuthBase | None,
        timeout: Timeout,
        request_kwargs: Mapping[str, Any],
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"The host URL must start with http:// or https://, not {url!r}.")
        self.base_url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.auth = auth
        self.session.headers["User-Agent"] = (
            f"deepaas-host-client/{__version__} {default_user_agent()}"
        )
        kwargs = dict(request_kwargs)
        self.session.headers.update(kwargs.pop("headers", None) or {})
        self.request_kwargs = kwargs

    def url(self, *parts: str, slash: bool = False) -> str:
        """``base/v2/models/<part>/…``; every part is percent-quoted."""
        url = "/".join([f"{self.base_url}/v2/models", *(quote(p, safe="") for p in parts)])
        return url + "/" if slash else url

    def request(
        self,
        method: str,
        url: str,
        *,
        model: str | None = None,
        version: str | None = None,
        ok: Collection[int] = (),
        **kwargs: Any,
    ) -> requests.Response:
        """Send; an error status raises the matching :class:`HostError`.

        ``model`` and ``version`` name what the call is about in the error.
        Statuses below 400 are answers; ``ok`` adds error statuses the caller handles.
        """
        options = {**self.request_kwargs, **kwargs}
        options.setdefault("timeout", self.timeout)
        try:
            response = self.session.request(method, url, **options)
        except requests.Timeout as exc:
            raise HostUnreachable(
                f"No answer from {self.base_url} within {self.timeout}s ({method} {url})."
            ) from exc
        except requests.ConnectionError as exc:
            raise HostUnreachable(f"Cannot reach {self.base_url}: {_reason(exc)}") from exc
        if response.status_code >= 400 and response.status_code not in ok:
            try:
                raise error_from_response(response, model=model, version=version)
            finally:
                response.close()
        return response

    def json(self, method: str, url: str, **kwargs: Any) -> Any:
        """Send and decode the JSON answer."""
        response = self.request(method, url, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise HostError(
                response.status_code,
                f"{method} {url} answered without JSON "
                f"(Content-Type {response.headers.get('Content-Type')!r}): is {self.base_url} "
                "a deepaas-host server?",
            ) from exc

    def close(self) -> None:
        self.session.close()


def _reason(exc: Exception) -> str:
    # urllib3 nests the cause in a long repr; the errno part is what a person needs.
    found = re.search(r"\[Errno -?\d+\] [^'\")]+", str(exc))
    return found.group(0).strip() if found else str(exc)
