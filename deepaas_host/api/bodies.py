"""Reading request bodies: one size limit and one idle timeout for every route.

Every handler that reads a body reads it through a :class:`Body`::

    async with Body(request, limit=settings.max_body_size, idle=settings.body_timeout) as body:
        data = await body.read()                   # the whole body, or
        while chunk := await body.read_chunk():    # piece by piece, or
            ...
        part = await body.step(reader.next())      # any other read of it (multipart)

- More than ``limit`` bytes is a 413 ``PayloadTooLarge``: before anything is read
  when ``Content-Length`` says so, as soon as the limit is passed when the body
  comes without one (chunked).
- ``idle`` seconds without a byte while the handler waits for one is a 408
  ``RequestTimeout``. One ``asyncio.timeout`` per body is moved forward whenever
  the handler waits for data and disarmed when data arrives, so time spent
  elsewhere (in a worker, in a thread) never counts against the client, and a
  body costs two timer moves per chunk rather than a timer per read.
- A client that hangs up half-way is ``ClientGone``: nobody is left to answer.

Work proportional to a large body (decoding, validating) goes to a thread with
:func:`off_loop`, so one huge body does not stall every other request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TypeVar

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from deepaas_host.errors import ClientGone, MalformedBody, PayloadTooLarge, RequestTimeout

__all__ = ["CHUNK", "LARGE", "Body", "off_loop"]

T = TypeVar("T")

CHUNK = 1 << 16
#: Bodies above this size are decoded and validated in a thread. Validating
#: arguments costs about 0.25 ms per KiB of small JSON items (0.5 ms with
#: errors): below 16 KiB that is a few milliseconds on the loop, above it the
#: ~0.1 ms hop to a thread is noise next to the work it moves.
LARGE = 16 << 10


async def off_loop(large: bool, func: Callable[..., T], *args: object) -> T:
    """``func(*args)``, in a thread when ``large``.

    Python code in the thread gives the event loop its turn every few
    milliseconds; one long C call (``json.loads``, ``pickle.dumps``) keeps it
    for that call's duration, about 10 ms per MB.
    """
    if large:
        return await asyncio.to_thread(func, *args)
    return func(*args)


class Body:
    """The body of ``request``, read within ``limit`` bytes and ``idle`` seconds."""

    def __init__(self, request: web.Request, *, limit: int, idle: float) -> None:
        self._request = request
        self._content = request.content
        self.limit = limit
        self.idle = idle
        self._timer: asyncio.Timeout | None = None

    async def __aenter__(self) -> Body:
        length = self._request.content_length
        if length is not None and length > self.limit:
            raise PayloadTooLarge(
                f"The request body ({length} bytes) exceeds {self.limit} bytes.",
                details={"limit": self.limit},
            )
        self._timer = asyncio.timeout(None)
        await self._timer.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._timer is not None
        try:
            await self._timer.__aexit__(exc_type, exc, tb)
        except TimeoutError:
            raise RequestTimeout(
                f"The request body stalled: nothing arrived for {self.idle:g} seconds.",
                details={"body_timeout": self.idle},
            ) from None

    @property
    def received(self) -> int:
        """Bytes of the body received so far (read or buffered)."""
        return self._content.total_bytes

    async def step(self, read: Awaitable[T]) -> T:
        """Await ``read``, a read of this body, within the idle timeout and the limit."""
        timer = self._timer
        assert timer is not None, "a Body is used inside 'async with'"
        timer.reschedule(asyncio.get_running_loop().time() + self.idle)
        try:
            result = await read
        except ConnectionError as exc:
            raise ClientGone("The client disconnected while sending the body.") from exc
        except HttpProcessingError as exc:  # a broken chunked encoding, a short body
            raise MalformedBody(f"The request body is malformed: {exc.message}") from exc
        finally:
            if not timer.expired():
                timer.reschedule(None)
        if self._content.total_bytes > self.limit:
            raise PayloadTooLarge(
                f"The request body exceeds {self.limit} bytes.", details={"limit": self.limit}
            )
        return result

    async def read_chunk(self, size: int = CHUNK) -> bytes:
        """Up to ``size`` bytes as soon as any arrive; ``b""`` at the end."""
        return await self.step(self._content.read(size))

    async def read(self) -> bytes:
        """The whole body."""
        data = bytearray()
        while chunk := await self.read_chunk():
            data += chunk
        return bytes(data)
