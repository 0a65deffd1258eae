"""Damaged files of an online model, on real hosts: reported and contained, never cut.

Each test stops a host the hard way (``kill -9``: no final snapshot, the log holds
the acknowledged events), damages a file as a disk or an operator would, starts a
host on the same data and holds it to what it promises: the damaged model is
refused with where and what, the others serve, the file stays byte for byte, and
``repair`` keeps every readable event. Only a torn final frame is cut.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
from api.test_spec_conformance import Conformance
from conftest import Host
from river import linear_model

from .support import (
    assert_same_model,
    create,
    download,
    error,
    flip,
    frame_offsets,
    kill_hard,
    learn,
    model_dir,
    replay,
    samples,
    segment_files,
    wait_until,
)

PLUGIN = ["--model", "trump-approval"]


def _refused_everywhere(host: Host, name: str) -> list[dict[str, object]]:
    """Every route of ``name`` answers 503 OnlineModelDamaged, as documented; the
    details of each."""
    spec = Conformance(host.get("/v2/openapi.json").json())
    x, y = samples(1)[0]
    base = f"/v2/online/{name}"
    model = "/v2/online/{name}"
    calls = [
        (host.get(base), model, "get"),
        (host.get(f"{base}/metrics"), f"{model}/metrics", "get"),
        (host.get(f"{base}/stats"), f"{model}/stats", "get"),
        (host.get(f"{base}/download"), f"{model}/download", "get"),
        (host.get(f"{base}/stream/events"), f"{model}/stream/events", "get"),
        (host.get(f"{base}/stream/metrics"), f"{model}/stream/metrics", "get"),
        (host.post(f"{base}/predict/", json={"features": x}), f"{model}/predict/", "post"),
        (
            host.post(f"{base}/learn/", json={"features": x, "ground_truth": y}),
            f"{model}/learn/",
            "post",
        ),
        (
            host.post(f"{base}/label/", json={"id": "a", "ground_truth": y}),
            f"{model}/label/",
            "post",
        ),
        (
            host.post(f"{base}/bulk/", data=json.dumps({"features": x, "ground_truth": y})),
            f"{model}/bulk/",
            "post",
        ),
    ]
    details = []
    for response, path, method in calls:
        body = error(response, 503, "OnlineModelDamaged")
        spec.check(response, path, method)
        assert f"POST /v2/online/{name}/repair" in str(body["message"])
        details.append(body["details"])
    spec.check(host.get("/v2/health"), "/v2/health")
    spec.check(host.get("/v2/online/"), "/v2/online/")
    return details


@pytest.mark.parametrize("where", ["body", "length"])
def test_a_flipped_byte_in_the_middle_of_a_log_refuses_that_model_alone(
    start_host: Callable[..., Host], tmp_path: Path, where: str
) -> None:
    data = tmp_path / "data"
    host = start_host(PLUGIN, data_dir=data)
    create(host, "victim")
    create(host, "bystander")
    stream = samples(41)
    for x, y in stream[:40]:
        learn(host, "victim", x, y)  # each acknowledged: one frame each
    for x, y in stream[:5]:
        learn(host, "bystander", x, y)
    kill_hard(host)

    (segment,) = segment_files(model_dir(host, "victim"))
    original = segment.read_bytes()
    offsets = frame_offsets(original)
    assert len(offsets) == 40
    lost = max(i for i, at in enumerate(offsets) if at <= len(original) // 2)  # 0-based
    # In the body a checksum fails; in the length field the frame runs past the file.
    damaged = flip(
        segment,
        offsets[lost] + 20 if where == "body" else offsets[lost],
        0x04 if where == "body" else 0x80,
    )

    again = start_host(PLUGIN, data_dir=data)
    health = again.get("/v2/health")
    assert health.status_code == 200  # one model does not take the host out of service
    body = health.json()
    assert (body["ready"], body["status"]) == (True, "degraded")
    (entry,) = body["damaged"]
    assert entry["name"] == "victim"
    report = entry["details"]
    assert (report["file"], report["offset"]) == (segment.name, offsets[lost])
    assert report["last_good_seq"] == lost
    assert report["frames_after"] == report["events_after"] == 40 - lost - 1
    assert report["last_seq_after"] == 40
    for details in _refused_everywhere(again, "victim"):
        assert (details["file"], details["offset"]) == (segment.name, offsets[lost])
    listing = again.get("/v2/online/").json()
    assert "victim" not in {m["name"] for m in listing["models"]}
    assert [(d["name"], d["details"]["offset"]) for d in listing["damaged"]] == [
        ("victim", offsets[lost])
    ]
    # The rest serves, and no half-truth replaces the damaged model.
    assert learn(again, "bystander", *stream[5])["learned"] == 6
    assert again.post("/v2/online/trump-approval/predict/", json={"features": {}}).ok
    error(
        again.post("/v2/online/", json={"plugin": "trump-approval", "name": "victim"}),
        409,
        "Conflict",
    )
    assert segment.read_bytes() == damaged  # not cut, not truncated
    logged = [line for line in again.log().splitlines() if "online model victim" in line]
    assert any(
        "ERROR" in line
        and segment.name in line
        and f"offset {offsets[lost]}" in line
        and f"{40 - lost - 1} readable frames" in line
        for line in logged
    ), logged

    repaired = again.post("/v2/online/victim/repair")
    assert repaired.status_code == 200, repaired.text
    spec = Conformance(again.get("/v2/openapi.json").json())
    answer = spec.check(repaired, "/v2/online/{name}/repair", "post")
    assert (answer["kept"], answer["lost"]) == (39, 1)
    assert answer["lost_ranges"] == [[lost + 1, lost + 1]]
    assert answer["seq"] == 40 and answer["from_snapshot"] == 0
    assert answer["unreadable"] == [segment.name]
    aside = model_dir(again, "victim") / answer["moved_to"]
    assert (aside / segment.name).read_bytes() == damaged
    assert answer["links"]["self"].endswith("/v2/online/victim")
    kept = stream[:lost] + stream[lost + 1 : 40]
    assert again.get("/v2/online/victim").json()["learned"] == 39
    assert_same_model(download(again, "victim"), replay(kept))
    assert again.health()["status"] == "ok" and again.health()["damaged"] == []
    assert learn(again, "victim", *stream[40])["seq"] == 41

    kill_hard(again)
    third = start_host(PLUGIN, data_dir=data)
    assert third.get("/v2/online/victim").json()["learned"] == 40
    assert_same_model(download(third, "victim"), replay([*kept, stream[40]]))


def test_a_torn_final_frame_is_cut_and_nothing_acknowledged_is_lost(
    start_host: Callable[..., Host], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    host = start_host(PLUGIN, data_dir=data)
    create(host, "torn")
    stream = samples(21)
    for x, y in stream[:20]:
        learn(host, "torn", x, y)
    kill_hard(host)
    (segment,) = segment_files(model_dir(host, "torn"))
    original = segment.read_bytes()
    last = frame_offsets(original)[-1]
    # A crash in the middle of writing the next frame: its header and part of its body.
    segment.write_bytes(original + original[last : last + 30])

    again = start_host(PLUGIN, data_dir=data)
    assert again.health()["status"] == "ok"
    info = again.get("/v2/online/torn").json()
    assert info["learned"] == 20
    assert segment.read_bytes() == original  # the torn frame is cut, nothing else
    assert_same_model(download(again, "torn"), replay(stream[:20]))
    assert learn(again, "torn", *stream[20])["learned"] == 21


def test_a_damaged_newest_snapshot_falls_back_to_the_previous_one(
    start_host: Callable[..., Host], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    args = [*PLUGIN, "--snapshot-every", "10"]
    host = start_host(args, data_dir=data)
    create(host, "layers")
    stream = samples(36)
    for x, y in stream[:35]:
        learn(host, "layers", x, y)
    directory = model_dir(host, "layers")
    newest = directory / "snapshot-000000000030.pkl"

    def two_generations() -> bool:
        names = sorted(p.name for p in directory.glob("snapshot-*.pkl"))
        return names == ["snapshot-000000000020.pkl", newest.name]

    wait_until(two_generations, what="snapshots 20 and 30, the older ones pruned")
    kill_hard(host)
    damaged = flip(newest, newest.stat().st_size // 2)

    again = start_host(args, data_dir=data)
    info = again.get("/v2/online/layers").json()
    assert (info["learned"], info["snapshot_seq"]) == (35, 20)
    assert_same_model(download(again, "layers"), replay(stream[:35]))
    assert again.health()["status"] == "ok"
    assert not newest.exists()
    (aside,) = directory.glob("damaged-*/snapshot-000000000030.pkl")
    assert aside.read_bytes() == damaged
    assert any(
        "ERROR" in line and "layers" in line and newest.name in line and "checksum" in line
        for line in again.log().splitlines()
    ), again.log()
    assert learn(again, "layers", *stream[35])["learned"] == 36


def test_a_corrupt_meta_json_refuses_that_model_and_the_host_starts(
    start_host: Callable[..., Host], tmp_path: Path
) -> None:
    from auth.conftest import bearer, create_token

    data = tmp_path / "data"
    predict = bearer(create_token(data, "predict")["token"])
    manage = bearer(create_token(data, "manage")["token"])
    args = [*PLUGIN, "--model", "running-mean"]
    host = start_host(args, data_dir=data)
    stream = samples(10)
    for x, y in stream:
        r = host.post(
            "/v2/online/trump-approval/learn/",
            json={"features": x, "ground_truth": y},
            headers=predict,
        )
        assert r.status_code == 200, r.text
    host.stop()
    meta = model_dir(host, "trump-approval") / "meta.json"
    meta.write_text('{"name": "trump-approval", "flav')  # cut short

    # The plugin's own model: the host must not try to create it again either.
    again = start_host(args, data_dir=data)
    body = again.get("/v2/health").json()
    assert (body["ready"], body["status"]) == (True, "degraded")
    assert [(d["name"], d["details"]["file"]) for d in body["damaged"]] == [
        ("trump-approval", "meta.json")
    ]
    r = again.get("/v2/online/trump-approval", headers=predict)
    assert "meta.json is not valid JSON" in error(r, 503, "OnlineModelDamaged")["message"]
    ok = again.post(
        "/v2/online/running-mean/learn/",
        json={"features": {}, "ground_truth": 2.0},
        headers=predict,
    )
    assert ok.status_code == 200, ok.text
    assert any(
        "ERROR" in line and "trump-approval" in line and "meta.json" in line
        for line in again.log().splitlines()
    )

    assert again.post("/v2/online/trump-approval/repair", headers=predict).status_code == 403
    error(again.post("/v2/online/running-mean/repair", headers=manage), 409, "Conflict")
    error(again.post("/v2/online/nope/repair", headers=manage), 404, "OnlineModelNotFound")
    r = again.post("/v2/online/trump-approval/repair", headers=manage)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert (answer["kept"], answer["lost"], answer["meta_rebuilt"]) == (0, 0, True)
    assert "meta.json" in answer["moved"]
    info = again.get("/v2/online/trump-approval", headers=predict).json()
    assert (info["flavor"], info["learned"]) == ("regression", 10)
    assert json.loads(meta.read_text())["flavor"] == "regression"


def test_a_missing_segment_is_damage_and_repair_keeps_what_follows(
    start_host: Callable[..., Host], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    host = start_host(PLUGIN, data_dir=data)
    create(host, "gappy")
    stream = samples(20)
    for x, y in stream[:10]:
        learn(host, "gappy", x, y)
    kill_hard(host)
    again = start_host(PLUGIN, data_dir=data)  # opens a second segment, from event 11
    for x, y in stream[10:]:
        learn(again, "gappy", x, y)
    kill_hard(again)
    first, second = segment_files(model_dir(host, "gappy"))
    first.unlink()

    third = start_host(PLUGIN, data_dir=data)
    (entry,) = third.health()["damaged"]
    assert entry["details"]["file"] == second.name
    assert "events 1 to 10 are missing" in entry["reason"]
    assert entry["details"]["events_after"] == 10
    answer = third.post("/v2/online/gappy/repair").json()
    assert (answer["kept"], answer["lost"], answer["lost_ranges"]) == (10, 10, [[1, 10]])
    assert_same_model(download(third, "gappy"), replay(stream[10:]))


def test_with_no_snapshot_loading_a_plugin_model_starts_afresh_and_an_upload_is_deleted(
    start_host: Callable[..., Host], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    host = start_host(PLUGIN, data_dir=data)
    create(host, "reborn")
    files = {"file": ("lr.pkl", pickle.dumps(linear_model.LinearRegression()))}
    r = host.post("/v2/online/", data={"name": "doomed", "flavor": "regression"}, files=files)
    assert r.status_code == 201, r.text
    stream = samples(3)
    for name in ("reborn", "doomed"):
        for x, y in stream:
            learn(host, name, x, y)
    kill_hard(host)
    for name in ("reborn", "doomed"):
        for snapshot in model_dir(host, name).glob("snapshot-*.pkl"):
            flip(snapshot, snapshot.stat().st_size - 1)

    again = start_host(PLUGIN, data_dir=data)
    damaged = {d["name"]: d["reason"] for d in again.health()["damaged"]}
    assert set(damaged) == {"reborn", "doomed"}
    assert all("no snapshot loads" in reason for reason in damaged.values())

    # From the plugin it was created from, and every event of its log.
    answer = again.post("/v2/online/reborn/repair").json()
    assert (answer["from_snapshot"], answer["kept"], answer["lost"]) == (None, 3, 0)
    assert_same_model(download(again, "reborn"), replay(stream))

    # An uploaded model has nothing to start from: it can only go.
    body = error(again.post("/v2/online/doomed/repair"), 409, "Conflict")
    assert "cannot be repaired" in body["message"]
    assert again.delete("/v2/online/doomed").json() == {"deleted": "doomed"}
    assert not model_dir(again, "doomed").exists()
    assert again.health()["damaged"] == [] and again.health()["status"] == "ok"
    error(again.get("/v2/online/doomed"), 404, "OnlineModelNotFound")
    create(again, "doomed")
    assert learn(again, "doomed", *stream[0])["learned"] == 1
