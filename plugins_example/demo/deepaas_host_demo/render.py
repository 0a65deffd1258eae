"""PNG drawing for the demo model (the only module that imports Pillow)."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

WIDTH = 400
HEIGHT = 240
MARGIN = 16
CAPTION_HEIGHT = 28
COLOURS = {"cat": (230, 126, 34), "dog": (41, 128, 185), "bird": (39, 174, 96)}


def draw_bars(label: str, values: list[float]) -> bytes:
    """Draw one bar per value (height clamped to 0..1 of the plot) and a caption.

    >>> png = draw_bars("cat", [0.5, 1.0])
    >>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    """
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    draw.text((MARGIN, 8), f"{label}: {len(values)} value(s)", fill="black")

    top = CAPTION_HEIGHT
    bottom = HEIGHT - MARGIN
    plot_height = bottom - top
    plot_width = WIDTH - 2 * MARGIN
    slot = plot_width / max(len(values), 1)
    colour = COLOURS.get(label, (127, 127, 127))
    for i, value in enumerate(values):
        fraction = min(max(value, 0.0), 1.0)
        x0 = MARGIN + i * slot + slot * 0.1
        x1 = MARGIN + (i + 1) * slot - slot * 0.1
        y0 = bottom - fraction * plot_height
        if fraction > 0:
            draw.rectangle((x0, y0, max(x1, x0 + 1), bottom), fill=colour)
    draw.line((MARGIN, bottom, WIDTH - MARGIN, bottom), fill="black", width=1)

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
