"""A flood of refused connections must not become a flood of log lines.

The attack: one address opens thousands of connections over the cap (or lets
thousands run into the header deadline); one warning per connection would fill the
disk next. The guard writes at most one line per client address and limit every
10 s, counting the connections refused or closed since. Time is the guard's injected
clock, so the 10 s pass without waiting.
"""

from __future__ import annotations

import logging

import pytest

from deepaas_host.api.connections import ConnectionGuard, ConnectionLimits


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    lines = [r.getMessage() for r in caplog.records if r.name == "deepaas_host.api.connections"]
    caplog.clear()
    return lines


def test_one_line_per_address_and_limit_every_ten_seconds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    clock = _Clock()
    guard = ConnectionGuard(ConnectionLimits(per_client=2, header_timeout=5), clock=clock)
    assert guard.admit("192.0.2.7") and guard.admit("192.0.2.7")
    assert not any(guard.admit("192.0.2.7") for _ in range(1000))
    (first,) = _lines(caplog)
    assert first.startswith("refused a connection from 192.0.2.7: it has 2 open")
    assert "--max-connections-per-client" in first

    # Another address and another limit are reported on their own.
    assert guard.admit("198.51.100.1")
    guard.header_late("192.0.2.7")
    (late,) = _lines(caplog)
    assert late.startswith("closed a connection from 192.0.2.7 that sent no complete")

    clock.now += 9.9
    assert not guard.admit("192.0.2.7")
    assert _lines(caplog) == []
    clock.now += 0.2
    assert not guard.admit("192.0.2.7")
    (later,) = _lines(caplog)
    assert later.startswith("refused 1001 connections from 192.0.2.7 in the 10 s since")

    # Released connections make room again.
    guard.release("192.0.2.7")
    assert guard.open_connections("192.0.2.7") == 1
    assert guard.admit("192.0.2.7")


def test_no_cap_means_no_cap() -> None:
    guard = ConnectionGuard(ConnectionLimits(per_client=0, header_timeout=5))
    assert all(guard.admit("192.0.2.7") for _ in range(10_000))
    assert guard.open_connections("192.0.2.7") == 10_000
