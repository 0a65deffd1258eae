"""Benchmark of model versions: artifact transfer and time to first predict after load.

    .venv/bin/python benchmarks/bench_registry.py [--size-mb 200] [--repeat 3]

- Uploads and downloads a random artifact of ``--size-mb`` with the curl binary
  (a separate process) to a host serving the ``legacy`` plugin (no load check, so
  only the transfer is timed); prints MB/s and the ratio to copying the same file
  on local disk, measured in the same run.
- Samples the RSS of the host's whole process tree every 20 ms during the
  transfers: it must stay flat (streamed, never read whole into memory).
- Uploads a trained scikit-learn forest as a version of ``iris``, unloads it,
  and times ``POST …/load`` and the first predict after it.

Figures are medians of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import requests

HOST_BIN = str(Path(sys.executable).with_name("deepaas-host"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RssSampler:
    """Peak RSS (MiB) of a process tree, sampled in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def current(self) -> float:
        parent = psutil.Process(self.pid)
        total = 0
        for proc in [parent, *parent.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total / 2**20

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.current())
            time.sleep(0.02)

    def __enter__(self) -> RssSampler:
        self.peak = self.current()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def start_host(data_dir: str, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            HOST_BIN,
            "run",
            "--model",
            "legacy",
            "--model",
            "iris",
            "--no-train",
            "--listen-port",
            str(port),
            "--data-dir",
            data_dir,
            "--log-level",
            "WARNING",
            "--max-body-size",
            "4G",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/v2/health", timeout=1).status_code == 200:
                return proc
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise TimeoutError("host did not become ready")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-registry-"))
    blob = work / "artifact.bin"
    with blob.open("wb") as fh:
        for _ in range(args.size_mb):
            fh.write(os.urandom(1 << 20))
    size_mb = blob.stat().st_size / 1e6
    port = free_port()
    host = start_host(str(work / "data"), port)
    base = f"http://127.0.0.1:{port}/v2/models"
    copies, uploads, downloads = [], [], []
    idle = RssSampler(host.pid).current()
    up_peak = down_peak = 0.0
    try:
        for i in range(args.repeat):
            target = work / f"copy-{i}.bin"
            t = time.perf_counter()
            shutil.copyfile(blob, target)
            os.sync()
            copies.append(time.perf_counter() - t)
            target.unlink()

            with RssSampler(host.pid) as rss:
                t = time.perf_counter()
                subprocess.run(
                    [
                        "curl",
                        "-sS",
                        "-f",
                        "-o",
                        os.devnull,
                        "-F",
                        f"file=@{blob}",
                        "-F",
                        "engine=custom",
                        "-F",
                        f"version=big{i}",
                        f"{base}/legacy/versions/",
                    ],
                    check=True,
                )
                uploads.append(time.perf_counter() - t)
            up_peak = max(up_peak, rss.peak)

            out = work / f"down-{i}.bin"
            with RssSampler(host.pid) as rss:
                t = time.perf_counter()
                subprocess.run(
                    [
                        "curl",
                        "-sS",
                        "-f",
                        "-o",
                        str(out),
                        f"{base}/legacy/versions/big{i}/download",
                    ],
                    check=True,
                )
                downloads.append(time.perf_counter() - t)
            down_peak = max(down_peak, rss.peak)
            assert out.stat().st_size == blob.stat().st_size
            out.unlink()
            requests.delete(f"{base}/legacy/versions/big{i}", timeout=30)

        # time to first predict after load, for the scikit-learn example
        import joblib
        from sklearn.datasets import load_iris
        from sklearn.ensemble import RandomForestClassifier

        iris = load_iris()
        forest = RandomForestClassifier(n_estimators=100, random_state=0).fit(
            iris.data, iris.target
        )
        joblib.dump(forest, work / "forest.joblib")
        with (work / "forest.joblib").open("rb") as fh:
            requests.post(
                f"{base}/iris/versions/",
                data={"engine": "joblib", "version": "rf"},
                files={"file": ("forest.joblib", fh)},
                timeout=60,
            ).raise_for_status()
        features = {
            "sepal_length": 5.1,
            "sepal_width": 3.5,
            "petal_length": 1.4,
            "petal_width": 0.2,
        }
        loads, firsts, warm_predicts = [], [], []
        for _ in range(args.repeat):
            requests.post(f"{base}/iris/versions/rf/unload", timeout=30).raise_for_status()
            t = time.perf_counter()
            requests.post(f"{base}/iris/versions/rf/load", timeout=60).raise_for_status()
            loads.append(time.perf_counter() - t)
            t = time.perf_counter()
            requests.post(
                f"{base}/iris/predict/", params={**features, "version": "rf"}, timeout=30
            ).raise_for_status()
            firsts.append(time.perf_counter() - t)
            t = time.perf_counter()
            requests.post(
                f"{base}/iris/predict/", params={**features, "version": "rf"}, timeout=30
            ).raise_for_status()
            warm_predicts.append(time.perf_counter() - t)
    finally:
        host.send_signal(signal.SIGTERM)
        host.wait(30)
        shutil.rmtree(work, ignore_errors=True)

    copy_s, up_s, down_s = (statistics.median(x) for x in (copies, uploads, downloads))
    print(f"artifact: {size_mb:.0f} MB, medians of {args.repeat}")
    print(f"local disk copy : {size_mb / copy_s:8.1f} MB/s")
    print(f"upload (curl)   : {size_mb / up_s:8.1f} MB/s  ratio to local copy {copy_s / up_s:.2f}")
    print(
        f"download (curl) : {size_mb / down_s:8.1f} MB/s  ratio to local copy {copy_s / down_s:.2f}"
    )
    print(
        f"host tree RSS   : idle {idle:.1f} MiB, peak during upload {up_peak:.1f} MiB, "
        f"peak during download {down_peak:.1f} MiB"
    )
    print(
        f"iris load       : {statistics.median(loads) * 1000:.1f} ms; first predict after load "
        f"{statistics.median(firsts) * 1000:.1f} ms; next predict {statistics.median(warm_predicts) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
