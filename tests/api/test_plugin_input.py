"""A plugin saying "bad input": 422 naming the argument, from predict, learn and training.

The plugins raise as their authors would: ``InvalidInput`` of the contract,
marshmallow's ``ValidationError`` (DEEPaaS-era plugins), an ``OverflowError``
from arithmetic on what was sent, and the iris example refusing an incomplete
flower. Anything else stays the model's own 500.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from conftest import Host

from .conftest import assert_error

REFUSER = "/v2/models/refuser/predict/"
IRIS = "/v2/models/iris/predict/"
FLOWER = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def predict_pool(host: Host) -> dict[str, Any]:
    pools: dict[str, Any] = host.health()["pools"]
    return pools["predict"]


def wait_for_job(href: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = requests.get(href, timeout=30).json()
        if job["status"] in ("done", "error", "cancelled"):
            return job
        time.sleep(0.05)
    raise TimeoutError(f"job {href} did not end in {timeout}s")


@pytest.mark.parametrize(
    ("mode", "details"),
    [
        ("invalid", {"text": ["the text 'some text' is not a sentence"]}),
        (
            "invalid-many",
            {
                "text": ["text and scale do not go together"],
                "scale": ["text and scale do not go together"],
            },
        ),
        ("invalid-whole", {"_input": ["nothing to work on"]}),
    ],
)
def test_invalid_input_is_a_422_naming_the_argument(
    input_host: Host, mode: str, details: dict[str, list[str]]
) -> None:
    before = predict_pool(input_host)
    for send in (
        lambda: input_host.post(REFUSER, json={"mode": mode}),
        lambda: input_host.post(REFUSER, params={"mode": mode}),
        lambda: input_host.post(REFUSER, files={"mode": (None, mode)}),
    ):
        body = assert_error(send(), 422, "ArgumentError")
        assert body["details"] == details
        message = next(iter(details.values()))[0]
        assert body["message"] == f"Model 'refuser' refused the input: {message}"
        assert "Traceback" not in body["message"]
    # no worker was harmed, and the next call is served
    ok = input_host.post(REFUSER, json={"mode": "ok", "text": "fine"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["predictions"] == {"text": "fine", "scale": 1.0}
    assert predict_pool(input_host)["pids"] == before["pids"]


def test_a_validation_error_of_the_plugin_is_a_422_with_its_messages(input_host: Host) -> None:
    body = assert_error(input_host.post(REFUSER, json={"mode": "validation"}), 422, "ArgumentError")
    assert body["details"] == {"text": ["Too short."], "scale": ["Too small.", "Not round."]}
    assert body["message"] == (
        "Model 'refuser' refused the input: text: Too short.; scale: Too small. Not round."
    )
    body = assert_error(input_host.post(REFUSER, json={"mode": "validation-plain"}), 422)
    assert body["details"] == {"_schema": ["The input makes no sense."]}
    assert body["message"] == "Model 'refuser' refused the input: The input makes no sense."


def test_an_overflow_in_the_model_is_the_callers_422(input_host: Host) -> None:
    # exp(scale * 1000) overflows a double in the model
    body = assert_error(
        input_host.post(REFUSER, json={"mode": "overflow", "scale": 2.5}), 422, "ArgumentError"
    )
    assert body["message"].startswith("The values sent are out of range for model 'refuser'")
    assert list(body["details"]) == ["_input"]
    ok = input_host.post(REFUSER, json={"mode": "overflow", "scale": 0.5})
    assert ok.status_code == 200, ok.text


def test_any_other_exception_is_still_the_models_500(input_host: Host) -> None:
    body = assert_error(input_host.post(REFUSER, json={"mode": "value-error"}), 500, "ModelError")
    assert body["details"] == {"exception": "ValueError", "exception_message": "the model broke"}


def test_learn_refuses_like_predict(input_host: Host) -> None:
    learn = "/v2/models/refuser/learn/"
    body = assert_error(input_host.post(learn, json={"mode": "invalid"}), 422, "ArgumentError")
    assert body["details"] == {"text": ["the text 'some text' is not a sentence"]}
    body = assert_error(input_host.post(learn, data={"mode": "overflow", "scale": "9"}), 422)
    assert list(body["details"]) == ["_input"]
    ok = input_host.post(learn, json={"text": "ok"})
    assert ok.status_code == 200, ok.text
    assert ok.json() == [{"text": "ok", "scale": 1.0}, None]


@pytest.mark.parametrize("mode", ["invalid", "validation", "overflow"])
def test_a_refused_training_job_records_the_same_message(input_host: Host, mode: str) -> None:
    args = {"mode": mode, "scale": 3}
    refused = assert_error(input_host.post(REFUSER, json=args), 422)
    accepted = input_host.post("/v2/models/refuser/train/", json=args)
    assert accepted.status_code == 202, accepted.text
    job = wait_for_job(accepted.json()["href"])
    assert job["status"] == "error"
    assert job["error"] == refused["message"]
    assert job["result"] is None
    # the train worker is fine: the next job is done
    again = input_host.post("/v2/models/refuser/train/", json={"text": "ok"})
    assert wait_for_job(again.json()["href"])["status"] == "done"


# -- the iris example ------------------------------------------------------------------


def test_iris_names_the_missing_measurements(input_host: Host) -> None:
    partial = {"sepal_length": 5.1, "petal_width": 0.2}
    for response in (
        input_host.post(IRIS, json=partial),
        input_host.post(IRIS, params=partial),
        input_host.post(IRIS, data=partial),
    ):
        body = assert_error(response, 422, "ArgumentError")
        assert set(body["details"]) == {"sepal_width", "petal_length"}
        assert "missing measurement(s) sepal_width, petal_length" in body["message"]
    body = assert_error(input_host.post(IRIS), 422, "ArgumentError")
    assert list(body["details"]) == ["_input"]


def test_iris_refuses_a_file_and_measurements_together(input_host: Host) -> None:
    csv = b"sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n"
    response = input_host.post(IRIS, data={"sepal_width": "3"}, files={"data": ("f.csv", csv)})
    body = assert_error(response, 422, "ArgumentError")
    assert set(body["details"]) == {"data", "sepal_width"}


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "empty"),
        (b"a,b\n1,2\n", "lacks column(s) sepal_length"),
        (b"sepal_length,sepal_width,petal_length,petal_width\n1,2,x,4\n", "'x' is not a number"),
        (b"sepal_length,sepal_width,petal_length,petal_width\n1,2,inf,4\n", "not finite"),
        (b"\xff\xfe\x00garbage", "not a UTF-8 CSV"),
    ],
)
def test_iris_refuses_a_broken_csv_naming_the_file(
    input_host: Host, content: bytes, fragment: str
) -> None:
    body = assert_error(input_host.post(IRIS, files={"data": ("x.csv", content)}), 422)
    assert list(body["details"]) == ["data"]
    assert fragment in body["details"]["data"][0]


def test_iris_and_legacy_still_serve(input_host: Host) -> None:
    iris = input_host.post(IRIS, json=FLOWER)
    assert iris.status_code == 200, iris.text
    assert iris.json()["predictions"][0]["label"] == "setosa"
    legacy = input_host.post("/v2/models/legacy/predict/", data={"arg1": "choice2"})
    assert legacy.status_code == 200, legacy.text
    assert legacy.json()["predictions"][0]["label"] == "choice2"
    job = input_host.post("/v2/models/legacy/train/", json={"epochs": 2, "sleep": 0})
    assert job.status_code == 202, job.text
    assert wait_for_job(job.json()["href"])["status"] == "done"
    # iris's seed is bounded now: a seed scikit-learn refuses is a 422 at once
    body = assert_error(
        input_host.post("/v2/models/iris/train/", json={"random_state": 2**32}), 422
    )
    assert list(body["details"]) == ["random_state"]
