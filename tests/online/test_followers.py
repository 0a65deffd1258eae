"""Followers of ``…/stream/events`` on a real host: many, silent, slow.

- Hundreds of followers that never read cost the learner nothing it can see:
  its learns complete, and a follower that reads gets every event, in order.
- A follower that falls behind gets ``event: dropped`` with the count and then
  the newest events; it is not cut off.
- Deleting the model ends its streams.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from conftest import Host, launch

SILENT = 300


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    tmp = tmp_path_factory.mktemp("followers")
    h = launch(tmp, ["--model", "running-mean", "--max-connections-per-client", "0"])
    yield h
    h.stop()


def _fresh(host: Host) -> str:
    r = host.post("/v2/online/", json={"plugin": "running-mean"})
    assert r.status_code == 201, r.text
    name: str = r.json()["name"]
    return name


def _silent_followers(host: Host, name: str, count: int) -> list[socket.socket]:
    """Followers that ask for the stream and never read a byte of it."""
    request = (f"GET /v2/online/{name}/stream/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").encode()
    socks = []
    for _ in range(count):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", host.port))
        sock.sendall(request)
        socks.append(sock)
    return socks


class _Reader:
    """A follower that reads, in a thread; keeps (event, data) pairs."""

    def __init__(self, host: Host, name: str) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.connected = threading.Event()
        self.ended = threading.Event()
        self.error: BaseException | None = None
        self._closing = False
        self._stream = requests.get(
            f"{host.url}/v2/online/{name}/stream/events", stream=True, timeout=60
        )
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        kind = ""
        try:
            for line in self._stream.iter_lines():
                if line == b": connected":
                    self.connected.set()
                elif line.startswith(b"event: "):
                    kind = line[len(b"event: ") :].decode()
                elif line.startswith(b"data: "):
                    self.events.append((kind, json.loads(line[len(b"data: ") :])))
        except Exception as exc:  # closing the stream under the reader breaks its read
            if not self._closing:
                self.error = exc
        finally:
            self.ended.set()

    def close(self) -> None:
        self._closing = True
        self._stream.close()
        self._thread.join(10)
        assert self.error is None, self.error


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _learn(session: requests.Session, host: Host, name: str, y: float, pad: str = "") -> None:
    body = {"features": {"pad": pad} if pad else {}, "ground_truth": y}
    r = session.post(f"{host.url}/v2/online/{name}/learn/", json=body, timeout=60)
    assert r.status_code == 200, r.text


def test_hundreds_of_silent_followers_do_not_hold_up_the_learner(host: Host) -> None:
    name = _fresh(host)
    silent = _silent_followers(host, name, SILENT)
    reader = _Reader(host, name)
    try:
        assert reader.connected.wait(30)
        with requests.Session() as session:
            for i in range(500):
                # 2 kB an event: the silent followers' buffers fill early on.
                _learn(session, host, name, float(i), pad="p" * 2000)
        _wait(lambda: len(reader.events) >= 500, 60, "the reading follower's events")
    finally:
        reader.close()
        for sock in silent:
            sock.close()
    assert [kind for kind, _ in reader.events] == ["learn"] * 500
    assert [event["seq"] for _, event in reader.events] == list(range(1, 501))
    assert [event["ground_truth"] for _, event in reader.events] == [float(i) for i in range(500)]
    assert host.get(f"/v2/online/{name}").json()["learned"] == 500


def test_a_follower_that_fell_behind_is_told_and_carries_on(host: Host) -> None:
    name = _fresh(host)
    stream = requests.get(f"{host.url}/v2/online/{name}/stream/events", stream=True, timeout=60)
    try:
        lines = stream.iter_lines()
        assert next(lines) == b": connected"
        # Far more than the ring holds (1,024 events, 8 MiB) while it reads nothing.
        pad = "q" * 4000
        body = "".join(
            json.dumps({"features": {"pad": pad}, "ground_truth": float(i)}) + "\n"
            for i in range(5000)
        )
        r = host.post(f"/v2/online/{name}/bulk/", data=body.encode(), timeout=120)
        assert r.status_code == 200 and len(r.text.splitlines()) == 5000
        seen: list[int] = []
        dropped = 0
        kind = ""
        while not seen or seen[-1] < 5000:
            line = next(lines)
            if line.startswith(b"event: "):
                kind = line[len(b"event: ") :].decode()
            elif line.startswith(b"data: "):
                data = json.loads(line[len(b"data: ") :])
                if kind == "dropped":
                    dropped += data["dropped"]
                else:
                    seen.append(data["seq"])
        # Then it follows as if nothing happened.
        with requests.Session() as session:
            _learn(session, host, name, 1.0)
        for line in lines:
            if line.startswith(b"data: "):
                seen.append(json.loads(line[len(b"data: ") :])["seq"])
                break
    finally:
        stream.close()
    assert dropped > 0
    assert seen == sorted(seen) and len(set(seen)) == len(seen)  # in order, none twice
    assert seen[-2:] == [5000, 5001]
    assert dropped + len(seen) == 5001  # every event either sent or counted as dropped


def test_deleting_the_model_ends_its_streams(host: Host) -> None:
    name = _fresh(host)
    readers = [_Reader(host, name) for _ in range(3)]
    try:
        for reader in readers:
            assert reader.connected.wait(30)
        began = time.monotonic()
        assert host.delete(f"/v2/online/{name}").status_code == 200
        for reader in readers:
            assert reader.ended.wait(30)
        # At once, not at the next keep-alive (15 s).
        assert time.monotonic() - began < 10
    finally:
        for reader in readers:
            reader.close()
