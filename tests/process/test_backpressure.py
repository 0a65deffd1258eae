"""A full predict queue answers 503 with ``Retry-After`` instead of piling up."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from .conftest import pool, wait_until

if TYPE_CHECKING:
    from conftest import Host

PREDICT = "/v2/models/demo/predict/"


def test_a_full_queue_is_refused_then_served_again(start_host: Callable[..., Host]) -> None:
    host = start_host(["--model", "demo", "--workers", "1", "--queue-size", "2"])
    with ThreadPoolExecutor(4) as executor:
        # Two calls in the worker (it takes them pipelined) and two waiting.
        slow = [executor.submit(host.post, PREDICT, data={"sleep": 2}) for _ in range(4)]
        wait_until(
            lambda: (lambda s: s["busy"] == 2 and s["queued"] == 2)(pool(host)),
            timeout=10,
            what="a busy worker and a full queue",
        )
        for _ in range(3):
            began = time.monotonic()
            refused = host.post(PREDICT, data={"label": "dog"})
            assert time.monotonic() - began < 1.5
            assert refused.status_code == 503
            assert int(refused.headers["Retry-After"]) >= 1
            body = refused.json()
            assert body["error"] == "Overloaded"
            assert "queue is full" in body["message"]
            assert body["request_id"] == refused.headers["X-Request-ID"]
        assert [f.result().status_code for f in slow] == [200] * 4

    stats = pool(host)
    assert stats["busy"] == stats["queued"] == 0
    assert stats["restarts"] == 0
    answer = host.post(PREDICT, data={"label": "dog"})
    assert answer.status_code == 200
    assert answer.json()["predictions"]["label"] == "dog"
