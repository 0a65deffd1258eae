"""A full disk under a real online worker: refused writes, no crash loop, nothing lost.

The disk fills up by limiting the online worker's file size
(``RLIMIT_FSIZE``; Python ignores ``SIGXFSZ``, so a write past the limit fails
with EFBIG, after writing what fits), and empties by lifting the limit again.
"""

from __future__ import annotations

import json
import resource
from collections.abc import Callable
from functools import partial
from pathlib import Path

from api.test_spec_conformance import Conformance
from conftest import Host

from .support import (
    assert_same_model,
    create,
    download,
    error,
    kill_hard,
    learn,
    model_dir,
    online_pid,
    replay,
    samples,
    segment_files,
    wait_until,
)

PLUGIN = ["--model", "trump-approval"]


def _fill_disk(pid: int, room: int) -> None:
    """From now on the worker may write files up to ``room`` bytes long."""
    _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (room, hard))


def _empty_disk(pid: int) -> None:
    _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard, hard))


def test_a_full_disk_answers_507_and_the_worker_keeps_serving(
    start_host: Callable[..., Host], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    host = start_host(PLUGIN, data_dir=data)
    create(host, "full")
    create(host, "roomy")
    stream = samples(40)
    for x, y in stream[:20]:
        learn(host, "full", x, y)
    pid = online_pid(host)
    (segment,) = segment_files(model_dir(host, "full"))
    size = segment.stat().st_size
    _fill_disk(pid, size + 10)  # the next frame is cut off after 10 bytes

    for x, y in stream[30:35]:  # none of these may end up in the model
        r = host.post("/v2/online/full/learn/", json={"features": x, "ground_truth": y})
        body = error(r, 507, "InsufficientStorage")
        assert body["details"] == {"model": "full"}
        assert "full" in body["message"] and "retry" in body["message"]
        assert segment.stat().st_size == size  # the partial frame is cut back
    spec = Conformance(host.get("/v2/openapi.json").json())
    spec.check(r, "/v2/online/{name}/learn/", "post")
    error(
        host.post("/v2/online/full/predict/", json={"features": stream[0][0]}),
        507,
        "InsufficientStorage",
    )
    lines = "".join(json.dumps({"features": x, "ground_truth": y}) + "\n" for x, y in stream[30:33])
    r = host.post("/v2/online/full/bulk/", data=lines.encode())
    assert r.status_code == 200, r.text
    answers = [json.loads(line) for line in r.text.splitlines()]
    assert [a["error"]["error"] for a in answers] == ["InsufficientStorage"] * 3

    # Still up, same process: what needs no disk is answered.
    unkept = host.post("/v2/online/full/predict/", json={"features": stream[0][0], "keep": False})
    assert unkept.status_code == 200, unkept.text
    metrics = host.get("/v2/online/full/metrics").json()
    assert metrics["learned"] == 20 and metrics["overall"]["MAE"] is not None
    assert learn(host, "roomy", *stream[0])["learned"] == 1  # a small log still fits
    pools = host.health()["pools"]["online"]
    assert (pools["pids"], pools["restarts"], pools["ready"]) == ([pid], 0, 1)

    _empty_disk(pid)
    assert learn(host, "full", *stream[20])["learned"] == 21
    assert online_pid(host) == pid
    kill_hard(host)
    again = start_host(PLUGIN, data_dir=data)
    assert again.get("/v2/online/full").json()["learned"] == 21
    assert_same_model(download(again, "full"), replay(stream[:21]))


def test_creating_a_model_on_a_full_disk_is_a_507_and_leaves_nothing(
    start_host: Callable[..., Host],
) -> None:
    host = start_host(PLUGIN)
    root = host.data_dir / "online"
    before = sorted(p.name for p in root.iterdir())
    pid = online_pid(host)
    _fill_disk(pid, 100)
    r = host.post("/v2/online/", json={"plugin": "trump-approval", "name": "nowhere"})
    body = error(r, 507, "InsufficientStorage")
    assert "nothing was created" in body["message"]
    Conformance(host.get("/v2/openapi.json").json()).check(r, "/v2/online/", "post")
    assert sorted(p.name for p in root.iterdir()) == before
    error(host.get("/v2/online/nowhere"), 404, "OnlineModelNotFound")
    _empty_disk(pid)
    create(host, "nowhere")
    assert learn(host, "nowhere", *samples(1)[0])["learned"] == 1
    assert online_pid(host) == pid


def test_a_failing_snapshot_is_logged_and_the_log_keeps_every_event(
    start_host: Callable[..., Host], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    args = [*PLUGIN, "--snapshot-every", "5"]
    host = start_host(args, data_dir=data)
    create(host, "snap")
    directory = model_dir(host, "snap")
    pid = online_pid(host)
    # Room for five frames of a segment, not for a snapshot.
    _fill_disk(pid, 1200)
    stream = samples(15)

    def logged(seq: int) -> bool:
        return any(
            "ERROR" in line
            and f"snapshot of snap at {seq} failed" in line
            and "the log keeps every event" in line
            for line in host.log().splitlines()
        )

    # The worker's own output is on the "full disk": the host logs for it.
    for seq in (5, 10):
        for x, y in stream[seq - 5 : seq]:
            learn(host, "snap", x, y)
        wait_until(partial(logged, seq), what=f"the failed snapshot at {seq} to be logged")
    assert sorted(p.name for p in directory.glob("snapshot-*")) == ["snapshot-000000000000.pkl"]

    _empty_disk(pid)
    for x, y in stream[10:]:
        learn(host, "snap", x, y)
    wait_until(lambda: (directory / "snapshot-000000000015.pkl").exists(), what="snapshot 15")
    assert online_pid(host) == pid
    kill_hard(host)
    again = start_host(args, data_dir=data)
    assert again.get("/v2/online/snap").json()["learned"] == 15
    assert_same_model(download(again, "snap"), replay(stream))
