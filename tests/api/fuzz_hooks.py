"""Schemathesis hooks for ``test_fuzz.py`` (loaded by ``st`` through SCHEMATHESIS_HOOKS).

The iris model validates its inputs itself: it needs all four measurements or a
CSV file, which the argument schema cannot express, and raises ``ValueError``
otherwise. The host reports that as the documented 500 ``ModelError``; those
answers are not findings. Any other 5xx is.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    if response.status_code != 500 or not case.operation.path.endswith("/iris/predict/"):
        return True
    try:
        body = json.loads(response.content)
    except ValueError:
        return True
    is_input_error = (
        isinstance(body, dict)
        and body.get("error") == "ModelError"
        and body.get("details", {}).get("exception") == "ValueError"
    )
    return not is_input_error


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
