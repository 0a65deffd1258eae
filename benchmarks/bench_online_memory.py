"""Memory of the online worker under kept predictions with large features.

    .venv/bin/python benchmarks/bench_online_memory.py [--requests 300] [--size 900000]
        [--keep-bytes 64M]

Starts a host with the ``running-mean`` example plugin, measures the resident
memory of its online worker, sends ``--requests`` predictions (kept for a label,
as by default) whose features hold one text of ``--size`` bytes, and measures again.
Kept predictions are bounded by count, age and ``--keep-bytes`` per model; without
the byte bound the worker grows by about ``requests * size``.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests

HOST_BIN = str(Path(sys.executable).with_name("deepaas-host"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--size", type=int, default=900_000, help="bytes of text per sample")
    parser.add_argument("--keep-bytes", default=None, help="the host's --keep-bytes")
    parser.add_argument("--json", default=None, help="write the figures to this file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as data:
        port = _free_port()
        command = [HOST_BIN, "run", "--listen-port", str(port), "--data-dir", data]
        command += ["--model", "running-mean", "--no-online-fsync"]
        if args.keep_bytes:
            command += ["--keep-bytes", args.keep_bytes]
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if requests.get(url + "/v2/health", timeout=1).status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("the host did not start")
                time.sleep(0.1)
            (worker,) = requests.get(url + "/v2/health", timeout=10).json()["pools"]["online"][
                "pids"
            ]
            body = json.dumps({"features": {"text": "x" * args.size}}).encode()
            headers = {"Content-Type": "application/json"}
            with requests.Session() as session:
                session.post(f"{url}/v2/online/running-mean/predict/", data=b'{"features": {}}',
                             headers=headers, timeout=30)  # fmt: skip
                time.sleep(1)
                before = _rss_mb(worker)
                kept = 0
                for _ in range(args.requests):
                    r = session.post(
                        f"{url}/v2/online/running-mean/predict/",
                        data=body,
                        headers=headers,
                        timeout=60,
                    )
                    r.raise_for_status()
                    kept += r.json().get("kept", True) is not False
                time.sleep(1)
                after = _rss_mb(worker)
                info = session.get(f"{url}/v2/online/running-mean", timeout=30).json()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    figures = {
        "rss_before_mb": round(before, 1),
        "rss_after_mb": round(after, 1),
        "rss_growth_mb": round(after - before, 1),
        "kept_now": info["kept"],
        "kept_bytes_mb": round(info.get("kept_bytes", 0) / 2**20, 1),
    }
    print(
        f"{args.requests} kept predictions of {args.size} bytes each: online worker "
        f"{before:.1f} MB -> {after:.1f} MB (+{after - before:.1f} MB); "
        f"{info['kept']} kept now"
        + (f", {figures['kept_bytes_mb']} MB by their size" if "kept_bytes" in info else "")
    )
    if args.json:
        Path(args.json).write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
