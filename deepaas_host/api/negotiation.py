"""HTTP ``Accept`` negotiation against the media types a model can return."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MediaRange", "choose_media_type", "parse_accept", "prefer_header"]


@dataclass(frozen=True)
class MediaRange:
    type: str
    subtype: str
    q: float

    def matches(self, media_type: str) -> int:
        """Specificity of the match (3 exact, 2 ``type/*``, 1 ``*/*``), 0 for none."""
        main, _, sub = media_type.partition("/")
        if self.type == "*":
            return 1
        if self.type != main.lower():
            return 0
        if self.subtype == "*":
            return 2
        return 3 if self.subtype == sub.lower() else 0


def parse_accept(header: str) -> list[MediaRange]:
    ranges = []
    for item in header.split(","):
        media, *params = (p.strip() for p in item.split(";"))
        if not media:
            continue
        if media == "*":
            media = "*/*"
        main, _, sub = media.partition("/")
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        ranges.append(MediaRange(main.lower(), (sub or "*").lower(), q))
    return ranges


def choose_media_type(
    header: str | None, offered: Sequence[str], default: str | None = None
) -> str | None:
    """Best offered type for ``header``; the default wins ties; None if nothing fits."""
    if not offered:
        return None
    preferred = default if default in offered else offered[0]
    if not header or not header.strip():
        return preferred
    ranges = parse_accept(header)
    if not ranges:
        return preferred
    best: tuple[float, int, int, int] | None = None
    chosen = None
    for position, media_type in enumerate(offered):
        specificity, q = 0, 0.0
        for r in ranges:
            s = r.matches(media_type)
            if s > specificity:
                specificity, q = s, r.q
        if specificity == 0 or q <= 0:
            continue
        rank = (q, specificity, 1 if media_type == preferred else 0, -position)
        if best is None or rank > best:
            best, chosen = rank, media_type
    return chosen


def prefer_header(requested: str, header: str | None, offered: Sequence[str]) -> str:
    """The media type to send when the client also named one in an argument.

    The argument stands unless the Accept header excludes it while allowing
    another offered type: then the header decides, so a client never gets a
    type it said it cannot take. (Swagger UI sends the form's default ``accept``
    next to the Accept header picked in its "Media type" menu.)
    """
    if not header or choose_media_type(header, [requested]) is not None:
        return requested
    return choose_media_type(header, offered, requested) or requested
