"""The event feed in-process: one encoding per event, a ring, cursors, one wake-up.

What the followers of a real host see is in ``test_followers.py``; these pin the
mechanism that makes it cheap, with a real event loop and no stand-ins.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from deepaas_host.online.feed import EventFeed, Subscription


def _run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 30))


def _events(frames: bytes) -> list[tuple[str, Any]]:
    out = []
    for block in frames.decode().split("\n\n"):
        if not block:
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        out.append((fields["event"], json.loads(fields["data"])))
    return out


class _Counted:
    """Counts how often it is turned into text, that is, encoded."""

    def __init__(self) -> None:
        self.encoded = 0

    def __str__(self) -> str:
        self.encoded += 1
        return "counted"


def test_a_follower_takes_everything_since_its_cursor_at_once() -> None:
    async def test() -> None:
        feed = EventFeed(asyncio.Event(), interval=0, keep_alive=0.05)
        feed.publish("m", {"type": "learn", "seq": 0})  # nobody follows: not kept
        assert not feed.active("m")
        sub = feed.subscribe("m")
        for seq in range(1, 6):
            feed.publish("m", {"type": "learn", "seq": seq})
        assert await sub.wait()
        events = _events(sub.take())
        assert [(kind, e["seq"]) for kind, e in events] == [("learn", s) for s in range(1, 6)]
        assert sub.take() == b""
        assert not await sub.wait()  # nothing new for keep_alive seconds: say so
        feed.publish("m", {"type": "label", "seq": 6})
        assert await sub.wait()
        assert [e["seq"] for _, e in _events(sub.take())] == [6]
        sub.close()
        assert not feed.active("m")

    _run(test)


def test_each_event_is_encoded_once_whatever_the_number_of_followers() -> None:
    async def test() -> None:
        feed = EventFeed(asyncio.Event(), interval=0)
        subs = [feed.subscribe("m") for _ in range(300)]
        value = _Counted()
        for seq in range(1, 11):
            feed.publish("m", {"type": "learn", "seq": seq, "value": value})
        assert value.encoded == 10
        takes = [sub.take() for sub in subs]
        assert all(take == takes[0] for take in takes)
        assert [e["value"] for _, e in _events(takes[0])] == ["counted"] * 10
        assert value.encoded == 10

    _run(test)


def test_a_follower_that_fell_out_of_the_ring_is_told_what_it_lost() -> None:
    async def test() -> None:
        feed = EventFeed(asyncio.Event(), size=10, interval=0)
        sub = feed.subscribe("m")
        for seq in range(1, 26):
            feed.publish("m", {"type": "learn", "seq": seq})
        events = _events(sub.take())
        assert events[0] == ("dropped", {"dropped": 15})
        assert [e["seq"] for _, e in events[1:]] == list(range(16, 26))
        assert sub.dropped == 15
        feed.publish("m", {"type": "label", "seq": 26})
        assert _events(sub.take()) == [("label", {"type": "label", "seq": 26})]

    _run(test)


def test_the_ring_is_bounded_in_bytes_and_a_take_in_size() -> None:
    async def test() -> None:
        feed = EventFeed(asyncio.Event(), size=1000, max_bytes=10_000, interval=0)
        sub = feed.subscribe("m")
        pad = "x" * 900  # about 1 kB a frame
        for seq in range(1, 101):
            feed.publish("m", {"type": "learn", "seq": seq, "pad": pad})
        first = _events(sub.take(limit=3000))
        assert first[0][0] == "dropped" and first[0][1]["dropped"] >= 90
        kept = [e["seq"] for _, e in first[1:]]
        assert 1 <= len(kept) <= 4  # stops once past the limit
        rest = [e["seq"] for _, e in _events(sub.take())]
        assert kept + rest == list(range(kept[0], 101))

    _run(test)


def test_followers_share_one_wake_up_at_most_once_per_interval() -> None:
    async def test() -> None:
        feed = EventFeed(asyncio.Event(), interval=3600)
        takes: list[int] = []

        async def follow(sub: Subscription) -> None:
            count = 0
            while await sub.wait() and not sub.closed:
                sub.take()
                count += 1
            takes.append(count)

        tasks = [asyncio.ensure_future(follow(feed.subscribe("m"))) for _ in range(100)]
        await asyncio.sleep(0.01)
        feed.publish("m", {"type": "learn", "seq": 1})  # the leading edge: wakes them all
        await asyncio.sleep(0.05)
        for seq in range(2, 100):  # within the hour: nobody is woken again
            feed.publish("m", {"type": "learn", "seq": seq})
            await asyncio.sleep(0)
        await asyncio.sleep(0.1)
        feed.close("m")
        await asyncio.gather(*tasks)
        assert takes == [1] * 100

    _run(test)


def test_a_follower_that_leaves_does_not_cancel_the_others_wake_up() -> None:
    async def test() -> None:
        feed = EventFeed(asyncio.Event(), interval=0)
        stays, leaves = feed.subscribe("m"), feed.subscribe("m")
        staying = asyncio.ensure_future(stays.wait())
        leaving = asyncio.ensure_future(leaves.wait())
        await asyncio.sleep(0.01)
        leaving.cancel()  # as a handler is cancelled when the host stops
        await asyncio.sleep(0.01)
        assert not staying.done()
        feed.publish("m", {"type": "learn", "seq": 1})
        assert await staying

    _run(test)


def test_setting_stopping_ends_every_follower() -> None:
    async def test() -> None:
        stopping = asyncio.Event()
        feed = EventFeed(stopping)
        subs = [feed.subscribe(name) for name in ("a", "b", "b")]
        waits = [asyncio.ensure_future(sub.wait()) for sub in subs]
        await asyncio.sleep(0.01)
        stopping.set()
        assert await asyncio.gather(*waits) == [True, True, True]
        assert all(sub.closed for sub in subs)
        assert feed.subscribe("c").closed  # and any that comes later

    _run(test)
