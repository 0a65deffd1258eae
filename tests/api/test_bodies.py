"""Hostile bodies against real hosts: huge, deeply nested, oversized, stalled.

- Huge JSON is decoded and validated in a thread: ``GET /v2/health`` keeps
  answering while 25 MB and 44 MB bodies are parsed, and the 422 of five million
  bad items lists twenty of them and counts the rest.
- JSON nested deeper than 64 levels is a 400 ``MalformedBody`` on every route
  that reads JSON (never a 500 from a ``RecursionError``).
- ``--max-body-size`` bounds every route, the online ones and bulk included, also
  mid-stream for chunked bodies (sent by curl).
- A body that stalls for ``--body-timeout`` seconds is a 408 ``RequestTimeout``,
  whatever its kind; one that trickles steadily is read.
- A bulk answer of tens of megabytes waits in a temporary file in the upload
  directory, not in the host's memory.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import Host, launch

from .conftest import assert_error, predictions, uploads_of

DEMO = "/v2/models/demo/predict/"
STALL = 2.0  # --body-timeout of the hosts below


@pytest.fixture(scope="module")
def roomy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    """Default body limit; demo, a plugin with learn(), an online plugin; 2 s body timeout."""
    tmp = tmp_path_factory.mktemp("roomy")
    args = ["--model", "demo", "--model", "word-counts", "--model", "running-mean"]
    args += ["--workers", "1", "--body-timeout", str(STALL), "--max-connections-per-client", "0"]
    h = launch(tmp, args)
    yield h
    h.stop()


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    """Request bodies up to 64 KiB."""
    tmp = tmp_path_factory.mktemp("tight")
    h = launch(
        tmp,
        ["--model", "demo", "--model", "running-mean", "--no-train", "--max-body-size", "64K"],
    )
    yield h
    h.stop()


def _fresh(host: Host, plugin: str = "running-mean") -> str:
    r = host.post("/v2/online/", json={"plugin": plugin})
    assert r.status_code == 201, r.text
    name: str = r.json()["name"]
    return name


def _still_serving(host: Host) -> None:
    assert predictions(host.post(DEMO, params={"label": "dog"}))["label"] == "dog"
    assert uploads_of(host) == []


# huge JSON --------------------------------------------------------------------------


class _HealthWatch:
    """Polls /v2/health from a thread and keeps the slowest answer."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.worst = 0.0
        self.answers = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                began = time.perf_counter()
                r = session.get(self.host.url + "/v2/health", timeout=120)
                self.worst = max(self.worst, time.perf_counter() - began)
                assert r.status_code == 200
                self.answers += 1
                time.sleep(0.02)

    def __enter__(self) -> _HealthWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(150)


def _post_json(host: Host, path: str, data: bytes, **kw: Any) -> requests.Response:
    return host.post(path, data=data, headers={"Content-Type": "application/json"}, **kw)


def test_health_answers_while_huge_json_bodies_are_parsed(roomy: Host) -> None:
    strings = json.dumps({"tags": ["x"] * 5_000_000}).encode()  # 25 MB, valid
    numbers = json.dumps({"tags": list(range(5_000_000))}).encode()  # 44 MB, all invalid
    with _HealthWatch(roomy) as valid:
        ok = _post_json(roomy, DEMO, strings, timeout=300)
    with _HealthWatch(roomy) as invalid:
        bad = _post_json(roomy, DEMO, numbers, timeout=300)
    assert len(predictions(ok)["tags"]) == 5_000_000
    body = assert_error(bad, 422, "ArgumentError")
    # The first twenty items, then how many more; not five million messages.
    tags = body["details"]["tags"]
    assert len(tags) == 21 and tags["_more"] == 5_000_000 - 20
    assert tags["0"] == ["Not a valid string."]
    assert len(bad.content) < 10_000
    assert valid.answers > 10 and invalid.answers > 10
    # Generous bounds: before, the loop froze for the whole parse (6 s and 27 s
    # here). What remains is one json.loads call (0.1 s, 0.4 s) and, for the
    # invalid body, CPython's full collections over marshmallow's five million
    # error messages (up to 0.9 s on an idle machine, more on a busy one).
    assert valid.worst < 2.0, f"health took {valid.worst:.2f}s"
    assert invalid.worst < 5.0, f"health took {invalid.worst:.2f}s"
    _still_serving(roomy)


def test_a_422_names_twenty_unknown_fields_and_counts_the_rest(roomy: Host) -> None:
    body = {f"field{i}": i for i in range(10_000)}
    r = roomy.post(DEMO, json=body)
    error = assert_error(r, 422, "ArgumentError")
    assert len(error["details"]) == 21 and error["details"]["_more"] == 10_000 - 20
    assert error["message"].endswith("and 9980 more.")


# nesting --------------------------------------------------------------------------


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _ops(host: Host) -> dict[str, tuple[str, str]]:
    """Route → (path, a JSON body template with {} where the nested value goes)."""
    name = _fresh(host)
    return {
        "predict": (DEMO, '{"tags": {}}'),
        "train": ("/v2/models/demo/train/", '{"epochs": {}}'),
        "learn": ("/v2/models/word-counts/learn/", '{"text": {}}'),
        "online predict": (f"/v2/online/{name}/predict/", '{"features": {"a": {}}}'),
        "online learn": (f"/v2/online/{name}/learn/", '{"features": {}, "ground_truth": {}}'),
        "online label": (f"/v2/online/{name}/label/", '{"id": "a", "ground_truth": {}}'),
    }


@pytest.mark.parametrize("depth", [64, 900, 3000, 100_000])  # arrays in the body object
def test_json_nested_too_deep_is_a_400_on_every_route(roomy: Host, depth: int) -> None:
    for route, (path, template) in _ops(roomy).items():
        data = template.replace("{}", _nested(depth), 1).encode()
        r = _post_json(roomy, path, data)
        body = assert_error(r, 400, "MalformedBody")
        assert "deeper than 64 levels" in body["message"], (route, body)
        assert body["details"] == {"max_depth": 64}
    _still_serving(roomy)


def test_json_nested_within_the_bound_is_validated_as_usual(roomy: Host) -> None:
    # 63 arrays inside the body object: 64 levels, accepted by the reader.
    data = ('{"tags": ' + _nested(63) + "}").encode()
    body = assert_error(_post_json(roomy, DEMO, data), 422, "ArgumentError")
    assert set(body["details"]) == {"tags"}
    name = _fresh(roomy)
    ok = _post_json(roomy, f"/v2/online/{name}/learn/", b'{"features": {}, "ground_truth": 2}')
    assert ok.status_code == 200, ok.text


def test_each_bulk_line_nested_too_deep_is_that_lines_error(roomy: Host) -> None:
    name = _fresh(roomy)
    deep = '{"features": {"a": ' + _nested(5000) + '}, "ground_truth": 1}'
    lines = ['{"features": {}, "ground_truth": 1}', deep, '{"features": {}, "ground_truth": 3}']
    r = roomy.post(f"/v2/online/{name}/bulk/", data="\n".join(lines).encode())
    assert r.status_code == 200, r.text
    first, second, third = (json.loads(line) for line in r.text.splitlines())
    assert first["learned"] == 1 and third["learned"] == 2
    error = second["error"]
    assert error["error"] == "MalformedBody" and error["code"] == 400
    assert error["message"] == "Line 2 nests objects and arrays deeper than 64 levels."
    assert error["details"]["line"] == 2


# limits on every route ----------------------------------------------------------------


def _curl_chunked(url: str, data: bytes, ctype: str = "application/json") -> tuple[int, Any]:
    """POST ``data`` from stdin with ``Transfer-Encoding: chunked`` (no Content-Length)."""
    out = subprocess.run(
        ["curl", "-sS", "--max-time", "60", "-T", "-", "-X", "POST", url,
         "-H", "Transfer-Encoding: chunked", "-H", f"Content-Type: {ctype}",
         "-w", "\n%{http_code}"],
        input=data, capture_output=True, timeout=90, check=True,
    )  # fmt: skip
    text, _, code = out.stdout.decode().rpartition("\n")
    return int(code), json.loads(text) if text.startswith("{") else text


def test_max_body_size_bounds_the_online_routes(tight: Host) -> None:
    name = _fresh(tight)
    big = json.dumps({"features": {"pad": "x" * 100_000}, "ground_truth": 1}).encode()
    for kind in ("learn", "predict", "label"):
        url = f"{tight.url}/v2/online/{name}/{kind}/"
        r = requests.post(url, data=big, headers={"Content-Type": "application/json"}, timeout=30)
        assert str(64 << 10) in assert_error(r, 413, "PayloadTooLarge")["message"]
        code, body = _curl_chunked(url, big)
        assert code == 413 and body["error"] == "PayloadTooLarge", body
    ok = tight.post(f"/v2/online/{name}/learn/", json={"features": {}, "ground_truth": 2})
    assert ok.status_code == 200 and ok.json()["learned"] == 1


def test_the_online_routes_keep_their_one_mebibyte_cap(roomy: Host) -> None:
    name = _fresh(roomy)
    big = json.dumps({"features": {"pad": "x" * (2 << 20)}, "ground_truth": 1}).encode()
    r = _post_json(roomy, f"/v2/online/{name}/learn/", big)
    assert str(1 << 20) in assert_error(r, 413, "PayloadTooLarge")["message"]


def test_max_body_size_bounds_a_bulk_body(tight: Host) -> None:
    name = _fresh(tight)
    line = json.dumps({"features": {}, "ground_truth": 1}) + "\n"
    data = (line * 20_000).encode()  # 740 kB, eleven times the limit
    r = tight.post(f"/v2/online/{name}/bulk/", data=data)
    body = assert_error(r, 413, "PayloadTooLarge")
    assert body["details"]["lines_processed"] == 0  # refused by its Content-Length
    code, body = _curl_chunked(f"{tight.url}/v2/online/{name}/bulk/", data, "application/x-ndjson")
    assert code == 413 and body["error"] == "PayloadTooLarge", body
    processed = body["details"]["lines_processed"]
    # Lines go to the model a thousand at a time: one such chunk fits in 64 KiB.
    assert processed == 1000
    assert f"The first {processed} lines were processed." in body["message"]
    # What was processed before the limit is learned, nothing after it.
    learned = tight.get(f"/v2/online/{name}").json()["learned"]
    assert learned == processed
    ok = tight.post(f"/v2/online/{name}/bulk/", data=(line * 10).encode())
    assert ok.status_code == 200 and len(ok.text.splitlines()) == 10


def test_a_bulk_answer_of_many_megabytes_waits_in_a_temporary_file(roomy: Host) -> None:
    name = _fresh(roomy)
    lines = 100_000
    # Each line is refused with an error answer some 250 bytes long: 25 MB of
    # answers from a 1 MB body, more than loopback socket buffers hold.
    data = b'{"x": 1}\n' * lines
    uploads = str(roomy.data_dir / "uploads")
    with requests.post(
        f"{roomy.url}/v2/online/{name}/bulk/", data=data, stream=True, timeout=120
    ) as r:
        assert r.status_code == 200
        size = int(r.headers["Content-Length"])
        assert size > 20 << 20

        def spooled() -> list[str]:
            fds = Path(f"/proc/{roomy.process.pid}/fd")
            targets = []
            for fd in fds.iterdir():
                try:
                    targets.append(os.readlink(fd))
                except OSError:
                    pass
            return [t for t in targets if t.startswith(uploads)]

        # The client has not read a byte: the rest of the answer is on disk.
        assert spooled(), "no temporary file in the upload directory"
        answer = r.content
    assert len(answer) == size
    answers = answer.splitlines()
    assert len(answers) == lines
    assert json.loads(answers[-1])["error"]["details"]["line"] == lines
    assert uploads_of(roomy) == []


# stalled bodies ---------------------------------------------------------------------


def _raw_request(host: Host, head: str, body: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", host.port), timeout=60)
    sock.sendall(head.encode() + b"\r\n" + body)
    return sock


def _read_answer(sock: socket.socket) -> tuple[int, dict[str, Any]]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed without an answer: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    lines = head.split(b"\r\n")
    length = next(int(v.split(b":")[1]) for v in lines if v.lower().startswith(b"content-length"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk
        rest += chunk
    return status, json.loads(rest[:length])


def _multipart_start() -> tuple[str, bytes]:
    boundary = "stallboundary"
    start = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="data"; filename="a.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + b"z" * 500
    return f"multipart/form-data; boundary={boundary}", start


def _stalls(name: str) -> dict[str, tuple[str, str, bytes]]:
    """Route → (path, Content-Type, the half of the body that is sent)."""
    mp_type, mp_start = _multipart_start()
    return {
        "json": (DEMO, "application/json", b'{"label": "dog", "tags": ["'),
        "urlencoded": (DEMO, "application/x-www-form-urlencoded", b"label=dog&tags="),
        "multipart": (DEMO, mp_type, mp_start),
        "train": ("/v2/models/demo/train/", "application/json", b'{"epochs": '),
        "online learn": (f"/v2/online/{name}/learn/", "application/json", b'{"features": '),
        "bulk": (
            f"/v2/online/{name}/bulk/",
            "application/x-ndjson",
            b'{"features": {}, "ground_truth": 1}\n' * 3 + b'{"feat',
        ),
    }


def test_a_body_that_stalls_is_a_408_on_every_route(roomy: Host) -> None:
    socks = {}
    name = _fresh(roomy)
    began = time.monotonic()
    for route, (path, ctype, half) in _stalls(name).items():
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {2 * len(half) + 100}\r\n"
        )
        socks[route] = _raw_request(roomy, head, half)
    try:
        for route, sock in socks.items():
            status, body = _read_answer(sock)
            assert status == 408, (route, body)
            assert body["error"] == "RequestTimeout" and body["code"] == 408
            assert body["details"]["body_timeout"] == STALL
        elapsed = time.monotonic() - began
        assert elapsed >= STALL * 0.9  # never before the client was idle that long
    finally:
        for sock in socks.values():
            sock.close()
    # Bulk lines wait for a full chunk (or the end): none had gone to the model.
    assert body["details"]["lines_processed"] == 0
    assert roomy.get(f"/v2/online/{name}").json()["learned"] == 0
    _still_serving(roomy)


def test_a_chunked_body_that_stalls_between_chunks_is_a_408(roomy: Host) -> None:
    head = (
        f"POST {DEMO} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n"
    )
    sock = _raw_request(roomy, head, b'5\r\n{"lab\r\n')
    with sock:
        status, body = _read_answer(sock)
    assert status == 408 and body["error"] == "RequestTimeout"
    _still_serving(roomy)


def test_a_body_that_trickles_steadily_is_read(roomy: Host) -> None:
    """Idle time counts, not total time: ten pieces 0.4 s apart, 4 s in all."""
    payload = json.dumps({"label": "bird", "tags": ["t" * 20] * 10}).encode()
    step = len(payload) // 10 + 1
    pieces = [payload[i : i + step] for i in range(0, len(payload), step)]
    head = (
        f"POST {DEMO} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n"
    )
    sock = _raw_request(roomy, head, pieces[0])
    with sock:
        for piece in pieces[1:]:
            time.sleep(STALL / 5)
            sock.sendall(piece)
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
    assert data.startswith(b"HTTP/1.1 200"), data[:300]
