"""What an online model takes in: finite numbers, bounded features, bounded memory.

Bodies are sent as raw text, the way a hostile client writes them: Python's JSON
parser accepts ``NaN``, ``Infinity`` and ``1e999`` (inf), which would make every
later prediction and metric of the model null, for good.
"""

from __future__ import annotations

import copyreg
import json
import pickle
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import Host

from .support import error, kill_hard, learn, samples

JSON = {"Content-Type": "application/json"}


def _fresh(host: Host, plugin: str) -> str:
    name = f"{plugin}-{uuid.uuid4().hex[:8]}"
    r = host.post("/v2/online/", json={"plugin": plugin, "name": name})
    assert r.status_code == 201, r.text
    return name


def _raw(host: Host, name: str, kind: str, body: str) -> requests.Response:
    return host.post(f"/v2/online/{name}/{kind}/", data=body.encode(), headers=JSON)


NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"]


@pytest.mark.parametrize("number", NON_FINITE)
def test_non_finite_features_and_truths_are_refused_and_the_model_stays_sane(
    host: Host, number: str
) -> None:
    name = _fresh(host, "trump-approval")
    x, y = samples(1)[0]
    learn(host, name, x, y)
    features = json.dumps(x)[:-1] + f', "gallup": {number}}}'
    for kind, body in (
        ("predict", f'{{"features": {features}}}'),
        ("predict", f'{{"features": {features}, "keep": false}}'),
        ("learn", f'{{"features": {features}, "ground_truth": 40.0}}'),
        ("learn", f'{{"features": {{"nested": [1.0, {{"deep": {number}}}]}}, "ground_truth": 1}}'),
        ("learn", f'{{"features": {json.dumps(x)}, "ground_truth": {number}}}'),
    ):
        body_error = error(_raw(host, name, kind, body), 422, "ArgumentError")
        fields = body_error["details"]
        if "ground_truth" in body and f'"ground_truth": {number}' in body:
            assert "finite" in fields["ground_truth"][0], fields
        else:
            assert "finite" in fields["features"][0], fields
            assert "gallup" in fields["features"][0] or "nested[1].deep" in fields["features"][0]

    # A custom model takes any ground truth, but not a non-finite one.
    mean = _fresh(host, "running-mean")
    r = _raw(host, mean, "learn", f'{{"features": {{}}, "ground_truth": {number}}}')
    assert "finite" in error(r, 422, "ArgumentError")["details"]["ground_truth"][0]
    kept = host.post(f"/v2/online/{mean}/predict/", json={"features": {}}).json()["id"]
    r = _raw(host, mean, "label", f'{{"id": "{kept}", "ground_truth": {number}}}')
    error(r, 422, "ArgumentError")
    r = _raw(host, mean, "learn", f'{{"features": {{}}, "ground_truth": [1, {{"a": {number}}}]}}')
    assert "[1].a" in error(r, 422, "ArgumentError")["details"]["ground_truth"][0]

    # Bulk lines alike, each answered in its place.
    lines = [
        json.dumps({"features": x, "ground_truth": y}),
        f'{{"features": {features}, "ground_truth": 1.0}}',
        f'{{"features": {json.dumps(x)}, "ground_truth": {number}}}',
        json.dumps({"features": x, "ground_truth": y}),
    ]
    r = host.post(f"/v2/online/{name}/bulk/", data="\n".join(lines).encode())
    assert r.status_code == 200, r.text
    out = [json.loads(line) for line in r.text.splitlines()]
    assert [o.get("error", {}).get("error") for o in out] == [
        None,
        "ArgumentError",
        "ArgumentError",
        None,
    ]
    assert out[1]["error"]["details"]["line"] == 2
    assert "gallup" in out[1]["error"]["details"]["fields"]["features"][0]

    # Nothing non-finite reached the model: it learned 3 samples and is all numbers.
    info = host.get(f"/v2/online/{name}").json()
    assert info["learned"] == 3
    metrics = host.get(f"/v2/online/{name}/metrics").json()
    assert all(isinstance(v, float) for v in metrics["overall"].values()), metrics
    prediction = host.post(f"/v2/online/{name}/predict/", json={"features": x, "keep": False})
    assert isinstance(prediction.json()["prediction"], float), prediction.text


def test_curl_with_nan_gets_a_422(host: Host, tmp_path: Path) -> None:
    name = _fresh(host, "trump-approval")
    body = tmp_path / "nan.json"
    body.write_text('{"features": {"gallup": NaN, "ipsos": 1e999}, "ground_truth": 43.0}')
    result = subprocess.run(
        ["curl", "-sS", "-H", "Content-Type: application/json", "--data-binary", f"@{body}",
         "-w", "\n%{http_code}", f"{host.url}/v2/online/{name}/learn/"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    text, status = result.stdout.rsplit("\n", 1)
    assert status == "422", text
    assert "gallup" in json.loads(text)["details"]["features"][0]
    assert host.get(f"/v2/online/{name}/metrics").json()["learned"] == 0


def test_features_per_sample_and_feature_names_per_model_are_bounded(
    start_host: Callable[..., Host], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    args = ["--model", "running-mean", "--max-features", "4", "--max-feature-names", "6"]
    host = start_host(args, data_dir=data)
    url = "/v2/online/running-mean"

    def send(kind: str, names: str, **extra: Any) -> requests.Response:
        return host.post(f"{url}/{kind}/", json={"features": dict.fromkeys(names, 1.0), **extra})

    for kind, extra in (("learn", {"ground_truth": 1.0}), ("predict", {})):
        body = error(send(kind, "abcde", **extra), 422, "ArgumentError")
        assert "5 features" in body["message"] and "max_features" in body["message"]
        assert body["details"]["features"] == [body["message"]]
    assert send("learn", "abcd", ground_truth=1.0).status_code == 200
    assert send("learn", "cdef", ground_truth=1.0).status_code == 200  # six names now
    body = error(send("learn", "afg", ground_truth=1.0), 422, "ArgumentError")
    assert "learned 6 distinct feature names" in body["message"]
    assert "limit of 6 (max_feature_names)" in body["message"]
    assert send("learn", "fa", ground_truth=1.0).status_code == 200  # known names are fine
    assert send("predict", "xyz").status_code == 200  # a prediction learns no names
    # Learning from a kept prediction checks its names too.
    kept = send("predict", "g").json()["id"]
    r = host.post(f"{url}/label/", json={"id": kept, "ground_truth": 1.0})
    error(r, 422, "ArgumentError")
    assert host.get(url).json()["feature_names"] == 6

    # The names are state: rebuilt by the replay after a crash, kept in snapshots.
    kill_hard(host)
    again = start_host(args, data_dir=data)
    assert again.get(url).json()["feature_names"] == 6
    r = again.post(f"{url}/learn/", json={"features": {"g": 1.0}, "ground_truth": 1.0})
    error(r, 422, "ArgumentError")
    again.stop()
    third = start_host(args, data_dir=data)
    info = third.get(url).json()
    assert (info["feature_names"], info["snapshot_seq"]) == (6, info["seq"])
    r = third.post(f"{url}/learn/", json={"features": {"h": 1.0}, "ground_truth": 1.0})
    error(r, 422, "ArgumentError")


def test_kept_predictions_are_bounded_by_their_bytes(
    start_host: Callable[..., Host], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    args = ["--model", "running-mean", "--keep-bytes", "20K"]
    host = start_host(args, data_dir=data)
    url = "/v2/online/running-mean"
    pad = "x" * 6000  # about 6 KB each: three fit in 20 KiB, a fourth does not

    ids = []
    for _ in range(4):
        r = host.post(f"{url}/predict/", json={"features": {"pad": pad}})
        assert r.status_code == 200 and "kept" not in r.json(), r.text
        ids.append(r.json()["id"])
    info = host.get(url).json()
    assert info["kept"] == 3 and 18_000 < info["kept_bytes"] <= 20 << 10
    error(
        host.post(f"{url}/label/", json={"id": ids[0], "ground_truth": 1.0}),
        404,
        "PredictionNotFound",
    )  # the oldest went first

    huge = host.post(f"{url}/predict/", json={"features": {"pad": pad * 5}, "id": "too-big"})
    assert huge.status_code == 200, huge.text
    answer = huge.json()
    assert answer["kept"] is False and answer["id"] == "too-big" and "seq" not in answer
    assert "keep_bytes" in answer["warning"] and "cannot be labelled" in answer["warning"]
    error(
        host.post(f"{url}/label/", json={"id": "too-big", "ground_truth": 1.0}),
        404,
        "PredictionNotFound",
    )
    assert host.get(url).json()["kept"] == 3  # nothing was evicted for it

    kill_hard(host)
    again = start_host(args, data_dir=data)
    replayed = again.get(url).json()
    assert (replayed["kept"], replayed["kept_bytes"]) == (3, info["kept_bytes"])
    for ident in ids[1:]:
        r = again.post(f"{url}/label/", json={"id": ident, "ground_truth": 1.0})
        assert r.status_code == 200, r.text
    assert again.get(url).json()["kept_bytes"] == 0


class _OldKept:
    """Pickles as a kept prediction of before the byte limit: no ``size``."""

    def __init__(self, **values: Any) -> None:
        self.values = values

    def __reduce_ex__(self, protocol: Any) -> Any:
        from deepaas_host.online.instance import Kept

        return (copyreg._reconstructor, (Kept, object, None), (None, self.values))


class _OldState:
    """Pickles as the state of before the feature-name and byte limits."""

    def __init__(self, **values: Any) -> None:
        self.values = values

    def __reduce_ex__(self, protocol: Any) -> Any:
        from deepaas_host.online.instance import State

        return (copyreg._reconstructor, (State, object, None), self.values)


def test_a_snapshot_of_before_checksums_and_limits_is_read(
    start_host: Callable[..., Host], tmp_path: Path
) -> None:
    from collections import OrderedDict

    from deepaas_host_river_models.models import TrumpApproval

    from deepaas_host.online.flavors import flavor_of, metric_set

    data = tmp_path / "data"
    host = start_host(["--model", "trump-approval"], data_dir=data)
    host.stop()
    directory = data / "online" / "trump-approval"
    model = TrumpApproval().build()
    x, y = samples(1)[0]
    kept = _OldKept(time=time.time(), x=x, prediction=0.0, proba=None)
    old = _OldState(
        model=model,
        metrics=metric_set(flavor_of("regression", model), None, 1000),
        seq=0,
        learned=0,
        labelled=0,
        kept=OrderedDict({"from-before": kept}),
    )
    snapshot = directory / "snapshot-000000000000.pkl"
    snapshot.write_bytes(pickle.dumps(old))  # a plain pickle, as written before

    again = start_host(["--model", "trump-approval"], data_dir=data)
    info = again.get("/v2/online/trump-approval").json()
    assert (info["kept"], info["feature_names"]) == (1, 0)
    assert info["kept_bytes"] > 0  # sized on load
    r = again.post(
        "/v2/online/trump-approval/label/", json={"id": "from-before", "ground_truth": y}
    )
    assert r.status_code == 200, r.text
    info = again.get("/v2/online/trump-approval").json()
    assert (info["kept"], info["kept_bytes"], info["feature_names"]) == (0, 0, len(x))
    again.stop()
    newest = sorted(directory.glob("snapshot-*.pkl"))[-1]
    assert newest.read_bytes().startswith(b"deepaas-host online snapshot 1\n")
