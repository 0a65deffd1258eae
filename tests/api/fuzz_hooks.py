"""Schemathesis hooks for ``test_fuzz.py`` (loaded by ``st`` through SCHEMATHESIS_HOOKS).

``protected_operations_refuse`` is a check, run only when named in ``--checks``
(the run without a token on a host that has tokens): an operation the document
marks with ``security`` must answer 401 with the JSON error body, whatever the
fuzzer sent. Each operation it verified is appended to the file named by
``DEEPAAS_FUZZ_REFUSED`` (when set), so the test knows every one was reached.
"""

from __future__ import annotations

import json
import os
from typing import Any

import schemathesis


@schemathesis.check
def protected_operations_refuse(ctx: Any, response: Any, case: Any) -> bool | None:
    """A protected operation called without a token answers 401 JSON naming the error."""
    if not case.operation.definition.raw.get("security"):
        return None
    if response.status_code != 401:
        raise AssertionError(
            f"{case.operation.label} without a token answered {response.status_code}, not 401"
        )
    # schemathesis keeps header names lowercased, each with a list of values
    media = (response.headers.get("content-type") or [""])[0]
    if not media.startswith("application/json"):
        raise AssertionError(f"{case.operation.label}: the 401 is {media!r}, not JSON")
    body = json.loads(response.content)
    if body.get("error") != "AuthenticationError" or body.get("code") != 401:
        raise AssertionError(f"{case.operation.label}: the 401 body is {body!r}")
    if "www-authenticate" not in response.headers:
        raise AssertionError(f"{case.operation.label}: the 401 has no WWW-Authenticate")
    record = os.environ.get("DEEPAAS_FUZZ_REFUSED")
    if record:
        with open(record, "a", encoding="utf-8") as fh:
            fh.write(case.operation.label + "\n")
    return True


@schemathesis.serializer("application/x-ndjson")
def ndjson(context: Any, value: Any) -> bytes:
    """Bodies of ``POST /v2/online/{name}/bulk/``: the document gives them as text."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, list):  # negative cases: anything but text
        return "\n".join(json.dumps(line) for line in value).encode()
    return json.dumps(value).encode()
