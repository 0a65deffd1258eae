"""Names for online models: checked when given, two friendly words when not."""

from __future__ import annotations

import random
import re
from collections.abc import Container

from deepaas_host.errors import ArgumentError

__all__ = ["NAME_PATTERN", "check_name", "friendly_name"]

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

_ADJECTIVES = (
    "amber", "brave", "bright", "calm", "clever", "cosmic", "crisp", "curious", "daring",
    "eager", "fancy", "gentle", "golden", "happy", "humble", "jolly", "keen", "lively",
    "lucky", "mellow", "merry", "misty", "nimble", "noble", "patient", "plucky", "proud",
    "quick", "quiet", "rapid", "rosy", "silent", "silver", "sleek", "snappy", "spry",
    "steady", "sunny", "swift", "tidy", "vivid", "warm", "wise", "witty", "zesty",
)  # fmt: skip
_NOUNS = (
    "badger", "beacon", "bison", "comet", "cricket", "dolphin", "falcon", "fern", "finch",
    "fox", "gecko", "glacier", "harbor", "heron", "island", "jaguar", "koala", "lagoon",
    "lantern", "lynx", "maple", "meadow", "meteor", "otter", "owl", "panda", "pebble",
    "pine", "quokka", "raven", "river", "robin", "salmon", "sparrow", "spruce", "summit",
    "tiger", "tulip", "walrus", "willow", "wombat", "yak", "zebra",
)  # fmt: skip


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise ArgumentError(
            f"Invalid model name {name!r}.",
            details={
                "name": [
                    "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit."
                ]
            },
        )
    return name


def friendly_name(taken: Container[str], rng: random.Random | None = None) -> str:
    """Two friendly words (``swift-otter``), with a number added if all are taken."""
    rng = rng or random.Random()
    for _ in range(50):
        name = f"{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}"
        if name not in taken:
            return name
    while True:
        name = f"{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}-{rng.randrange(10_000)}"
        if name not in taken:
            return name
