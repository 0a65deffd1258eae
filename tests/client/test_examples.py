"""The scripts in ``examples/`` run against a real host and print their final metrics."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Host, launch

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

#: script, plugin, a metric it reports
SCRIPTS = [
    ("regression/trump_approval.py", "trump-approval", "MAE"),
    ("binary/phishing.py", "phishing", "Accuracy"),
    ("multiclass/image_segments.py", "image-segments", "Accuracy"),
    ("clustering/text_clusters.py", "text-clusters", "Silhouette"),
    ("custom/running_mean.py", "running-mean", "MAE"),
]
LIMIT = 60


@pytest.fixture(scope="module")
def online(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    args: list[str] = []
    for _, plugin, _ in SCRIPTS:
        args += ["--model", plugin]
    h = launch(tmp_path_factory.mktemp("examples"), args)
    yield h
    h.stop()


@pytest.mark.parametrize("bulk", [False, True], ids=["one-by-one", "bulk"])
@pytest.mark.parametrize(("script", "plugin", "metric"), SCRIPTS, ids=[s[1] for s in SCRIPTS])
def test_example_runs_and_prints_final_metrics(
    online: Host, script: str, plugin: str, metric: str, bulk: bool
) -> None:
    model = f"example-{plugin}-{uuid.uuid4().hex[:8]}"
    command = [
        sys.executable,
        str(EXAMPLES / script),
        "--url",
        online.url,
        "--model",
        model,
        "--limit",
        str(LIMIT),
        "--every",
        "20",
    ]
    if bulk:
        command.append("--bulk")
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert f"created online model {model!r} from plugin {plugin!r}" in out
    assert out.count(f"{metric}=") >= 2, out  # progressive metrics along the way
    final = [line for line in out.splitlines() if line.startswith("final metrics: ")]
    assert len(final) == 1, out
    report = json.loads(final[0].removeprefix("final metrics: "))
    assert report["learned"] == LIMIT
    assert isinstance(report["overall"][metric], float)
    assert report["rolling"]
