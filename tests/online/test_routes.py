"""The online routes on the session host (example plugins through their entry points)."""

from __future__ import annotations

import hashlib
import io
import json
import math
import pickle
import subprocess
import time
import uuid
from typing import Any

import pytest
import requests
from conftest import Host
from deepaas_host_river_models.models import Phishing, TrumpApproval
from river import datasets, linear_model, metrics, utils


def _fresh(host: Host, plugin: str) -> str:
    name = f"{plugin}-{uuid.uuid4().hex[:8]}"
    r = host.post("/v2/online/", json={"plugin": plugin, "name": name})
    assert r.status_code == 201, r.text
    return name


def _ok(response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _error(response: requests.Response, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == error, body
    return body


# models -----------------------------------------------------------------------------


def test_each_online_plugin_has_a_model_of_its_name_with_its_flavor(host: Host) -> None:
    body = _ok(host.get("/v2/online/"))
    flavors = {m["name"]: m["flavor"] for m in body["models"]}
    assert {
        "trump-approval": "regression",
        "phishing": "binary",
        "image-segments": "multiclass",
        "text-clusters": "clustering",
        "running-mean": "custom",
    }.items() <= flavors.items()
    assert {p["name"] for p in body["plugins"]} >= {"trump-approval", "phishing"}
    phishing = next(m for m in body["models"] if m["name"] == "phishing")
    assert phishing["estimator"] == "StandardScaler | LogisticRegression"
    assert phishing["links"]["learn"].endswith("/v2/online/phishing/learn/")


def test_a_model_created_without_a_name_gets_two_friendly_words(host: Host) -> None:
    r = host.post("/v2/online/", json={"plugin": "running-mean"})
    assert r.status_code == 201, r.text
    name = r.json()["name"]
    words = name.split("-")
    assert len(words) == 2 and all(w.isalpha() for w in words), name
    assert r.headers["Location"].endswith(f"/v2/online/{name}")
    assert _ok(host.get(f"/v2/online/{name}"))["plugin"] == "running-mean"
    _ok(host.delete(f"/v2/online/{name}"))


def test_creating_refuses_duplicates_bad_names_and_unknown_plugins(host: Host) -> None:
    name = _fresh(host, "running-mean")
    _error(host.post("/v2/online/", json={"plugin": "running-mean", "name": name}), 409, "Conflict")
    bad = _error(
        host.post("/v2/online/", json={"plugin": "running-mean", "name": ".x"}),
        422,
        "ArgumentError",
    )
    assert "name" in bad["details"]
    unknown = _error(host.post("/v2/online/", json={"plugin": "nope"}), 422, "ArgumentError")
    assert "plugin" in unknown["details"]
    _error(host.post("/v2/online/", json={}), 422, "ArgumentError")
    _error(
        host.post("/v2/online/", json={"plugin": "running-mean", "flavor": "fancy"}),
        422,
        "ArgumentError",
    )


def test_a_pickled_river_model_can_be_uploaded_with_its_flavor(host: Host) -> None:
    model = linear_model.LinearRegression()
    name = f"uploaded-{uuid.uuid4().hex[:6]}"
    r = host.post(
        "/v2/online/",
        data={"name": name, "flavor": "regression", "description": "by hand"},
        files={"file": ("lr.pkl", pickle.dumps(model))},
    )
    assert r.status_code == 201, r.text
    info = r.json()
    assert (info["flavor"], info["upload"], info["description"]) == (
        "regression",
        "lr.pkl",
        "by hand",
    )
    learned = _ok(
        host.post(f"/v2/online/{name}/learn/", json={"features": {"a": 1.0}, "ground_truth": 2.0})
    )
    assert learned["learned"] == 1


def test_an_upload_that_does_not_fit_its_flavor_is_refused(host: Host) -> None:
    files = {"file": ("lr.pkl", pickle.dumps(linear_model.LinearRegression()))}
    body = _error(
        host.post("/v2/online/", data={"flavor": "binary"}, files=files), 422, "ArgumentError"
    )
    assert "not a river classifier" in body["message"]
    junk = {"file": ("junk.pkl", b"certainly not a pickle")}
    body = _error(
        host.post("/v2/online/", data={"flavor": "custom"}, files=junk), 422, "ArgumentError"
    )
    assert "not a loadable pickle" in body["message"]
    body = _error(host.post("/v2/online/", files=files), 422, "ArgumentError")
    assert "flavor" in body["details"]


def test_download_is_the_current_model_with_its_checksum(host: Host) -> None:
    name = _fresh(host, "trump-approval")
    for x, y in list(datasets.TrumpApproval())[:20]:
        _ok(host.post(f"/v2/online/{name}/learn/", json={"features": x, "ground_truth": y}))
    r = host.get(f"/v2/online/{name}/download")
    assert r.status_code == 200
    assert r.headers["X-Checksum-SHA256"] == hashlib.sha256(r.content).hexdigest()
    assert f'filename="{name}.pkl"' in r.headers["Content-Disposition"]
    model = pickle.load(io.BytesIO(r.content))
    assert model["StandardScaler"].counts["gallup"] == 20


def test_a_deleted_model_is_gone_everywhere(host: Host) -> None:
    name = _fresh(host, "running-mean")
    assert (host.data_dir / "online" / name).is_dir()
    assert _ok(host.delete(f"/v2/online/{name}")) == {"deleted": name}
    assert not (host.data_dir / "online" / name).exists()
    for response in (
        host.get(f"/v2/online/{name}"),
        host.post(f"/v2/online/{name}/predict/", json={"features": {}}),
        host.get(f"/v2/online/{name}/metrics"),
        host.delete(f"/v2/online/{name}"),
    ):
        body = _error(response, 404, "OnlineModelNotFound")
        assert name in body["message"]


# events -----------------------------------------------------------------------------


def test_binary_predict_then_label_feeds_the_metrics(host: Host) -> None:
    name = _fresh(host, "phishing")
    samples = list(datasets.Phishing())[:300]
    expected = {"Accuracy": metrics.Accuracy(), "F1": metrics.F1(), "ROCAUC": metrics.ROCAUC()}
    local = Phishing().build()
    for i, (x, y) in enumerate(samples):
        proba = local.predict_proba_one(x)
        label = max(proba, key=proba.get) if proba else None
        for m in expected.values():
            m.update(y, label if m.requires_labels else proba)
        local.learn_one(x, y)
        if i % 2:
            body = _ok(
                host.post(f"/v2/online/{name}/learn/", json={"features": x, "ground_truth": y})
            )
        else:
            p = _ok(host.post(f"/v2/online/{name}/predict/", json={"features": x}))
            assert p["prediction"] == label
            assert set(p["probabilities"]) == ({"true", "false"} if proba else set())
            body = _ok(
                host.post(f"/v2/online/{name}/label/", json={"id": p["id"], "ground_truth": y})
            )
            assert body["prediction"] == label
    served = _ok(host.get(f"/v2/online/{name}/metrics"))
    assert served["learned"] == len(samples)
    for key, metric in expected.items():
        assert served["overall"][key] == pytest.approx(metric.get()), key


def test_a_label_is_accepted_once(host: Host) -> None:
    name = _fresh(host, "trump-approval")
    x, _ = next(iter(datasets.TrumpApproval()))
    p = _ok(host.post(f"/v2/online/{name}/predict/", json={"features": x, "id": "order-17"}))
    assert p["id"] == "order-17"
    _ok(host.post(f"/v2/online/{name}/label/", json={"id": "order-17", "ground_truth": 40.0}))
    body = _error(
        host.post(f"/v2/online/{name}/label/", json={"id": "order-17", "ground_truth": 40.0}),
        404,
        "PredictionNotFound",
    )
    assert "order-17" in body["message"]
    # learn with only an id is a label too
    p = _ok(host.post(f"/v2/online/{name}/predict/", json={"features": x}))
    assert (
        _ok(host.post(f"/v2/online/{name}/learn/", json={"id": p["id"], "ground_truth": 41.0}))[
            "learned"
        ]
        == 2
    )
    # an unkept prediction leaves nothing to label
    q = _ok(host.post(f"/v2/online/{name}/predict/", json={"features": x, "keep": False}))
    assert "id" not in q


def test_kept_predictions_are_bounded_by_count_and_age(start_host: Any) -> None:
    host = start_host(
        ["--model", "trump-approval", "--keep-predictions", "2", "--keep-seconds", "1"]
    )
    x, _ = next(iter(datasets.TrumpApproval()))
    url = "/v2/online/trump-approval"
    ids = [_ok(host.post(f"{url}/predict/", json={"features": x}))["id"] for _ in range(3)]
    _error(
        host.post(f"{url}/label/", json={"id": ids[0], "ground_truth": 1.0}),
        404,
        "PredictionNotFound",
    )
    _ok(host.post(f"{url}/label/", json={"id": ids[2], "ground_truth": 1.0}))
    late = _ok(host.post(f"{url}/predict/", json={"features": x}))["id"]
    time.sleep(1.3)
    _error(
        host.post(f"{url}/label/", json={"id": late, "ground_truth": 1.0}),
        404,
        "PredictionNotFound",
    )


def test_multiclass_clustering_and_custom_flavors_learn_and_predict(host: Host) -> None:
    segments = _fresh(host, "image-segments")
    for x, y in list(datasets.ImageSegments())[:100]:
        _ok(host.post(f"/v2/online/{segments}/learn/", json={"features": x, "ground_truth": y}))
    p = _ok(host.post(f"/v2/online/{segments}/predict/", json={"features": x}))
    assert isinstance(p["prediction"], str) and len(p["probabilities"]) > 1
    assert set(_ok(host.get(f"/v2/online/{segments}/metrics"))["overall"]) == {
        "Accuracy",
        "MacroF1",
        "CrossEntropy",
    }

    texts = _fresh(host, "text-clusters")
    for text in ["the cat sat", "dogs bark loudly", "stocks fell today", "the cat purrs"] * 5:
        _ok(host.post(f"/v2/online/{texts}/learn/", json={"features": text}))
    cluster = _ok(host.post(f"/v2/online/{texts}/predict/", json={"features": "a cat"}))[
        "prediction"
    ]
    assert cluster in (0, 1, 2)
    assert set(_ok(host.get(f"/v2/online/{texts}/metrics"))["overall"]) == {"Silhouette"}

    mean = _fresh(host, "running-mean")
    for y in (1.0, 2.0, 6.0):
        _ok(host.post(f"/v2/online/{mean}/learn/", json={"features": {}, "ground_truth": y}))
    assert _ok(host.post(f"/v2/online/{mean}/predict/", json={"features": {}}))["prediction"] == 3.0
    # MAE of predict-before-learn: |1-0|, |2-1|, |6-1.5| -> 6.5 / 3
    mae = _ok(host.get(f"/v2/online/{mean}/metrics"))["overall"]["MAE"]
    assert mae == pytest.approx(6.5 / 3)


@pytest.mark.parametrize(
    ("plugin", "body", "field"),
    [
        ("trump-approval", {"features": {"a": 1}}, "ground_truth"),
        ("trump-approval", {"features": {"a": 1}, "ground_truth": "high"}, "ground_truth"),
        ("trump-approval", {"features": {"a": 1}, "ground_truth": True}, "ground_truth"),
        ("trump-approval", {"features": [1, 2], "ground_truth": 1}, "features"),
        ("trump-approval", {"ground_truth": 1}, "features"),
        ("trump-approval", {"features": {}, "ground_truth": 1, "extra": 1}, "extra"),
        ("phishing", {"features": {"a": 1}, "ground_truth": 0.5}, "ground_truth"),
        ("text-clusters", {"features": "text", "ground_truth": 1}, "ground_truth"),
        ("trump-approval", {"features": {}, "ground_truth": 1, "id": ""}, "id"),
    ],
)
def test_bad_learn_requests_name_the_field(
    host: Host, plugin: str, body: dict[str, Any], field: str
) -> None:
    error = _error(host.post(f"/v2/online/{plugin}/learn/", json=body), 422, "ArgumentError")
    assert field in error["details"], error


def test_bodies_that_are_not_json_objects_are_refused(host: Host) -> None:
    url = f"{host.url}/v2/online/trump-approval/learn/"
    _error(requests.post(url, data=b"{not json", timeout=10), 400, "MalformedBody")
    _error(requests.post(url, json=[1, 2], timeout=10), 422, "ArgumentError")
    _error(
        host.post("/v2/online/phishing/label/", json={"ground_truth": True}), 422, "ArgumentError"
    )


def test_a_sample_the_model_cannot_use_is_a_422_and_changes_nothing(host: Host) -> None:
    name = _fresh(host, "trump-approval")
    _ok(host.post(f"/v2/online/{name}/learn/", json={"features": {"a": 1.0}, "ground_truth": 1.0}))
    body = _error(
        host.post(
            f"/v2/online/{name}/learn/", json={"features": {"a": "text"}, "ground_truth": 1.0}
        ),
        422,
        "ArgumentError",
    )
    assert "TypeError" in body["message"]
    assert _ok(host.get(f"/v2/online/{name}"))["learned"] == 1


def test_a_learn_that_raises_half_way_leaves_the_model_as_it_was(host: Host) -> None:
    name = _fresh(host, "trump-approval")
    x, y = next(iter(datasets.TrumpApproval()))
    before = _ok(host.post(f"/v2/online/{name}/predict/", json={"features": x, "keep": False}))
    # The scaler takes these in, then the regression overflows on them.
    huge = {"features": {"gallup": 1e308}, "ground_truth": 1e308}
    for _ in range(2):
        # The overflow is the sample's doing, not the model's: a 422, model rebuilt.
        body = _error(host.post(f"/v2/online/{name}/learn/", json=huge), 422, "ArgumentError")
        assert body["details"]["exception"] == "OverflowError"
    after = _ok(host.post(f"/v2/online/{name}/predict/", json={"features": x, "keep": False}))
    assert after["prediction"] == before["prediction"]
    assert _ok(host.get(f"/v2/online/{name}"))["learned"] == 0
    assert (
        _ok(host.post(f"/v2/online/{name}/learn/", json={"features": x, "ground_truth": y}))[
            "learned"
        ]
        == 1
    )


def test_text_features_for_a_numeric_model_and_the_reverse_are_422(host: Host) -> None:
    r = host.post("/v2/online/text-clusters/predict/", json={"features": {"a": 1}})
    _error(r, 422, "ArgumentError")
    r = host.post("/v2/online/trump-approval/predict/", json={"features": "hello", "keep": False})
    _error(r, 422, "ArgumentError")


def test_numbers_json_cannot_carry_are_answered_as_null(host: Host) -> None:
    name = _fresh(host, "running-mean")
    for y in (1.7e308, -1.7e308, 1.7e308):
        r = host.post(f"/v2/online/{name}/learn/", json={"features": {}, "ground_truth": y})
        assert r.status_code == 200, r.text
        assert "NaN" not in r.text and "Infinity" not in r.text, r.text
    p = host.post(f"/v2/online/{name}/predict/", json={"features": {}})
    assert json.loads(p.text, parse_constant=lambda c: pytest.fail(c))["prediction"] is None


def test_stats_count_each_kind_with_latency_percentiles(host: Host) -> None:
    name = _fresh(host, "running-mean")
    for _ in range(3):
        _ok(host.post(f"/v2/online/{name}/learn/", json={"features": {}, "ground_truth": 1.0}))
    _ok(host.post(f"/v2/online/{name}/predict/", json={"features": {}}))
    host.post(f"/v2/online/{name}/label/", json={"id": "missing", "ground_truth": 1.0})
    stats = _ok(host.get(f"/v2/online/{name}/stats"))
    assert (stats["learn"]["count"], stats["predict"]["count"], stats["label"]["count"]) == (
        3,
        1,
        1,
    )
    assert stats["label"]["errors"] == 1
    latency = stats["learn"]["latency_ms"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    assert stats["totals"]["learned"] == 3


def test_rolling_metrics_cover_the_last_window(start_host: Any) -> None:
    host = start_host(["--model", "trump-approval", "--metrics-window", "10"])
    samples = list(datasets.TrumpApproval())[:50]
    local = TrumpApproval().build()
    rolling = utils.Rolling(metrics.MAE, window_size=10)
    overall = metrics.MAE()
    for x, y in samples:
        guess = local.predict_one(x)
        rolling.update(y, guess)
        overall.update(y, guess)
        local.learn_one(x, y)
        _ok(host.post("/v2/online/trump-approval/learn/", json={"features": x, "ground_truth": y}))
    served = _ok(host.get("/v2/online/trump-approval/metrics"))
    assert served["window"] == 10
    assert served["rolling"]["MAE"] == pytest.approx(rolling.get())
    assert served["overall"]["MAE"] == pytest.approx(overall.get())
    assert not math.isclose(rolling.get(), overall.get())


# bulk -------------------------------------------------------------------------------


def test_bulk_learns_in_order_with_one_line_per_sample(host: Host) -> None:
    name = _fresh(host, "trump-approval")
    samples = list(datasets.TrumpApproval()) * 3  # three chunks of the bulk route
    lines = [json.dumps({"features": x, "ground_truth": y}) for x, y in samples]
    lines.insert(1200, "this is not json")
    lines.insert(1201, json.dumps({"features": {}, "ground_truth": "text"}))
    r = host.post(f"/v2/online/{name}/bulk/", data="\n".join(lines).encode())
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/x-ndjson")
    out = [json.loads(line) for line in r.text.splitlines()]
    assert len(out) == len(lines)
    assert out[1200]["error"]["error"] == "MalformedBody"
    assert out[1200]["error"]["details"]["line"] == 1201
    assert out[1201]["error"]["error"] == "ArgumentError"
    learned = [o for o in out if "error" not in o]
    assert [o["learned"] for o in learned] == list(range(1, len(samples) + 1))
    assert _ok(host.get(f"/v2/online/{name}"))["learned"] == len(samples)


def test_bulk_predict_through_curl(host: Host, tmp_path: Any) -> None:
    name = _fresh(host, "running-mean")
    _ok(host.post(f"/v2/online/{name}/learn/", json={"features": {}, "ground_truth": 5.0}))
    body = tmp_path / "samples.ndjson"
    body.write_text(
        "".join(json.dumps({"features": {"i": i}, "keep": False}) + "\n" for i in range(100))
    )
    result = subprocess.run(
        ["curl", "-sS", "--fail-with-body", "-H", "Content-Type: application/x-ndjson",
         "--data-binary", f"@{body}", f"{host.url}/v2/online/{name}/bulk/?op=predict"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["prediction"] for o in out] == [5.0] * 100
    _error(host.post(f"/v2/online/{name}/bulk/?op=forget", data=b"{}"), 422, "ArgumentError")


# streams ----------------------------------------------------------------------------


def _sse_events(lines: Any, count: int) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    kind = ""
    for raw in lines:
        line = raw.decode() if isinstance(raw, bytes) else raw
        if line.startswith("event: "):
            kind = line[len("event: ") :].strip()
        elif line.startswith("data: "):
            events.append((kind, json.loads(line[len("data: ") :])))
            if len(events) == count:
                break
    return events


def test_the_event_stream_shows_each_predict_learn_and_label(host: Host) -> None:
    name = _fresh(host, "trump-approval")
    with requests.get(
        f"{host.url}/v2/online/{name}/stream/events", stream=True, timeout=30
    ) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines) == b": connected"
        x = {"a": 1.0}
        _ok(host.post(f"/v2/online/{name}/learn/", json={"features": x, "ground_truth": 3.0}))
        p = _ok(host.post(f"/v2/online/{name}/predict/", json={"features": x}))
        _ok(host.post(f"/v2/online/{name}/label/", json={"id": p["id"], "ground_truth": 2.0}))
        events = _sse_events(lines, 3)
    assert [kind for kind, _ in events] == ["learn", "predict", "label"]
    assert events[0][1]["ground_truth"] == 3.0
    assert events[1][1]["id"] == p["id"] == events[2][1]["id"]
    assert [e["seq"] for _, e in events] == [1, 2, 3]


def test_curl_follows_the_metrics_stream(host: Host) -> None:
    name = _fresh(host, "running-mean")
    curl = subprocess.Popen(
        ["curl", "-sN", f"{host.url}/v2/online/{name}/stream/metrics?interval=0.1"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert curl.stdout is not None
        first = _sse_events(curl.stdout, 1)
        _ok(host.post(f"/v2/online/{name}/learn/", json={"features": {}, "ground_truth": 4.0}))
        second = _sse_events(curl.stdout, 1)
    finally:
        curl.terminate()
        curl.wait(10)
        if curl.stdout is not None:
            curl.stdout.close()
    assert first[0][0] == "metrics" and first[0][1]["learned"] == 0
    assert second[0][1]["learned"] == 1 and second[0][1]["overall"]["MAE"] == 4.0
    _error(host.get(f"/v2/online/{name}/stream/metrics?interval=0"), 422, "ArgumentError")


def test_a_follower_that_does_not_read_loses_events_not_throughput(host: Host) -> None:
    name = _fresh(host, "running-mean")
    stream = requests.get(f"{host.url}/v2/online/{name}/stream/events", stream=True, timeout=60)
    try:
        padding = "x" * 2000
        body = "".join(
            json.dumps({"features": {"pad": padding}, "ground_truth": 1.0}) + "\n"
            for _ in range(20000)
        )
        r = host.post(f"/v2/online/{name}/bulk/", data=body.encode(), timeout=120)
        assert r.status_code == 200 and len(r.text.splitlines()) == 20000
        assert _ok(host.get(f"/v2/online/{name}"))["learned"] == 20000
        dropped = None
        lines = stream.iter_lines()
        for line in lines:
            if line == b"event: dropped":
                dropped = json.loads(next(lines)[len(b"data: ") :])
                break
            assert line != b": keep-alive", "the queue drained without a drop notice"
    finally:
        stream.close()
    assert dropped is not None and dropped["dropped"] > 0


# who may do what --------------------------------------------------------------------


def _outbound_ip() -> str | None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent for a UDP connect
        except OSError:
            return None
        ip: str = s.getsockname()[0]
    return None if ip.startswith("127.") else ip


def test_insecure_never_opens_pickle_uploads(start_host: Any) -> None:
    ip = _outbound_ip()
    if ip is None:
        pytest.skip("this machine has no address but loopback")
    host = start_host(["--model", "running-mean", "--listen-ip", "0.0.0.0", "--insecure"])
    files = {"file": ("lr.pkl", pickle.dumps(linear_model.LinearRegression()))}
    remote = f"http://{ip}:{host.port}/v2/online/"
    body = _error(
        requests.post(remote, data={"flavor": "regression"}, files=files, timeout=30),
        403,
        "CodeExecutionDenied",
    )
    assert "token" in body["message"]
    # Creating from an installed plugin runs no foreign code: allowed from anywhere.
    created = requests.post(remote, json={"plugin": "running-mean"}, timeout=30)
    assert created.status_code == 201, created.text
    # Not even from this machine: the host is not listening on loopback only.
    local = host.post("/v2/online/", data={"flavor": "regression"}, files=files)
    _error(local, 403, "CodeExecutionDenied")


def test_token_scopes_for_online_models(start_host: Any, tmp_path: Any) -> None:
    from auth.conftest import bearer, create_token

    data = tmp_path / "tokens"
    predict = create_token(data, "predict")["token"]
    manage = create_token(data, "manage")["token"]
    host = start_host(["--model", "running-mean"], data_dir=data)
    url = "/v2/online/running-mean"
    sample = {"features": {}, "ground_truth": 1.0}
    _error(host.post(f"{url}/learn/", json=sample), 401, "AuthenticationError")
    _ok(host.post(f"{url}/learn/", json=sample, headers=bearer(predict)))
    _ok(host.get(f"{url}/metrics", headers=bearer(predict)))
    p = _ok(host.post(f"{url}/predict/", json={"features": {}}, headers=bearer(predict)))
    _ok(
        host.post(
            f"{url}/label/", json={"id": p["id"], "ground_truth": 2.0}, headers=bearer(predict)
        )
    )
    bulk = host.post(f"{url}/bulk/", data=json.dumps(sample).encode(), headers=bearer(predict))
    assert bulk.status_code == 200
    files = {"file": ("lr.pkl", pickle.dumps(linear_model.LinearRegression()))}
    for token, status in ((predict, 403), (manage, 201)):
        r = host.post(
            "/v2/online/", data={"flavor": "regression"}, files=files, headers=bearer(token)
        )
        assert r.status_code == status, r.text
    name = r.json()["name"]
    assert host.delete(f"/v2/online/{name}", headers=bearer(predict)).status_code == 403
    assert host.delete(f"/v2/online/{name}", headers=bearer(manage)).status_code == 200


def test_an_uploaded_anomaly_detector_scores_and_learns_with_or_without_labels(
    host: Host,
) -> None:
    from river import anomaly, compose, preprocessing

    detector = compose.Pipeline(
        preprocessing.MinMaxScaler(), anomaly.HalfSpaceTrees(n_trees=5, height=3, seed=1)
    )
    name = f"anomaly-{uuid.uuid4().hex[:6]}"
    files = {"file": ("hst.pkl", pickle.dumps(detector))}
    r = host.post("/v2/online/", data={"name": name, "flavor": "anomaly"}, files=files)
    assert r.status_code == 201, r.text
    for i in range(60):
        x = {"a": float(i % 10), "b": float(i % 7)}
        _ok(host.post(f"/v2/online/{name}/learn/", json={"features": x}))
    for i in range(20):
        x = {"a": float(i % 10), "b": float(i % 7)}
        _ok(host.post(f"/v2/online/{name}/learn/", json={"features": x, "ground_truth": False}))
    odd = {"a": 500.0, "b": -300.0}
    _ok(host.post(f"/v2/online/{name}/learn/", json={"features": odd, "ground_truth": True}))
    score = _ok(host.post(f"/v2/online/{name}/predict/", json={"features": odd}))["prediction"]
    assert isinstance(score, float) and 0.0 <= score <= 1.0
    served = _ok(host.get(f"/v2/online/{name}/metrics"))
    assert served["learned"] == 81
    assert served["overall"]["ROCAUC"] is not None
    bad = {"features": odd, "ground_truth": "maybe"}
    _error(host.post(f"/v2/online/{name}/learn/", json=bad), 422, "ArgumentError")
    regressor = {"file": ("lr.pkl", pickle.dumps(linear_model.LinearRegression()))}
    r = host.post("/v2/online/", data={"flavor": "anomaly"}, files=regressor)
    _error(r, 422, "ArgumentError")
