"""Body size limit (413) and the clean-up of uploaded temporary files on every path.

Runs against ``small_host``: demo (and strict) with one worker and ``--max-body-size 1K``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from conftest import Host
from urllib3 import encode_multipart_formdata

from .conftest import assert_error, curl, predictions, uploads_of, wait_until

DEMO = "/v2/models/demo/predict/"
LIMIT = 1024


def chunked(data: bytes, size: int = 100) -> Iterator[bytes]:
    """A generator body: requests sends it with ``Transfer-Encoding: chunked``."""
    for i in range(0, len(data), size):
        yield data[i : i + size]


def still_serving(host: Host, session: requests.Session | None = None) -> None:
    get = session.post if session is not None else requests.post
    r = get(host.url + DEMO, params={"label": "dog"}, timeout=30)
    assert predictions(r)["label"] == "dog"
    assert uploads_of(host) == []


# -- 413 -------------------------------------------------------------------------------


def test_multipart_over_the_limit_with_content_length(small_host: Host) -> None:
    with requests.Session() as session:
        r = session.post(
            small_host.url + DEMO, files={"data": ("big.bin", os.urandom(5 * LIMIT))}, timeout=30
        )
        body = assert_error(r, 413, "PayloadTooLarge")
        assert str(LIMIT) in body["message"]
        still_serving(small_host, session)  # same keep-alive connection
    still_serving(small_host)


def test_multipart_over_the_limit_chunked(small_host: Host) -> None:
    body, ctype = encode_multipart_formdata(
        {"label": "dog", "data": ("big.bin", os.urandom(5 * LIMIT))}
    )
    with requests.Session() as session:
        r = session.post(
            small_host.url + DEMO, data=chunked(body), headers={"Content-Type": ctype}, timeout=30
        )
        assert r.request.headers.get("Transfer-Encoding") == "chunked"
        assert "Content-Length" not in r.request.headers
        assert_error(r, 413, "PayloadTooLarge")
        still_serving(small_host, session)
    still_serving(small_host)


def test_multipart_text_field_over_the_limit_chunked(small_host: Host) -> None:
    body, ctype = encode_multipart_formdata({"label": "a" * (3 * LIMIT)})
    r = small_host.post(DEMO, data=chunked(body), headers={"Content-Type": ctype})
    assert_error(r, 413)
    still_serving(small_host)


@pytest.mark.parametrize("transfer", ["content-length", "chunked"])
def test_json_over_the_limit(small_host: Host, transfer: str) -> None:
    data = json.dumps({"label": "x" * (2 * LIMIT)}).encode()
    r = small_host.post(
        DEMO,
        data=data if transfer == "content-length" else chunked(data),
        headers={"Content-Type": "application/json"},
    )
    assert_error(r, 413, "PayloadTooLarge")
    still_serving(small_host)


@pytest.mark.parametrize("transfer", ["content-length", "chunked"])
def test_urlencoded_over_the_limit(small_host: Host, transfer: str) -> None:
    data = b"label=" + b"y" * (2 * LIMIT)
    r = small_host.post(
        DEMO,
        data=data if transfer == "content-length" else chunked(data),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_error(r, 413)
    still_serving(small_host)


def test_curl_upload_over_the_limit_both_ways(small_host: Host, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(4 * LIMIT))
    for extra in ([], ["-H", "Transfer-Encoding: chunked"]):
        out = curl(
            "-X",
            "POST",
            small_host.url + DEMO,
            "-F",
            f"data=@{big}",
            *extra,
            "-w",
            "\n%{http_code}",
        )
        text, _, code = out.stdout.decode().rpartition("\n")
        assert code == "413", out.stdout
        assert json.loads(text)["code"] == 413
    still_serving(small_host)


def test_just_under_the_limit_is_accepted(small_host: Host) -> None:
    content = os.urandom(LIMIT - 300)  # plus the multipart framing
    r = small_host.post(DEMO, files={"data": ("ok.bin", content)})
    assert predictions(r)["data"]["size"] == len(content)


# -- temporary files ------------------------------------------------------------------


def test_upload_lives_in_the_upload_dir_only_during_the_call(small_host: Host) -> None:
    """A slow call shows where the upload sits; it is gone once the answer arrives."""
    seen: list[list[str]] = []
    result: dict[str, requests.Response] = {}

    def call() -> None:
        result["r"] = small_host.post(
            DEMO, data={"sleep": "1.5"}, files={"data": ("f.bin", b"z" * 500)}, timeout=60
        )

    thread = threading.Thread(target=call)
    thread.start()
    deadline = time.monotonic() + 30
    while thread.is_alive() and time.monotonic() < deadline:
        names = uploads_of(small_host)
        if names:
            seen.append(names)
        time.sleep(0.02)
    thread.join(60)
    assert predictions(result["r"])["data"]["size"] == 500
    assert seen, "the upload never appeared in <data_dir>/uploads"
    assert all(len(names) == 1 and names[0].startswith("upload-") for names in seen)
    assert uploads_of(small_host) == []


def test_upload_removed_after_success(small_host: Host) -> None:
    r = small_host.post(DEMO, files={"data": ("a.bin", b"a" * 100)})
    assert predictions(r)["data"]["size"] == 100
    assert uploads_of(small_host) == []


def test_upload_removed_after_model_error(small_host: Host) -> None:
    r = small_host.post(DEMO, data={"fail": "raise"}, files={"data": ("a.bin", b"b" * 100)})
    assert_error(r, 500, "ModelError")
    assert uploads_of(small_host) == []


def test_upload_removed_after_422(small_host: Host) -> None:
    r = small_host.post(DEMO, data={"count": "0"}, files={"data": ("a.bin", b"c" * 100)})
    assert_error(r, 422, "ArgumentError")
    assert uploads_of(small_host) == []
    # a file sent to a field that is not a file field is refused and removed too
    r = small_host.post(DEMO, files={"label": ("a.bin", b"d" * 100)})
    body = assert_error(r, 422, "ArgumentError")
    assert set(body["details"]) == {"label"}
    assert uploads_of(small_host) == []


def test_upload_removed_after_malformed_body(small_host: Host) -> None:
    body = (
        b'--XYZ\r\nContent-Disposition: form-data; name="data"; filename="a"\r\n\r\n' + b"e" * 200
    )
    r = small_host.post(
        DEMO, data=body, headers={"Content-Type": "multipart/form-data; boundary=XYZ"}
    )
    assert_error(r, 400, "MalformedBody")
    assert uploads_of(small_host) == []


def test_upload_removed_after_413_midway(small_host: Host) -> None:
    body, ctype = encode_multipart_formdata({"data": ("big.bin", os.urandom(3 * LIMIT))})
    r = small_host.post(DEMO, data=chunked(body, 64), headers={"Content-Type": ctype})
    assert_error(r, 413)
    assert uploads_of(small_host) == []


def test_upload_removed_after_worker_crash(small_host: Host) -> None:
    before = small_host.health()["pools"]["predict"]
    r = small_host.post(DEMO, data={"fail": "exit"}, files={"data": ("a.bin", b"f" * 100)})
    assert_error(r, 502, "WorkerCrashed")
    assert uploads_of(small_host) == []

    def replaced() -> bool:
        pool = small_host.health()["pools"]["predict"]
        return pool["ready"] == 1 and pool["restarts"] > before["restarts"]

    wait_until(replaced, 90, "the replacement worker")
    r = small_host.post(DEMO, files={"data": ("a.bin", b"g" * 100)})
    assert predictions(r)["data"]["size"] == 100
    assert uploads_of(small_host) == []
