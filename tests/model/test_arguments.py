"""Argument specs built from plugin fields, DEEPaaS-era idioms included."""

from __future__ import annotations

import importlib
from typing import Any

import marshmallow
import pytest
from marshmallow import fields, validate
from multidict import MultiDict

from deepaas_host.model.arguments import (
    accept_choices,
    build_argument_spec,
    field_choices,
    is_file_field,
    merge_arguments,
)
from deepaas_host.model.discovery import quiet_legacy_warnings
from deepaas_host.model.v2 import File, UploadedFile


def legacy_fields() -> dict[str, Any]:
    """The predict arguments exactly as the DEEPaaS-style example plugin writes them."""
    with quiet_legacy_warnings():
        # Its module-level response schema uses the same idioms, hence the import here.
        legacy_api = importlib.import_module("deepaas_legacy_plugin.api")
        args: dict[str, Any] = legacy_api.get_predict_args()
    return args


def upload(name: str = "data") -> UploadedFile:
    return UploadedFile(name, "/nonexistent/upload-1", "text/csv", "rows.csv")


def errors_of(exc: pytest.ExceptionInfo[marshmallow.ValidationError]) -> dict[str, Any]:
    messages = exc.value.normalized_messages()
    assert isinstance(messages, dict)
    return messages


def test_missing_gives_the_default_and_description_is_kept() -> None:
    spec = build_argument_spec("legacy", "predict", legacy_fields())
    assert spec.load({}) == {
        "arg1": "foo",
        "data": None,
        "url": None,
        "accept": "application/json",
    }
    assert spec.fields["arg1"].metadata["description"] == "Argument one"
    assert spec.fields["data"].metadata["description"] == "Data file to perform inference on."


def test_enum_is_enforced() -> None:
    spec = build_argument_spec("legacy", "predict", legacy_fields())
    assert spec.load({"arg1": "choice2"})["arg1"] == "choice2"
    with pytest.raises(marshmallow.ValidationError) as exc:
        spec.load({"arg1": "choice3"})
    assert list(errors_of(exc)) == ["arg1"]
    assert "choice1" in errors_of(exc)["arg1"][0]
    assert field_choices(spec.fields["arg1"]) == ["choice1", "choice2"]


def test_enum_next_to_one_of_keeps_the_validator_single() -> None:
    with quiet_legacy_warnings():
        raw = {"size": fields.Str(enum=["s", "m"], validate=validate.OneOf(["s", "m"]))}
    spec = build_argument_spec("shop", "predict", raw)
    one_of = [v for v in spec.fields["size"].validators if isinstance(v, validate.OneOf)]
    assert len(one_of) == 1


def test_deepaas_file_field_is_a_file_and_rejects_a_plain_string() -> None:
    spec = build_argument_spec("legacy", "predict", legacy_fields())
    assert spec.file_fields == frozenset({"data"})
    assert spec.load({"data": upload()})["data"] == upload()
    with pytest.raises(marshmallow.ValidationError) as exc:
        spec.load({"data": "/etc/passwd"})
    assert list(errors_of(exc)) == ["data"]
    assert "file upload" in errors_of(exc)["data"][0]


def test_host_file_field_behaves_like_the_deepaas_one() -> None:
    spec = build_argument_spec("demo", "predict", {"image": File(required=True)})
    assert is_file_field(spec.fields["image"])
    assert spec.file_fields == frozenset({"image"})
    with pytest.raises(marshmallow.ValidationError) as exc:
        spec.load({"image": "cat.png"})
    assert list(errors_of(exc)) == ["image"]
    with pytest.raises(marshmallow.ValidationError) as exc:
        spec.load({})
    assert list(errors_of(exc)) == ["image"]


def test_the_plugin_fields_are_not_changed() -> None:
    raw = legacy_fields()
    build_argument_spec("legacy", "predict", raw)
    assert raw["arg1"].validators == []
    assert raw["data"].validators == []


def test_accept_choices_and_default_come_from_the_accept_argument() -> None:
    spec = build_argument_spec("legacy", "predict", legacy_fields())
    assert spec.accept == ["application/zip", "image/png", "application/json"]
    assert spec.accept_default == "application/json"
    assert accept_choices({"accept": fields.Str()}) is None
    plain = build_argument_spec("m", "predict", {"x": fields.Int()})
    assert plain.accept is None
    assert plain.accept_default is None


def test_unknown_arguments_are_rejected() -> None:
    spec = build_argument_spec("m", "predict", {"x": fields.Int()})
    with pytest.raises(marshmallow.ValidationError) as exc:
        spec.load({"x": 1, "y": 2})
    assert list(errors_of(exc)) == ["y"]


def test_a_value_that_is_not_a_field_names_the_argument() -> None:
    with pytest.raises(TypeError, match=r"argument 'epochs' of m train is int"):
        build_argument_spec("m", "train", {"epochs": 3})


def test_none_means_no_arguments() -> None:
    spec = build_argument_spec("m", "predict", None)
    assert spec.fields == {}
    assert spec.load({}) == {}


def test_structured_fields_are_marked_for_json() -> None:
    spec = build_argument_spec(
        "m",
        "predict",
        {"options": fields.Dict(), "point": fields.Nested({"x": fields.Int()}), "n": fields.Int()},
    )
    assert spec.json_fields == frozenset({"options", "point"})


def test_merge_turns_repeated_keys_into_lists_only_where_the_schema_wants_one() -> None:
    spec = build_argument_spec(
        "m", "predict", {"tags": fields.List(fields.Str()), "label": fields.Str()}
    )
    raw: MultiDict[Any] = MultiDict([("tags", "a"), ("tags", "b"), ("label", "x")])
    merged = merge_arguments(raw, {"extra": 1}, spec.schema)
    assert merged == {"tags": ["a", "b"], "label": "x", "extra": 1}
    assert spec.load({"tags": merged["tags"], "label": "x"}) == {"tags": ["a", "b"], "label": "x"}


class Percent(fields.Integer):
    """A plugin's own field class: accepts "42%"."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str) and value.endswith("%"):
            value = value[:-1]
        return super()._deserialize(value, attr, data, **kwargs)


def test_the_host_refusals_sit_under_the_plugins_own_field_class() -> None:
    raw = {"share": Percent(), "count": fields.Int(), "ratio": fields.Float(allow_nan=True)}
    spec = build_argument_spec("m", "predict", raw)
    assert spec.load({"share": "42%", "count": 2.0}) == {"share": 42, "count": 2}
    assert isinstance(spec.fields["share"], Percent)
    for bad in ({"share": 4.5}, {"count": 1.5}, {"count": 2**63}, {"ratio": float("nan")}):
        with pytest.raises(marshmallow.ValidationError) as exc:
            spec.load(bad)
        assert list(errors_of(exc)) == list(bad)
    # the plugin's objects are untouched
    assert type(raw["share"]) is Percent and type(raw["count"]) is fields.Integer
    assert raw["count"].validators == [] and raw["ratio"].allow_nan is True


def test_a_plugin_range_inside_the_host_bounds_is_the_only_range() -> None:
    spec = build_argument_spec(
        "m", "predict", {"n": fields.Int(validate=validate.Range(min=0, max=10))}
    )
    ranges = [v for v in spec.fields["n"].validators if isinstance(v, validate.Range)]
    assert [(r.min, r.max) for r in ranges] == [(0, 10)]
    open_top = build_argument_spec(
        "m", "predict", {"n": fields.Int(validate=validate.Range(min=0))}
    )
    with pytest.raises(marshmallow.ValidationError):
        open_top.load({"n": 2**64})


def test_a_required_string_refuses_empty_unless_the_plugin_says_otherwise() -> None:
    spec = build_argument_spec(
        "m",
        "predict",
        {
            "name": fields.Str(required=True),
            "code": fields.Str(required=True, validate=validate.Length(max=3)),
            "mark": fields.Str(required=True, validate=validate.OneOf(["", "x"])),
            "note": fields.Str(),
        },
    )
    with pytest.raises(marshmallow.ValidationError) as exc:
        spec.load({"name": "", "code": "", "mark": "", "note": ""})
    assert errors_of(exc) == {"name": ["Must not be empty."]}


def test_a_nested_schema_keeps_its_hooks_and_gets_the_refusals() -> None:
    class Point(marshmallow.Schema):
        x = fields.Int(required=True)

        @marshmallow.post_load
        def as_tuple(self, data: dict[str, Any], **kwargs: Any) -> Any:
            return (data["x"],)

    spec = build_argument_spec("m", "predict", {"p": fields.Nested(Point)})
    assert spec.load({"p": {"x": 3}}) == {"p": (3,)}
    with pytest.raises(marshmallow.ValidationError) as exc:
        spec.load({"p": {"x": 3.5}})
    assert errors_of(exc) == {"p": {"x": ["Not a valid integer."]}}
    assert Point().load({"x": 3.5}) == (3,)  # the plugin's own schema still truncates


def test_a_nested_field_already_used_by_the_plugin_is_normalized_too() -> None:
    point = fields.Nested({"x": fields.Int()})
    assert point.schema.load({"x": 2.5}) == {"x": 2}  # built (and cached) by the plugin
    spec = build_argument_spec("m", "predict", {"p": point})
    with pytest.raises(marshmallow.ValidationError) as exc:
        spec.load({"p": {"x": 2.5}})
    assert errors_of(exc) == {"p": {"x": ["Not a valid integer."]}}
