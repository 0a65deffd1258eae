"""Numbers no model can be handed, and empty required strings: 422 in every transport.

The ``numbers`` plugin declares plain marshmallow fields (no bounds of its own)
and echoes what reached it, so these tests see both the refusals and the
values let through. Bodies are written by hand where a JSON library would not
write them (``1e999``, ``NaN``, a 400-digit integer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from conftest import Host

from .conftest import assert_error

NUMBERS = "/v2/models/numbers/predict/"
REQUIRED = {"name": "n", "code": "c"}
HUGE = "1" + "0" * 400

Send = Callable[[Host, dict[str, str]], requests.Response]


def by_query(host: Host, args: dict[str, str]) -> requests.Response:
    return host.post(NUMBERS, params=args)


def by_form(host: Host, args: dict[str, str]) -> requests.Response:
    return host.post(NUMBERS, data=args)


def by_multipart(host: Host, args: dict[str, str]) -> requests.Response:
    return host.post(NUMBERS, files={k: (None, v) for k, v in args.items()})


def by_json_text(host: Host, args: dict[str, str]) -> requests.Response:
    """Each value written into the JSON body as it is (a JSON number, not a string)."""
    text = "{" + ", ".join(f'"{k}": {v}' for k, v in args.items()) + "}"
    return host.post(NUMBERS, data=text, headers={"Content-Type": "application/json"})


TRANSPORTS = [by_query, by_form, by_multipart, by_json_text]


def raw_json(host: Host, body: str) -> requests.Response:
    return host.post(NUMBERS, data=body, headers={"Content-Type": "application/json"})


def echoed(response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    got: dict[str, Any] = response.json()["predictions"]["got"]
    return got


def with_required(args: dict[str, str], send: Send) -> dict[str, str]:
    quoted = {k: f'"{v}"' for k, v in REQUIRED.items()} if send is by_json_text else REQUIRED
    return {**quoted, **args}


@pytest.mark.parametrize("send", TRANSPORTS)
@pytest.mark.parametrize("value", ["1.9", "-0.5", "1e999", "-1e999", HUGE, "9223372036854775808"])
def test_an_integer_argument_takes_no_fraction_and_no_huge_number(
    input_host: Host, send: Send, value: str
) -> None:
    body = assert_error(send(input_host, with_required({"count": value}, send)), 422)
    assert set(body["details"]) == {"count"}


def test_an_integral_json_number_is_taken_as_an_integer(input_host: Host) -> None:
    got = echoed(raw_json(input_host, '{"name": "n", "code": "c", "count": 2.0, "small": 10}'))
    assert got["count"] == 2 and isinstance(got["count"], int)
    limits = (
        '{"name": "n", "code": "c", "count": -9223372036854775808, "counts": [9223372036854775807]}'
    )
    got = echoed(raw_json(input_host, limits))
    assert got["count"] == -(2**63)
    assert got["counts"] == [2**63 - 1]


@pytest.mark.parametrize("send", TRANSPORTS)
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ratio", HUGE),
        ("ratio", "1e999"),
        ("amount", HUGE),
        ("amount", "1e999"),
        ("number", "-1e999"),
        ("number", HUGE),
    ],
)
def test_numbers_beyond_a_double_are_refused(
    input_host: Host, send: Send, name: str, value: str
) -> None:
    body = assert_error(send(input_host, with_required({name: value}, send)), 422)
    assert set(body["details"]) == {name}


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("name", ["ratio", "amount", "number", "count"])
def test_nan_and_infinities_are_refused(input_host: Host, name: str, value: str) -> None:
    # the JSON parser takes these non-standard literals, so the schema must refuse them
    body = assert_error(
        raw_json(input_host, f'{{"name": "n", "code": "c", "{name}": {value}}}'), 422
    )
    assert set(body["details"]) == {name}
    text = {"nan": "nan", "NaN": "nan", "Infinity": "inf", "-Infinity": "-inf"}[value]
    assert_error(input_host.post(NUMBERS, params={**REQUIRED, name: text}), 422)


def test_a_decimal_string_with_a_huge_exponent_is_refused(input_host: Host) -> None:
    for value in ("1e999999999", "-1E+400", "sNaN"):
        body = assert_error(input_host.post(NUMBERS, params={**REQUIRED, "amount": value}), 422)
        assert set(body["details"]) == {"amount"}
    assert (
        echoed(input_host.post(NUMBERS, params={**REQUIRED, "amount": "1.25"}))["amount"] == "1.25"
    )


@pytest.mark.parametrize(
    ("body", "details"),
    [
        ('"counts": [1, 2.5, 3]', {"counts": {"1": ["Not a valid integer."]}}),
        ('"counts": [1, 1e999]', {"counts": {"1": ["Not a valid integer."]}}),
        (f'"counts": [{HUGE}]', None),
        ('"pair": [1.5, 2]', {"pair": {"0": ["Not a valid integer."]}}),
        (f'"pair": [1, {HUGE}]', None),
        ('"weights": {"a": 0.5}', {"weights": {"a": {"value": ["Not a valid integer."]}}}),
        ('"point": {"x": 1.5, "label": "p"}', {"point": {"x": ["Not a valid integer."]}}),
        ('"point": {"x": 1, "y": NaN, "label": "p"}', None),
        ('"point": {"x": 1, "label": ""}', {"point": {"label": ["Must not be empty."]}}),
    ],
)
def test_nested_numbers_are_checked_too(
    input_host: Host, body: str, details: dict[str, Any] | None
) -> None:
    answer = assert_error(raw_json(input_host, f'{{"name": "n", "code": "c", {body}}}'), 422)
    if details is not None:
        assert answer["details"] == details
    else:
        assert len(answer["details"]) == 1


def test_a_query_string_list_of_integers_refuses_a_fraction(input_host: Host) -> None:
    body = assert_error(input_host.post(NUMBERS, params={**REQUIRED, "counts": ["1", "2.5"]}), 422)
    assert set(body["details"]) == {"counts"}
    got = echoed(input_host.post(NUMBERS, params={**REQUIRED, "counts": ["1", "2"]}))
    assert got["counts"] == [1, 2]


@pytest.mark.parametrize(("name", "value"), [("span", "1e999"), ("span", HUGE), ("moment", HUGE)])
def test_a_number_too_large_for_a_time_field_is_refused(
    input_host: Host, name: str, value: str
) -> None:
    body = assert_error(
        raw_json(input_host, f'{{"name": "n", "code": "c", "{name}": {value}}}'), 422
    )
    assert set(body["details"]) == {name}


@pytest.mark.parametrize("send", TRANSPORTS)
def test_a_required_string_refuses_an_empty_value(input_host: Host, send: Send) -> None:
    args = {"name": '""', "code": '"c"'} if send is by_json_text else {"name": "", "code": "c"}
    body = assert_error(send(input_host, args), 422, "ArgumentError")
    assert set(body["details"]) == {"name"}


def test_a_plugins_own_length_rule_is_kept(input_host: Host) -> None:
    # code declares Length(max=3): its "" is the plugin's call, in JSON
    got = echoed(input_host.post(NUMBERS, json={"name": "n", "code": ""}))
    assert got["code"] == ""
    # in a form an empty value is no value, and code is required
    body = assert_error(input_host.post(NUMBERS, data={"name": "n", "code": ""}), 422)
    assert set(body["details"]) == {"code"}


def test_an_example_plugins_required_text_refuses_an_empty_string(input_host: Host) -> None:
    body = assert_error(input_host.post("/v2/models/word-counts/predict/", json={"text": ""}), 422)
    assert set(body["details"]) == {"text"}
    answer = input_host.post("/v2/models/word-counts/predict/", json={"text": "a b"})
    assert answer.status_code == 200, answer.text


def test_the_host_keeps_serving_after_every_refusal(input_host: Host) -> None:
    # refusals never reach a worker, and never a 500: nothing was logged as unhandled
    health = input_host.health()
    assert health["ready"] is True
    assert health["pools"]["predict"]["restarts"] == 0
    assert "unhandled error" not in input_host.log()
    assert (
        echoed(input_host.post(NUMBERS, json={"name": "n", "code": "c", "count": 7}))["count"] == 7
    )


def test_the_document_states_the_bounds(input_host: Host) -> None:
    spec = input_host.get("/v2/openapi.json").json()
    content = spec["paths"][NUMBERS]["post"]["requestBody"]["content"]
    for media, schema in ((m, c["schema"]) for m, c in content.items()):
        properties = schema["properties"]
        assert properties["name"]["minLength"] == 1, media
        assert properties["count"] == {
            "type": "integer",
            "minimum": -(2**63),
            "maximum": 2**63 - 1,
        }
        assert properties["small"]["minimum"] == 0 and properties["small"]["maximum"] == 10
        # A float is a JSON number, which is a finite double: nothing more to state.
        assert properties["ratio"]["type"] == "number"
        assert "maximum" not in properties["ratio"]
        for name in ("amount", "number"):
            assert properties[name]["type"] == "number"
            assert properties[name]["maximum"] == 1.7976931348623157e308
            assert properties[name]["minimum"] == -1.7976931348623157e308
        assert properties["counts"]["items"]["type"] == "integer"
        assert properties["counts"]["items"]["maximum"] == 2**63 - 1
        assert properties["pair"] == {"type": "array", "minItems": 2, "maxItems": 2}
        # code's own Length: "" is allowed in JSON only
        assert properties["code"].get("minLength") == (None if media == "application/json" else 1)
    point = spec["components"]["schemas"]["Point"]["properties"]
    assert point["x"]["type"] == "integer" and point["x"]["maximum"] == 2**63 - 1
    assert point["label"]["minLength"] == 1
