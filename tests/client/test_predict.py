"""Models and predictions through the client, against a real host."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Host, free_port
from PIL import Image

from deepaas_host.client import (
    Client,
    HostError,
    HostUnreachable,
    ModelNotFound,
    ValidationError,
)

IRIS_SETOSA = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def test_get_models_lists_metadata(client: Client) -> None:
    models = {m["name"]: m for m in client.get_models()}
    assert set(models) == {"demo", "iris"}
    assert models["demo"]["version"] == "0.1.0"
    assert any(link["rel"] == "predict" for link in models["demo"]["links"])


def test_get_model_and_find_model(client: Client) -> None:
    assert client.get_model("iris")["name"] == "iris"
    assert client.find_model("demo") is not None
    assert client.find_model("no-such-model") is None


def test_unknown_model_raises_model_not_found(client: Client) -> None:
    with pytest.raises(ModelNotFound) as info:
        client.get_model("no-such-model")
    assert info.value.status == 404
    assert info.value.model == "no-such-model"
    assert "no-such-model" in str(info.value)
    with pytest.raises(ModelNotFound, match="no-such-model"):
        client.predict("no-such-model", label="cat")


def test_predict_json_with_arguments(client: Client) -> None:
    answer = client.predict("demo", label="dog", count=3, scale=2, flag=True, tags=["a", "b"])
    assert answer["status"] == "OK"
    prediction = answer["predictions"]
    assert prediction["label"] == "dog"
    assert prediction["values"] == pytest.approx([2 / 3, 4 / 3, 2.0])
    assert prediction["flag"] is True
    assert prediction["tags"] == ["a", "b"]
    assert prediction["data"] is None


def test_predict_with_response_schema(client: Client) -> None:
    answer = client.predict("iris", **IRIS_SETOSA)
    assert answer["predictions"][0]["label"] == "setosa"


def test_none_means_not_given(client: Client) -> None:
    prediction = client.predict("demo", label=None, count=None)["predictions"]
    assert (prediction["label"], prediction["count"]) == ("cat", 1)


def test_predict_uploads_a_path(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(os.urandom(200_000))
    prediction = client.predict("demo", data=path, label="bird")["predictions"]
    assert prediction["label"] == "bird"
    assert prediction["data"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert prediction["data"]["original_filename"] == "photo.jpg"
    assert prediction["data"]["content_type"] == "image/jpeg"


def test_predict_uploads_an_open_file(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    path.write_bytes(b"a,b\n1,2\n" * 10_000)
    with path.open("rb") as fh:
        data = client.predict("demo", data=fh, tags=["x"])["predictions"]["data"]
    assert data["size"] == path.stat().st_size
    assert data["original_filename"] == "table.csv"
    assert data["content_type"] == "text/csv"


def test_predict_uploads_an_unsized_stream(client: Client) -> None:
    # A pipe has no size: the body goes out chunked, still streamed.
    read_end, write_end = os.pipe()
    payload = os.urandom(100_000)
    with os.fdopen(write_end, "wb") as w:
        w.write(payload[:60_000])  # fits the pipe buffer; the rest after
    with os.fdopen(read_end, "rb") as r:
        data = client.predict("demo", data=r)["predictions"]["data"]
    assert data["size"] == 60_000
    assert data["sha256"] == hashlib.sha256(payload[:60_000]).hexdigest()


def test_bytes_are_uploaded_and_strings_are_values(client: Client) -> None:
    data = client.predict("demo", data=b"raw bytes")["predictions"]["data"]
    assert data["size"] == 9
    assert data["original_filename"] == "data"
    # A plain string is never taken for a path, even one that exists.
    with pytest.raises(ValidationError) as info:
        client.predict("demo", data=__file__)
    assert "data" in info.value.fields


def test_binary_answer_is_bytes(client: Client) -> None:
    png = client.predict("demo", accept="image/png", count=4, label="dog")
    assert isinstance(png, bytes)
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        assert image.size == (400, 240)


def test_binary_answer_saved_to_output(client: Client, tmp_path: Path) -> None:
    out = client.predict("demo", accept="image/png", output=tmp_path / "bars.png")
    assert out == tmp_path / "bars.png"
    with Image.open(out) as image:
        assert image.format == "PNG"
    # A folder keeps the host's file name.
    folder = tmp_path / "answers"
    folder.mkdir()
    saved = client.predict("demo", accept="application/zip", output=folder)
    assert saved.parent == folder and saved.suffix == ".zip"


def test_validation_error_carries_field_messages(client: Client) -> None:
    with pytest.raises(ValidationError) as info:
        client.predict("demo", label="zebra", count=1000)
    error = info.value
    assert error.status == 422
    assert error.error == "ArgumentError"
    assert set(error.fields) == {"label", "count"}
    assert any("cat" in m for m in error.fields["label"])
    assert "demo" in str(error)
    assert error.request_id


def test_unknown_argument_is_a_validation_error(client: Client) -> None:
    with pytest.raises(ValidationError) as info:
        client.predict("demo", colour="red")
    assert "colour" in info.value.fields


def test_model_error_is_a_host_error(client: Client) -> None:
    with pytest.raises(HostError) as info:
        client.predict("demo", fail="raise")
    assert info.value.status == 500
    assert info.value.error == "ModelError"
    assert "ValueError" in str(info.value)


def test_arguments_named_like_parameters(client: Client) -> None:
    # ``arguments`` carries names that clash with predict's own parameters.
    answer = client.predict("demo", arguments={"label": "dog"}, count=2)
    assert answer["predictions"]["label"] == "dog"
    assert answer["predictions"]["count"] == 2


def test_base_path(start_host: Callable[..., Host]) -> None:
    h = start_host(["--model", "demo", "--base-path", "/models", "--no-train"], base_path="/models")
    with Client(h.url + "/") as client:
        assert [m["name"] for m in client.get_models()] == ["demo"]
        assert client.predict("demo", label="bird")["predictions"]["label"] == "bird"


def test_unreachable_host() -> None:
    with (
        Client(f"http://127.0.0.1:{free_port()}", timeout=5) as client,
        pytest.raises(HostUnreachable, match="Cannot reach"),
    ):
        client.get_models()


def test_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="http"):
        Client("127.0.0.1:5000")
