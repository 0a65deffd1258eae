"""Response shapes: wrapped JSON without a schema, the model's own validated response with one."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from conftest import Host
from sklearn.datasets import load_iris

from .conftest import assert_error

IRIS = "/v2/models/iris/predict/"
FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")


@pytest.fixture(scope="module")
def iris() -> Any:
    return load_iris()


def check_iris_prediction(prediction: dict[str, Any], species: list[str]) -> str:
    assert set(prediction) == {"label", "probability", "probabilities"}
    probabilities = prediction["probabilities"]
    assert set(probabilities) == set(species)
    assert all(isinstance(p, float) and 0.0 <= p <= 1.0 for p in probabilities.values())
    assert sum(probabilities.values()) == pytest.approx(1.0)
    best = max(probabilities, key=probabilities.__getitem__)
    assert prediction["label"] == best
    assert prediction["probability"] == probabilities[best]
    label: str = prediction["label"]
    return label


def test_without_schema_the_result_is_wrapped_as_real_json(host: Host) -> None:
    r = host.post(
        "/v2/models/demo/predict/",
        json={"label": "dog", "count": 4, "scale": 2, "flag": True, "tags": ["t"]},
    )
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"status", "predictions"}
    assert body["status"] == "OK"
    p = body["predictions"]
    assert isinstance(p, dict)  # not a stringified dict
    assert p["count"] == 4 and type(p["count"]) is int
    assert p["scale"] == 2.0 and type(p["scale"]) is float
    assert p["flag"] is True
    assert p["tags"] == ["t"]
    assert p["data"] is None
    assert p["values"] == pytest.approx([0.5, 1.0, 1.5, 2.0])
    assert all(type(v) is float for v in p["values"])
    assert type(p["pid"]) is int and p["pid"] > 0


@pytest.mark.parametrize("name", ["legacy", "legacy_class", "legacy_instance"])
def test_with_schema_the_model_response_is_sent_whole(host: Host, name: str) -> None:
    r = host.post(f"/v2/models/{name}/predict/")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"status", "predictions"}
    assert body["status"] == "OK"
    assert isinstance(body["predictions"], list) and body["predictions"]
    for p in body["predictions"]:
        assert set(p) == {"label", "probability"}
        assert isinstance(p["label"], str)
        assert isinstance(p["probability"], float)


def test_iris_one_flower_per_request(host: Host, iris: Any) -> None:
    species = [str(n) for n in iris.target_names]
    rows = [0, 25, 50, 75, 100, 125, 149]
    correct = 0
    for i in rows:
        args = dict(zip(FEATURES, (float(v) for v in iris.data[i]), strict=True))
        r = host.post(IRIS, params=args)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"status", "predictions"}
        assert body["status"] == "OK"
        assert len(body["predictions"]) == 1
        label = check_iris_prediction(body["predictions"][0], species)
        correct += label == species[iris.target[i]]
    assert correct >= len(rows) - 1


def iris_csv(iris: Any, rows: range, columns: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for i in rows:
        values = dict(zip(FEATURES, iris.data[i], strict=True))
        writer.writerow([values.get(c, "extra") for c in columns])
    return out.getvalue().encode()


def test_iris_csv_upload_classifies_every_row(host: Host, iris: Any) -> None:
    species = [str(n) for n in iris.target_names]
    rows = range(len(iris.target))
    # columns in another order, plus one the model must ignore
    columns = ["petal_width", "note", "sepal_length", "petal_length", "sepal_width"]
    r = host.post(IRIS, files={"data": ("iris.csv", iris_csv(iris, rows, columns), "text/csv")})
    assert r.status_code == 200, r.text
    predictions = r.json()["predictions"]
    assert len(predictions) == len(rows)
    labels = [check_iris_prediction(p, species) for p in predictions]
    truth = [species[t] for t in iris.target]
    accuracy = sum(a == b for a, b in zip(labels, truth, strict=True)) / len(truth)
    assert accuracy >= 0.95
    assert set(labels) == set(species)


def test_iris_same_answer_from_features_and_csv(host: Host, iris: Any) -> None:
    i = 77
    by_args = host.post(IRIS, json=dict(zip(FEATURES, map(float, iris.data[i]), strict=True)))
    by_csv = host.post(
        IRIS, files={"data": ("one.csv", iris_csv(iris, range(i, i + 1), list(FEATURES)))}
    )
    assert by_args.json() == by_csv.json()


def test_iris_refusals_of_its_input_name_the_arguments(host: Host, iris: Any) -> None:
    body = assert_error(host.post(IRIS, params={"sepal_length": 5.0}), 422, "ArgumentError")
    assert set(body["details"]) == {"sepal_width", "petal_length", "petal_width"}
    assert "missing measurement" in body["message"]
    r = host.post(IRIS, files={"data": ("bad.csv", b"a,b\n1,2\n")})
    body = assert_error(r, 422, "ArgumentError")
    assert "lacks column" in body["details"]["data"][0]


def test_iris_range_is_validated_by_the_host(host: Host) -> None:
    body = assert_error(
        host.post(IRIS, params={"sepal_length": -1, "petal_width": "wide"}), 422, "ArgumentError"
    )
    assert set(body["details"]) == {"sepal_length", "petal_width"}
