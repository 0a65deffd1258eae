"""Calls whose clients hang up before their turn are dropped, not run.

A client queues hundreds of slow predictions (or online learns) and
disconnects. The worker runs only the few it had taken already; the rest are
dropped when their turn comes, counted under ``dropped`` in ``/v2/health``, and
the next client is served at once rather than after all of them.
"""

from __future__ import annotations

import os
import pickle
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from fixtures.slow_learner import SlowLearner

from .conftest import pool, wait_until

if TYPE_CHECKING:
    from conftest import Host

TESTS = Path(__file__).resolve().parents[1]
CLIENTS = 300
#: Fewer, so that all connect at once (within the listen backlog).
ONLINE_CLIENTS = 100


def _connect(host: Host, request: bytes, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", host.port), timeout=30)
        sock.sendall(request)
        socks.append(sock)
    return socks


def _hang_up(socks: list[socket.socket]) -> None:
    for sock in socks:
        sock.close()


def test_predictions_of_departed_clients_are_dropped_unrun(
    start_host: Callable[..., Host],
) -> None:
    args = ["--model", "demo", "--no-train", "--workers", "1", "--queue-size", "1000"]
    host = start_host([*args, "--max-connections-per-client", "0"])
    request = (
        b"POST /v2/models/demo/predict/?sleep=5 HTTP/1.1\r\n"
        b"Host: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
    )
    socks = _connect(host, request, CLIENTS)
    try:
        # The worker has taken two (pipelined), five seconds each; the rest wait.
        wait_until(lambda: pool(host)["queued"] >= CLIENTS - 4, timeout=60, what="the calls queued")
        queued = pool(host)["queued"]
    finally:
        _hang_up(socks)
    began = time.monotonic()
    r = host.post("/v2/models/demo/predict/", params={"label": "bird"}, timeout=120)
    waited = time.monotonic() - began
    assert r.status_code == 200 and r.json()["predictions"]["label"] == "bird"
    # Behind the calls already in the worker, not behind 1,500 seconds of them.
    assert waited < 30, f"the new client waited {waited:.1f}s"
    stats = pool(host)
    assert stats["dropped"] >= queued
    assert stats["queued"] == stats["busy"] == 0 and stats["restarts"] == 0


def test_online_operations_of_departed_clients_are_dropped_unrun(
    start_host: Callable[..., Host],
) -> None:
    inherited = os.environ.get("PYTHONPATH")
    host = start_host(
        ["--model", "running-mean", "--max-connections-per-client", "0"],
        env={"PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), inherited]))},
    )
    r = host.post(
        "/v2/online/",
        data={"name": "slow", "flavor": "custom"},
        files={"file": ("slow.pkl", pickle.dumps(SlowLearner()))},
    )
    assert r.status_code == 201, r.text

    def learn(sleep: float) -> bytes:
        body = b'{"features": {"sleep": %g}, "ground_truth": 1}' % sleep
        return (
            b"POST /v2/online/slow/learn/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )

    # Two learns of six seconds keep the worker busy (one batch each, two in
    # flight); the clients queued behind them wait a second, then give up.
    busy = _connect(host, learn(6), 2)
    socks = _connect(host, learn(2), ONLINE_CLIENTS)
    try:
        time.sleep(1.0)
    finally:
        _hang_up(socks)
    began = time.monotonic()
    r = host.post("/v2/online/slow/learn/", json={"features": {}, "ground_truth": 1}, timeout=120)
    waited = time.monotonic() - began
    _hang_up(busy)
    assert r.status_code == 200, r.text
    # Behind the two running learns, not behind 200 seconds of abandoned ones.
    assert waited < 60, f"the new client waited {waited:.1f}s"
    assert r.json()["learned"] == 3
    # (A client that left before its body was read was never queued at all.)
    assert pool(host, "online")["dropped"] >= ONLINE_CLIENTS // 2
    assert host.get("/v2/online/slow").json()["learned"] == 3
