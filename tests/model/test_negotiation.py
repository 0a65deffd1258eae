"""``Accept`` negotiation against the media types a model offers."""

from __future__ import annotations

import pytest

from deepaas_host.api.negotiation import MediaRange, choose_media_type, parse_accept

DEMO = ["application/json", "application/zip", "image/png"]


@pytest.mark.parametrize("header", [None, "", "   ", "*/*", "*", ",", "application/*"])
def test_no_preference_gives_the_default(header: str | None) -> None:
    assert choose_media_type(header, DEMO, "application/json") == "application/json"


def test_without_a_usable_default_the_first_offer_wins_ties() -> None:
    assert choose_media_type(None, DEMO, None) == "application/json"
    assert choose_media_type("*/*", DEMO, "text/plain") == "application/json"
    assert choose_media_type("*/*", DEMO, "image/png") == "image/png"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("image/png", "image/png"),
        ("IMAGE/PNG", "image/png"),
        ("application/zip", "application/zip"),
        ("image/*", "image/png"),
        ("text/html, image/png", "image/png"),
        ("application/json;q=0.5, image/png", "image/png"),
        ("image/png;q=0.2, application/zip;q=0.9", "application/zip"),
        ("text/html;level=1;q=0.4, application/zip;q=0.3", "application/zip"),
    ],
)
def test_the_client_preference_is_honoured(header: str, expected: str) -> None:
    assert choose_media_type(header, DEMO, "application/json") == expected


def test_nothing_acceptable_is_none() -> None:
    assert choose_media_type("text/html", DEMO, "application/json") is None
    assert choose_media_type("image/png;q=0", DEMO, "application/json") is None
    assert choose_media_type("image/png;q=oops", DEMO, "application/json") is None
    assert choose_media_type("*/*", [], None) is None


def test_the_most_specific_range_decides_the_quality() -> None:
    # image/png is excluded explicitly although */* would accept it.
    assert choose_media_type("image/png;q=0, */*", ["image/png", "application/zip"]) == (
        "application/zip"
    )
    # image/png matches its own range (q=0.1), image/jpeg only image/* (q=0.5).
    offered = ["image/png", "image/jpeg"]
    assert choose_media_type("image/*;q=0.5, image/png;q=0.1", offered) == "image/jpeg"


def test_equal_quality_prefers_the_more_specific_match() -> None:
    assert choose_media_type("*/*, image/png", DEMO, "application/json") == "image/png"


def test_structured_syntax_is_not_confused_with_its_base_type() -> None:
    offered = ["application/json", "application/geo+json"]
    assert choose_media_type("application/geo+json", offered) == "application/geo+json"


def test_parse_accept_clamps_quality_and_lowercases() -> None:
    assert parse_accept("Image/PNG;q=2, text/*;q=-1, *") == [
        MediaRange("image", "png", 1.0),
        MediaRange("text", "*", 0.0),
        MediaRange("*", "*", 1.0),
    ]
