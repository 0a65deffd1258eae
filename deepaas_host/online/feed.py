"""Live events of online models, for the followers of ``…/stream/events``.

A model with followers has one ring of its latest events, each encoded once as
a server-sent-event frame when it is published. Every follower keeps a cursor:
the number of the next event it has not sent yet::

    published   0  1  2  3 [4  5  6  7  8  9]    the ring holds 4..9: start 4, end 10
    follower A                    ^ cursor 7    sends 7, 8, 9 in one write
    follower B        ^ cursor 2                fell out: "dropped 2", then sends 4..9

Publishing appends to the ring and, at most once per ``interval``, resolves
the ring's one wake-up future, which all its waiting followers share: its cost
does not depend on how many follow. When nothing happens for ``keep_alive``
seconds the ring wakes its followers to say so (a comment keeps proxies from
closing the stream). A follower that does not read stops waiting on the ring
(its writes block instead) and loses what falls out of the ring, never slowing
the model or the other followers.
"""

from __future__ import annotations

import asyncio
import bisect
import json
from typing import Any

__all__ = ["EventFeed", "Subscription", "sse_frame"]

#: Bytes of frames one follower writes at once: bounds what a follower that does
#: not read can leave buffered in its connection.
WRITE_LIMIT = 256 << 10


def sse_frame(event: str, data: Any, ident: Any = None) -> bytes:
    """One server-sent event."""
    head = f"event: {event}\n" + (f"id: {ident}\n" if ident is not None else "")
    return (head + f"data: {json.dumps(data, default=str)}\n\n").encode()


class _Ring:
    """The latest encoded events of one model: at most ``size`` and ``max_bytes``."""

    def __init__(self, size: int, max_bytes: int, interval: float, keep_alive: float) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self.interval = interval
        self.keep_alive = keep_alive
        self.frames: list[bytes] = []
        #: Bytes published before each frame: a follower's share is one slice.
        self.marks: list[int] = []
        self.published = 0
        self.head = 0  # index in ``frames`` of event number ``start``
        self.start = 0
        self.end = 0
        self.bytes = 0
        self.followers = 0
        self.closed = False
        self._loop = asyncio.get_running_loop()
        self.changed: asyncio.Future[None] = self._loop.create_future()
        self._wake_at: float | None = None  # a wake-up is scheduled
        self._woke = -interval  # loop time of the last wake-up
        #: Keep-alive wake-ups so far: a follower woken by one has nothing new.
        self.ticks = 0
        self._ticker = self._loop.call_later(keep_alive, self._tick)

    def append(self, frame: bytes) -> None:
        self.frames.append(frame)
        self.marks.append(self.published)
        self.published += len(frame)
        self.end += 1
        self.bytes += len(frame)
        while self.end - self.start > self.size or (
            self.bytes > self.max_bytes and self.end - self.start > 1
        ):
            self.bytes -= len(self.frames[self.head])
            self.head += 1
            self.start += 1
        if self.head > len(self.frames) // 2:
            del self.frames[: self.head]
            del self.marks[: self.head]
            self.head = 0
        if self._wake_at is None:
            # Leading edge now, then at most one wake-up per interval: under a
            # flood of events followers wake a few times a second, not per event.
            self._wake_at = max(self._loop.time(), self._woke + self.interval)
            self._loop.call_at(self._wake_at, self.wake)

    def wake(self) -> None:
        self._wake_at = None
        self._woke = self._loop.time()
        changed, self.changed = self.changed, self._loop.create_future()
        changed.set_result(None)

    def _tick(self) -> None:
        quiet = self._loop.time() - self._woke
        if quiet >= self.keep_alive:
            self.ticks += 1
            self.wake()
            quiet = 0
        self._ticker = self._loop.call_later(self.keep_alive - quiet, self._tick)

    def close(self) -> None:
        self._ticker.cancel()
        self.closed = True
        self.wake()

    def since(self, cursor: int, limit: int) -> tuple[int, int, bytes]:
        """(events lost before ``cursor`` could be sent, the new cursor, the frames)."""
        lost = max(0, self.start - cursor)
        cursor = max(cursor, self.start)
        first = self.head + cursor - self.start
        count = len(self.frames)
        if first >= count:
            return lost, cursor, b""
        # Whole frames that start within ``limit`` bytes of the first (one at least).
        last = bisect.bisect_left(self.marks, self.marks[first] + limit, first + 1, count)
        return lost, cursor + last - first, b"".join(self.frames[first:last])


class Subscription:
    """One follower of one model: a cursor in the model's ring."""

    def __init__(self, feed: EventFeed, name: str, ring: _Ring) -> None:
        self._feed = feed
        self._name = name
        self._ring = ring
        self.cursor = ring.end
        self.dropped = 0

    @property
    def closed(self) -> bool:
        return self._ring.closed

    async def wait(self) -> bool:
        """Wait for events or the end of the feed (True), or a keep-alive wake-up (False)."""
        ring = self._ring
        while self.cursor >= ring.end and not ring.closed:
            ticks = ring.ticks
            # Shielded: a follower that leaves must not cancel what the others await.
            await asyncio.shield(ring.changed)
            if ring.ticks != ticks and self.cursor >= ring.end and not ring.closed:
                return False
        return True

    def take(self, limit: int = WRITE_LIMIT) -> bytes:
        """The frames since the cursor (about ``limit`` bytes at most), a drop notice first."""
        lost, self.cursor, frames = self._ring.since(self.cursor, limit)
        self.dropped += lost
        if lost:
            return sse_frame("dropped", {"dropped": lost}) + frames
        return frames

    def close(self) -> None:
        self._feed.unsubscribe(self._name, self)


class EventFeed:
    """The rings of the models that have followers; every stream ends once ``stopping`` is set."""

    def __init__(
        self,
        stopping: asyncio.Event,
        *,
        size: int = 1024,
        max_bytes: int = 8 << 20,
        interval: float = 0.1,
        keep_alive: float = 15.0,
    ) -> None:
        self.stopping = stopping
        self.size = size
        self.max_bytes = max_bytes
        self.interval = interval
        self.keep_alive = keep_alive
        self._rings: dict[str, _Ring] = {}
        self._watch: asyncio.Task[None] | None = None

    async def _close_on_stop(self) -> None:
        await self.stopping.wait()
        self.close()

    def active(self, name: str) -> bool:
        return name in self._rings

    def subscribe(self, name: str) -> Subscription:
        if self._watch is None:
            self._watch = asyncio.ensure_future(self._close_on_stop())
        ring = self._rings.get(name)
        if ring is None:
            ring = _Ring(self.size, self.max_bytes, self.interval, self.keep_alive)
            if self.stopping.is_set():
                ring.close()
            else:
                self._rings[name] = ring
        ring.followers += 1
        return Subscription(self, name, ring)

    def unsubscribe(self, name: str, sub: Subscription) -> None:
        ring = self._rings.get(name)
        if ring is not None and ring is sub._ring:
            ring.followers -= 1
            if ring.followers <= 0:
                del self._rings[name]
                ring.close()

    def publish(self, name: str, event: dict[str, Any]) -> None:
        """Encode ``event`` once and append it to the ring of ``name``, if followed."""
        ring = self._rings.get(name)
        if ring is not None:
            ring.append(sse_frame(event["type"], event, event.get("seq")))

    def close(self, name: str | None = None) -> None:
        """End the streams of ``name`` (of every model without)."""
        for key in [name] if name is not None else list(self._rings):
            ring = self._rings.pop(key, None)
            if ring is not None:
                ring.close()
