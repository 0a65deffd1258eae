"""Online learning through the client, against a real host serving the river example
plugins (``deepaas-host-river-models``, installed in the venv by ``scripts/setup``).

Every test creates its own online models (unique names), so tests never see each
other's samples.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import pickle
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import Host, launch
from river import datasets, linear_model, preprocessing

from deepaas_host.client import (
    Client,
    FileSystemDownloader,
    HostError,
    ModelAlreadyExists,
    ModelNotFound,
    PredictionNotFound,
    ValidationError,
)

ONLINE_PLUGINS = ("trump-approval", "phishing", "image-segments", "text-clusters", "running-mean")


@pytest.fixture(scope="module")
def online(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    args: list[str] = []
    for name in ONLINE_PLUGINS:
        args += ["--model", name]
    h = launch(tmp_path_factory.mktemp("client-online"), args)
    yield h
    h.stop()


@pytest.fixture
def oc(online: Host) -> Iterator[Client]:
    with Client(online.url, progress=False) as c:
        yield c


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def approval(n: int, start: int = 0) -> list[tuple[dict[str, Any], float]]:
    return list(itertools.islice(datasets.TrumpApproval(), start, start + n))


def wait_for(predicate: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not true after {timeout}s")


# -- models -------------------------------------------------------------------------


def test_plugin_models_are_listed(oc: Client) -> None:
    # The host creates one model per online plugin at its first start (right after
    # it answers ready, so allow it a moment).
    names = wait_for(
        lambda: (n := {m["name"] for m in oc.get_online_models()}) >= set(ONLINE_PLUGINS) and n
    )
    assert set(ONLINE_PLUGINS) <= names
    assert oc.get_online_model("phishing")["flavor"] == "binary"


def test_create_from_plugin_get_delete_and_conflict(oc: Client) -> None:
    name = unique("approval")
    info = oc.create_model("trump-approval", name=name, description="mine")
    assert info["name"] == name
    assert info["flavor"] == "regression"
    assert info["learned"] == 0
    assert info["description"] == "mine"
    assert info["links"]["learn"].endswith(f"/v2/online/{name}/learn/")
    assert oc.get_online_model(name)["plugin"] == "trump-approval"
    assert name in {m["name"] for m in oc.get_online_models()}

    with pytest.raises(ModelAlreadyExists) as conflict:
        oc.create_model("running-mean", name=name)
    assert conflict.value.status == 409
    assert name in str(conflict.value)

    oc.delete_online_model(name)
    with pytest.raises(ModelNotFound, match=name):
        oc.get_online_model(name)


def test_create_without_name_gets_one(oc: Client) -> None:
    info = oc.create_model("running-mean")
    try:
        assert info["name"]
        assert oc.get_online_model(info["name"])["flavor"] == "custom"
    finally:
        oc.delete_online_model(info["name"])


def test_create_refusals(oc: Client) -> None:
    with pytest.raises(ValidationError) as unknown:
        oc.create_model("no-such-plugin", name=unique("x"))
    assert "plugin" in unknown.value.fields
    with pytest.raises(ValueError):
        oc.create_model()
    with pytest.raises(ValueError):
        oc.create_model("running-mean", model_file=io.BytesIO(b""))
    with pytest.raises(ValueError, match="flavor"):
        oc.create_model(model_file=io.BytesIO(b"x"))


def _pretrained() -> Any:
    model = preprocessing.StandardScaler() | linear_model.LinearRegression()
    for x, y in approval(200):
        model.learn_one(x, y)
    return model


def test_create_from_uploaded_pickle(oc: Client, tmp_path: Path) -> None:
    local = _pretrained()
    path = tmp_path / "approval.pkl"
    path.write_bytes(pickle.dumps(local))
    x, _ = approval(1, start=300)[0]

    by_path = unique("uploaded")
    info = oc.create_model(model_file=path, flavor="regression", name=by_path)
    assert info["flavor"] == "regression"
    assert info["upload"] == "approval.pkl"
    answer = oc.predict(by_path, features=x)
    # The host predicts with the uploaded (trained) model, not a fresh one.
    assert answer["prediction"] == pytest.approx(local.predict_one(x))
    assert answer["prediction"] > 20

    by_file = unique("uploaded")
    oc.create_model(model_file=io.BytesIO(pickle.dumps(local)), flavor="regression", name=by_file)
    assert oc.predict(by_file, features=x)["prediction"] == pytest.approx(local.predict_one(x))

    with pytest.raises(ModelAlreadyExists):
        oc.create_model(model_file=path, flavor="regression", name=by_path)
    with pytest.raises(ValidationError) as wrong:
        oc.create_model(model_file=path, flavor="clustering", name=unique("wrong"))
    assert wrong.value.status == 422


# -- learn, predict, label ------------------------------------------------------------


def test_learn_changes_metrics_and_stats(oc: Client) -> None:
    name = unique("approval")
    oc.create_model("trump-approval", name=name)
    empty = oc.metrics(name)
    assert empty["learned"] == 0
    answers = [oc.learn(name, x, y) for x, y in approval(50)]
    assert [a["learned"] for a in answers] == list(range(1, 51))
    assert all(a["model"] == name for a in answers)
    assert answers[-1]["seq"] > answers[0]["seq"]
    report = oc.metrics(name)
    assert report["model"] == name
    assert report["flavor"] == "regression"
    assert report["learned"] == 50
    assert report["overall"]["MAE"] > 0
    assert report["overall"] != empty["overall"]
    assert set(report["rolling"]) == set(report["overall"])
    stats = oc.stats(name)
    assert stats["learn"]["count"] == 50
    assert stats["learn"]["errors"] == 0
    assert stats["learn"]["latency_ms"]["max"] >= stats["learn"]["latency_ms"]["p50"] > 0
    assert stats["totals"]["learned"] == 50


def test_predict_label_round_trip(oc: Client) -> None:
    name = unique("approval")
    oc.create_model("trump-approval", name=name)
    for x, y in approval(20):
        oc.learn(name, x, y)
    (x, y), (x2, _) = approval(2, start=20)

    predicted = oc.predict(name, features=x, identifier="poll-21")
    assert predicted["model"] == name
    assert predicted["id"] == "poll-21"
    assert isinstance(predicted["prediction"], float)
    assert "probabilities" not in predicted
    assert oc.get_online_model(name)["kept"] == 1

    labelled = oc.label(name, "poll-21", y)
    assert labelled["prediction"] == predicted["prediction"]  # the kept one was scored
    assert labelled["learned"] == 21
    assert oc.get_online_model(name)["labelled"] == 1

    with pytest.raises(PredictionNotFound) as again:
        oc.label(name, "poll-21", y)
    assert isinstance(again.value, HostError)
    assert again.value.status == 404
    assert "poll-21" in str(again.value)

    # An id the host made up; learn by id alone (the kept features are learned).
    made_up = oc.predict(name, features=x2)["id"]
    assert oc.learn(name, ground_truth=40.0, identifier=made_up)["learned"] == 22

    # A prediction that is not kept cannot be labelled.
    loose = oc.predict(name, features=x2, identifier="not-kept", keep=False)
    assert loose["id"] == "not-kept"
    with pytest.raises(PredictionNotFound):
        oc.label(name, "not-kept", 41.0)


def test_online_predict_keeps_served_predict_apart(oc: Client) -> None:
    with pytest.raises(TypeError, match="version"):
        oc.predict("running-mean", "v1", features={})
    with pytest.raises(TypeError, match="label"):
        oc.predict("running-mean", features={}, label="cat")


def test_validation_errors_name_fields(oc: Client) -> None:
    name = unique("approval")
    oc.create_model("trump-approval", name=name)
    with pytest.raises(ValidationError) as missing:
        oc.learn(name, {"a": 1.0})
    assert missing.value.status == 422
    assert "ground_truth" in missing.value.fields
    with pytest.raises(ValidationError) as bad:
        oc.learn(name, {"a": 1.0}, "not a number")
    assert "ground_truth" in bad.value.fields


def test_text_features_for_clustering(oc: Client) -> None:
    name = unique("texts")
    oc.create_model("text-clusters", name=name)
    for text in ["the rocket reached orbit", "bake the bread", "the striker scored"] * 3:
        answer = oc.learn(name, text)
        assert "prediction" in answer
    assert isinstance(oc.predict(name, features="bread in the oven")["prediction"], int)
    report = oc.metrics(name)
    assert report["learned"] == 9
    assert "Silhouette" in report["overall"]
    with pytest.raises(ValidationError):
        oc.learn(name, "labelled text", ground_truth="space")


def test_binary_predict_probabilities_and_label(oc: Client) -> None:
    name = unique("phishing")
    oc.create_model("phishing", name=name)
    for x, y in itertools.islice(datasets.Phishing(), 30):
        oc.learn(name, x, y)
    x, y = next(itertools.islice(datasets.Phishing(), 30, None))
    answer = oc.predict(name, features=x)
    assert set(answer["probabilities"]) == {"false", "true"}
    assert oc.label(name, answer["id"], y)["learned"] == 31
    assert oc.metrics(name)["overall"]["Accuracy"] > 0


# -- download ---------------------------------------------------------------------


def test_download_is_a_trained_pickle(online: Host, tmp_path: Path) -> None:
    with Client(online.url, progress=False, downloader=FileSystemDownloader(tmp_path / "dl")) as oc:
        name = unique("approval")
        oc.create_model("trump-approval", name=name)
        fresh = pickle.loads(oc.download_model(name, tmp_path / "fresh.pkl").read_bytes())
        assert dict(fresh["LinearRegression"].weights) == {}
        for x, y in approval(100):
            oc.learn(name, x, y)

        path = oc.download_model(name)
        assert path == tmp_path / "dl" / name / "online" / f"{name}.pkl"
        assert not list(path.parent.glob("*.part"))
        response = requests.get(f"{online.url}/v2/online/{name}/download", timeout=30)
        assert (
            hashlib.sha256(path.read_bytes()).hexdigest() == response.headers["X-Checksum-SHA256"]
        )
        model = pickle.loads(path.read_bytes())
        weights = dict(model["LinearRegression"].weights)
        assert set(weights) == set(approval(1)[0][0])
        assert any(abs(w) > 1e-6 for w in weights.values())
        x, _ = approval(1, start=100)[0]
        assert model.predict_one(x) == pytest.approx(oc.predict(name, features=x)["prediction"])

        folder = tmp_path / "into"
        folder.mkdir()
        assert oc.download_model(name, folder) == folder / f"{name}.pkl"


# -- bulk -------------------------------------------------------------------------


def test_learn_many_in_order_with_an_error_line(oc: Client) -> None:
    name = unique("approval")
    oc.create_model("trump-approval", name=name)
    samples: list[dict[str, Any]] = [{"features": x, "ground_truth": y} for x, y in approval(25)]
    samples[11] = {"features": samples[11]["features"]}  # no ground truth
    generated = (s for s in samples)  # any iterable, read lazily
    answers = list(oc.learn_many(name, generated, chunk_size=7))
    assert len(answers) == 25
    error = answers[11]["error"]
    assert error["code"] == 422
    assert "ground_truth" in error["details"]["fields"]
    assert error["details"]["line"] == 5  # the 5th line of the second request of 7
    good = [a for i, a in enumerate(answers) if i != 11]
    assert [a["learned"] for a in good] == list(range(1, 25))
    assert [a["seq"] for a in good] == sorted(a["seq"] for a in good)
    assert oc.metrics(name)["learned"] == 24


def test_learn_many_predict_then_label(oc: Client) -> None:
    name = unique("approval")
    oc.create_model("trump-approval", name=name)
    list(oc.learn_many(name, ({"features": x, "ground_truth": y} for x, y in approval(30))))
    batch = approval(10, start=30)
    predictions = list(oc.learn_many(name, [{"features": x} for x, _ in batch], op="predict"))
    assert len(predictions) == 10
    assert all(isinstance(p["prediction"], float) and p["id"] for p in predictions)
    labels = [
        {"id": p["id"], "ground_truth": y} for p, (_, y) in zip(predictions, batch, strict=True)
    ]
    labels.insert(3, {"id": "never-predicted", "ground_truth": 1.0})
    answers = list(oc.learn_many(name, labels, op="label", chunk_size=4))
    assert len(answers) == 11
    assert answers[3]["error"]["error"] == "PredictionNotFound"
    assert [a["learned"] for a in answers if "error" not in a] == list(range(31, 41))
    assert oc.get_online_model(name)["labelled"] == 10
    assert list(oc.learn_many(name, [])) == []
    with pytest.raises(ValueError):
        oc.learn_many(name, [], op="train")  # refused at the call, not at the first answer


# -- streams ----------------------------------------------------------------------


def test_stream_events_follow_concurrent_learns(oc: Client) -> None:
    name = unique("approval")
    oc.create_model("trump-approval", name=name)
    got: list[dict[str, Any]] = []
    failure: list[BaseException] = []

    def follow() -> None:
        try:
            with contextlib.closing(oc.stream_events(name)) as events:
                for event in events:
                    got.append(event)
                    if len(got) >= 6:
                        break
        except BaseException as exc:  # reported to the test's thread
            failure.append(exc)

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    # Only events after the subscription are sent: produce until the follower has enough.
    samples = iter(approval(500))
    deadline = time.monotonic() + 20
    predicted = None
    while reader.is_alive() and time.monotonic() < deadline:
        x, y = next(samples)
        if predicted is None and got:
            predicted = oc.predict(name, features=x, identifier="seen")
            oc.label(name, "seen", y)
        else:
            oc.learn(name, x, y)
        time.sleep(0.02)
    reader.join(10)
    assert not failure, failure
    assert not reader.is_alive()
    assert len(got) == 6
    kinds = [e["type"] for e in got]
    assert set(kinds) <= {"learn", "predict", "label"}
    assert "predict" in kinds and "label" in kinds
    assert all(e["type"] != "learn" or "ground_truth" in e for e in got)
    seqs = [e["seq"] for e in got]
    assert seqs == sorted(seqs)
    assert next(e for e in got if e["type"] == "predict")["id"] == "seen"


def test_stream_metrics_yields_changes(oc: Client) -> None:
    name = unique("approval")
    oc.create_model("trump-approval", name=name)
    stream = oc.stream_metrics(name, interval=0.1)
    first = next(stream)
    assert first["model"] == name
    assert first["learned"] == 0
    for x, y in approval(5):
        oc.learn(name, x, y)
    later = next(stream)
    while later["learned"] < 5:
        later = next(stream)
    assert later["learned"] == 5
    assert later["overall"]["MAE"] > 0
    stream.close()
    with pytest.raises(StopIteration):
        next(stream)


# -- missing models ---------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda c, n: c.get_online_model(n),
        lambda c, n: c.delete_online_model(n),
        lambda c, n: c.download_model(n),
        lambda c, n: c.learn(n, {"a": 1.0}, 1.0),
        lambda c, n: c.label(n, "some-id", 1.0),
        lambda c, n: c.predict(n, features={"a": 1.0}),
        lambda c, n: c.metrics(n),
        lambda c, n: c.stats(n),
        lambda c, n: list(c.learn_many(n, [{"features": {"a": 1.0}, "ground_truth": 1.0}])),
        lambda c, n: next(c.stream_metrics(n)),
        lambda c, n: next(c.stream_events(n)),
    ],
    ids=[
        "get",
        "delete",
        "download",
        "learn",
        "label",
        "predict",
        "metrics",
        "stats",
        "learn_many",
        "stream_metrics",
        "stream_events",
    ],
)
def test_missing_online_model_raises_model_not_found(
    oc: Client, call: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # download_model would write into the current folder
    name = unique("missing")
    with pytest.raises(ModelNotFound) as info:
        call(oc, name)
    assert info.value.status == 404
    assert info.value.model == name
    assert name in str(info.value)
    assert not list(tmp_path.rglob("*"))
