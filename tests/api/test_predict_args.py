"""Where predict arguments come from, how they are coerced, and how bad input is refused."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest
import requests
from conftest import Host

from .conftest import assert_error, predictions

DEMO = "/v2/models/demo/predict/"
#: What the demo model reports about itself, not about the arguments.
PER_WORKER = ("pid", "warm_pid", "warm_count")


def echo(response: requests.Response) -> dict[str, Any]:
    body: dict[str, Any] = predictions(response)
    for key in PER_WORKER:
        body.pop(key)
    return body


# -- sources ----------------------------------------------------------------------


def test_every_argument_source_gives_the_same_answer(host: Host) -> None:
    args = {"label": "dog", "count": "3", "scale": "2.5", "flag": "true"}
    by_query = echo(host.post(DEMO, params=args))
    by_form = echo(host.post(DEMO, data=args))
    by_multipart = echo(host.post(DEMO, files={k: (None, v) for k, v in args.items()}))
    by_json = echo(host.post(DEMO, json={"label": "dog", "count": 3, "scale": 2.5, "flag": True}))
    assert by_query == by_form == by_multipart == by_json
    assert by_query["label"] == "dog"
    assert by_query["count"] == 3
    assert by_query["scale"] == 2.5
    assert by_query["flag"] is True
    assert by_query["values"] == pytest.approx([2.5 * (i + 1) / 3 for i in range(3)])


def test_multipart_with_a_file_reaches_the_model_intact(host: Host) -> None:
    content = os.urandom(50_000) + b"\r\n--not-a-boundary\r\n"
    response = host.post(
        DEMO,
        data={"label": "bird", "tags": ["x", "y"]},
        files={"data": ("sample.bin", content, "application/x-test")},
    )
    body = echo(response)
    assert body["label"] == "bird"
    assert body["tags"] == ["x", "y"]
    assert body["data"] == {
        "name": "data",
        "original_filename": "sample.bin",
        "content_type": "application/x-test",
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
    }


def test_query_and_body_are_merged(host: Host) -> None:
    body = echo(host.post(DEMO, params={"label": "dog"}, data={"count": "2"}))
    assert (body["label"], body["count"]) == ("dog", 2)
    body = echo(host.post(DEMO, params={"count": "4"}, json={"label": "bird"}))
    assert (body["label"], body["count"]) == ("bird", 4)


def test_lists_from_repeated_keys_and_json_arrays(host: Host) -> None:
    expected = ["a", "b", "c d"]
    assert echo(host.post(DEMO, params={"tags": expected}))["tags"] == expected
    assert echo(host.post(DEMO, data={"tags": expected}))["tags"] == expected
    multipart = [("tags", (None, t)) for t in expected]
    assert echo(host.post(DEMO, files=multipart))["tags"] == expected
    assert echo(host.post(DEMO, json={"tags": expected}))["tags"] == expected
    # one value is a list of one
    assert echo(host.post(DEMO, params={"tags": "solo"}))["tags"] == ["solo"]


@pytest.mark.parametrize(
    ("sent", "expected"),
    [("true", True), ("1", True), ("on", True), ("false", False), ("0", False), ("off", False)],
)
def test_bool_coercion(host: Host, sent: str, expected: bool) -> None:
    assert echo(host.post(DEMO, params={"flag": sent}))["flag"] is expected
    assert echo(host.post(DEMO, data={"flag": sent}))["flag"] is expected


def test_number_coercion_gives_json_numbers(host: Host) -> None:
    body = echo(host.post(DEMO, params={"count": "7", "scale": "-0.5"}))
    assert body["count"] == 7 and isinstance(body["count"], int)
    assert body["scale"] == -0.5 and isinstance(body["scale"], float)
    body = echo(host.post(DEMO, json={"count": "7", "scale": 3}))
    assert body["count"] == 7 and body["scale"] == 3.0


def test_defaults_are_applied(host: Host) -> None:
    for response in (host.post(DEMO), host.post(DEMO, json={}), host.post(DEMO, data={})):
        body = echo(response)
        assert body["label"] == "cat"
        assert body["count"] == 1
        assert body["scale"] == 1.0
        assert body["flag"] is False
        assert body["tags"] is None
        assert body["data"] is None
        assert body["accept"] == "application/json"


def test_legacy_missing_defaults_and_enum(host: Host) -> None:
    r = host.post("/v2/models/legacy/predict/")
    assert r.status_code == 200
    assert r.json()["predictions"][0] == {"label": "foo", "probability": 1.0}
    r = host.post("/v2/models/legacy/predict/", data={"arg1": "choice2"})
    assert r.json()["predictions"][0]["label"] == "choice2"
    body = assert_error(
        host.post("/v2/models/legacy/predict/", data={"arg1": "choice3"}), 422, "ArgumentError"
    )
    assert set(body["details"]) == {"arg1"}


def test_legacy_file_argument_declared_the_deepaas_way(host: Host) -> None:
    content = b"x" * 1234
    r = host.post("/v2/models/legacy/predict/", files={"data": ("in.txt", content)})
    assert r.status_code == 200, r.text
    labels = [p["label"] for p in r.json()["predictions"]]
    assert f"file:in.txt:{len(content)}" in labels


# -- 422 -----------------------------------------------------------------------

BAD = {
    "label": "cow",  # not in the enum
    "count": "0",  # out of range
    "scale": "abc",  # not a number
    "flag": "maybe",  # not a boolean
    "data": "just text",  # text sent to a file field
    "accept": "text/plain",  # not a choice
    "bogus": "1",  # unknown
}


def test_every_bad_field_is_named_query(host: Host) -> None:
    body = assert_error(host.post(DEMO, params=BAD), 422, "ArgumentError")
    assert set(body["details"]) == set(BAD)
    for name in BAD:
        assert name in body["message"]
        assert all(isinstance(m, str) and m for m in body["details"][name])
    assert any("upload" in m for m in body["details"]["data"])
    assert any("nknown" in m for m in body["details"]["bogus"])


def test_every_bad_field_is_named_multipart(host: Host) -> None:
    files = {k: (None, v) for k, v in BAD.items()}
    body = assert_error(host.post(DEMO, files=files), 422, "ArgumentError")
    assert set(body["details"]) == set(BAD)


def test_every_bad_field_is_named_json(host: Host) -> None:
    sent = {**BAD, "count": 1000, "tags": "not-a-list", "scale": [1]}
    body = assert_error(host.post(DEMO, json=sent), 422, "ArgumentError")
    assert set(body["details"]) == set(sent)


def test_one_bad_field_among_good_ones(host: Host) -> None:
    body = assert_error(host.post(DEMO, params={"label": "dog", "count": "101"}), 422)
    assert set(body["details"]) == {"count"}


def test_missing_required_arguments_are_each_named(small_host: Host) -> None:
    url = "/v2/models/strict/predict/"
    body = assert_error(small_host.post(url), 422, "ArgumentError")
    assert set(body["details"]) == {"text", "number", "choice", "image"}
    # some missing, some wrong, the file given as text
    body = assert_error(
        small_host.post(url, params={"text": "hi", "number": "11", "image": "x"}), 422
    )
    assert set(body["details"]) == {"number", "choice", "image"}
    # and everything right
    image = os.urandom(300)
    r = small_host.post(
        url,
        data={"text": "hi", "number": "10", "choice": "b"},
        files={"image": ("i.bin", image)},
    )
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == {
        "text": "hi",
        "number": 10,
        "choice": "b",
        "sha256": hashlib.sha256(image).hexdigest(),
    }


# -- malformed bodies ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{bad json", "not valid JSON"),
        (b'{"label": "dog"', "not valid JSON"),
        (b"[1, 2]", "object"),
        (b'"label"', "object"),
        (b"null", "object"),
        (b'{"label": "\xff"}', "not valid JSON"),
    ],
)
def test_invalid_or_non_object_json_is_400(host: Host, body: bytes, fragment: str) -> None:
    r = host.post(DEMO, data=body, headers={"Content-Type": "application/json"})
    payload = assert_error(r, 400, "MalformedBody")
    assert fragment in payload["message"]


@pytest.mark.parametrize(
    ("ctype", "body"),
    [
        ("application/x-www-form-urlencoded", b"label=\xff\xfe"),
        ("application/x-www-form-urlencoded; charset=no-such-charset", b"label=dog"),
        (
            "multipart/form-data; boundary=B",
            b'--B\r\nContent-Disposition: form-data; name="label"'
            b"\r\nContent-Type: text/plain; charset=no-such-charset\r\n\r\ndog\r\n--B--\r\n",
        ),
    ],
    ids=["bad-bytes", "unknown-charset", "unknown-part-charset"],
)
def test_undecodable_form_is_400(host: Host, ctype: str, body: bytes) -> None:
    r = host.post(DEMO, data=body, headers={"Content-Type": ctype})
    assert_error(r, 400, "MalformedBody")


@pytest.mark.parametrize("ctype", ["text/plain", "application/xml", "image/png"])
def test_unsupported_content_type_is_415(host: Host, ctype: str) -> None:
    r = host.post(DEMO, data=b"label=dog", headers={"Content-Type": ctype})
    body = assert_error(r, 415, "UnsupportedMediaType")
    assert ctype in body["message"]


def test_empty_form_values_count_as_not_given(host: Host) -> None:
    """What a browser form (and Swagger UI) sends for fields left untouched."""
    files = {
        "label": (None, "dog"),
        "count": (None, ""),
        "tags": (None, ""),
        "data": ("", b""),
        "accept": (None, ""),
    }
    response = host.post("/v2/models/demo/predict/", files=files)
    assert response.status_code == 200, response.text
    got = response.json()["predictions"]
    assert got["label"] == "dog"
    assert got["count"] == 1
    assert got["tags"] is None
    assert got["data"] is None
    assert got["accept"] == "application/json"
    # the same in a query string; a JSON body keeps "" as a value
    assert (
        host.post("/v2/models/demo/predict/?count=&label=bird").json()["predictions"]["count"] == 1
    )
    bad = host.post("/v2/models/demo/predict/", json={"label": ""})
    assert bad.status_code == 422
    assert set(bad.json()["details"]) == {"label"}
