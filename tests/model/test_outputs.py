"""Rendering what a model returns: JSON, bytes, file objects, paths, schemas."""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from marshmallow import Schema, fields

from deepaas_host.model.outputs import (
    Outcome,
    OutputError,
    render_output,
    response_schema_of,
)


class Prediction(Schema):
    label = fields.Str(required=True)
    probability = fields.Float(required=True)


class Response(Schema):
    status = fields.Str(required=True)
    predictions = fields.List(fields.Nested(Prediction), required=True)


def body(outcome: Outcome) -> Any:
    assert outcome.kind == "json"
    assert outcome.media_type == "application/json"
    return json.loads(outcome.body)


def test_plain_values_are_wrapped_without_a_schema() -> None:
    outcome = render_output({"x": 1}, accept=None, schema=None)
    assert body(outcome) == {"status": "OK", "predictions": {"x": 1}}
    assert body(render_output([1, 2], accept=None, schema=None, wrap=False)) == [1, 2]


def test_bytes_are_sent_as_they_are_with_the_chosen_type() -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    outcome = render_output(png, accept="image/png", schema=Response())
    assert outcome.kind == "bytes"
    assert outcome.body == png
    assert outcome.media_type == "image/png"
    assert outcome.filename == "prediction.png"
    assert render_output(bytearray(b"PK"), accept="application/zip", schema=None).body == b"PK"


def test_a_file_object_is_read_and_closed(tmp_path: Path) -> None:
    path = tmp_path / "answer.zip"
    path.write_bytes(b"PK\x03\x04 zipped")
    fh = path.open("rb")
    outcome = render_output(fh, accept="application/zip", schema=None)
    assert fh.closed
    assert outcome.kind == "bytes"
    assert outcome.body == b"PK\x03\x04 zipped"
    assert outcome.filename == "answer.zip"


def test_a_file_object_is_closed_when_reading_fails() -> None:
    class Failing(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            raise OSError("disk gone")

    fh = Failing(b"x")
    with pytest.raises(OSError, match="disk gone"):
        render_output(fh, accept="image/png", schema=None)
    assert fh.closed


def test_an_in_memory_text_file_is_encoded() -> None:
    outcome = render_output(io.StringIO("a,b\n1,2\n"), accept="text/csv", schema=None)
    assert outcome.body == b"a,b\n1,2\n"
    assert outcome.filename == "prediction.csv"


def test_a_path_is_streamed_for_a_binary_type(tmp_path: Path) -> None:
    path = tmp_path / "out.png"
    path.write_bytes(b"\x89PNG")
    for result in (path, str(path)):
        outcome = render_output(result, accept="image/png", schema=None)
        assert outcome.kind == "path"
        assert outcome.path == str(path)
        assert outcome.filename == "out.png"
        assert outcome.body == b""


def test_a_path_is_just_a_string_when_json_is_wanted(tmp_path: Path) -> None:
    path = tmp_path / "out.png"
    path.write_bytes(b"\x89PNG")
    assert body(render_output(str(path), accept="application/json", schema=None)) == {
        "status": "OK",
        "predictions": str(path),
    }


def test_an_outcome_crosses_a_process_boundary() -> None:
    outcome = render_output(b"data", accept="image/png", schema=None)
    assert pickle.loads(pickle.dumps(outcome)) == outcome


def test_a_valid_result_is_the_whole_response_with_a_schema() -> None:
    result = {"status": "OK", "predictions": [{"label": "cat", "probability": 0.9}]}
    assert body(render_output(result, accept=None, schema=Response())) == result


def test_a_schema_violation_names_the_field() -> None:
    result = {"status": "OK", "predictions": [{"label": "cat", "probability": "high"}]}
    with pytest.raises(OutputError) as exc:
        render_output(result, accept=None, schema=Response())
    assert "predictions" in str(exc.value)
    assert exc.value.details == {"predictions": {0: {"probability": ["Not a valid number."]}}}


def test_a_missing_field_and_a_non_object_are_violations() -> None:
    with pytest.raises(OutputError, match=r"\(predictions\)"):
        render_output({"status": "OK"}, accept=None, schema=Response())
    with pytest.raises(OutputError) as exc:
        render_output([1, 2], accept=None, schema=Response())
    assert exc.value.details == {"_schema": ["Expected an object, got list."]}


def test_numpy_values_become_json_numbers() -> None:
    result = {
        "array": np.array([[1, 2], [3, 4]], dtype=np.int64),
        "mean": np.float32(0.5),
        "count": np.int64(7),
        "flags": np.array([True, False]),
        "pair": (1, 2),
    }
    assert body(render_output(result, accept=None, schema=None))["predictions"] == {
        "array": [[1, 2], [3, 4]],
        "mean": 0.5,
        "count": 7,
        "flags": [True, False],
        "pair": [1, 2],
    }


def test_numpy_values_pass_a_schema() -> None:
    result = {
        "status": "OK",
        "predictions": [{"label": np.str_("cat"), "probability": np.float64(0.25)}],
    }
    assert body(render_output(result, accept=None, schema=Response()))["predictions"] == [
        {"label": "cat", "probability": 0.25}
    ]


@pytest.mark.parametrize("value", [float("nan"), np.float64("inf"), object()])
def test_values_json_cannot_hold_are_an_output_error(value: Any) -> None:
    with pytest.raises(OutputError, match="cannot be sent as JSON"):
        render_output({"x": value}, accept=None, schema=None)


def test_response_schema_forms() -> None:
    class Plugin:
        schema: Any = None

    assert response_schema_of(Plugin()) is None
    Plugin.schema = Response
    assert isinstance(response_schema_of(Plugin()), Response)
    Plugin.schema = {"status": fields.Str(required=True)}
    schema = response_schema_of(Plugin())
    assert schema is not None
    assert schema.validate({}) == {"status": ["Missing data for required field."]}
    Plugin.schema = "Response"
    with pytest.raises(TypeError, match="schema is str"):
        response_schema_of(Plugin())
