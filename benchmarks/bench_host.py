"""Benchmark of the core host against a bare aiohttp handler doing the same work.

    .venv/bin/python benchmarks/bench_host.py [--duration 4] [--repeat 3] [--quick]

Measures, with the load generator (benchmarks/loadgen.py) in its own process:
- predict of the demo model with arguments in the query string and in a form,
  at concurrency 1, 16 and 64 — host (worker pool) and bare handler (in-process);
- ``GET /v2/models/`` at concurrency 16;
- predict with a 1 MB multipart upload at concurrency 4;
- start-up time until ``/v2/health`` is ready (demo plugin);
- memory of the host's process tree after warm-up with 1 and 2 workers, and the
  demo plugin's own footprint, to give the cost of one extra worker.

Each load figure is the median of ``--repeat`` runs; ratios compare the two
servers measured in the same run. The machine's noise is large: read ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import requests

HERE = Path(__file__).resolve().parent
PY = sys.executable
HOST_BIN = str(Path(PY).with_name("deepaas-host"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return time.perf_counter() - start
        except requests.ConnectionError:
            pass
        time.sleep(0.01)
    raise TimeoutError(url)


def start_host(port: int, data_dir: str, workers: int = 1) -> tuple[subprocess.Popen[bytes], float]:
    began = time.perf_counter()
    proc = subprocess.Popen(
        [
            HOST_BIN,
            "run",
            "--model",
            "demo",
            "--listen-port",
            str(port),
            "--data-dir",
            data_dir,
            "--workers",
            str(workers),
            "--log-level",
            "WARNING",
            "--no-train",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_ready(f"http://127.0.0.1:{port}/v2/health", proc)
    return proc, time.perf_counter() - began


def start_bare(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [PY, str(HERE / "bare_server.py"), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_ready(f"http://127.0.0.1:{port}/v2/models/", proc)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def load(
    url: str, concurrency: int, duration: float, repeat: int, extra: list[str]
) -> dict[str, float]:
    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [
                PY,
                str(HERE / "loadgen.py"),
                url,
                "--concurrency",
                str(concurrency),
                "--duration",
                str(duration),
                *extra,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        runs.append(json.loads(out.stdout))
    if any(r["errors"] for r in runs):
        raise RuntimeError(f"errors while loading {url}: {runs}")
    return {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50_ms", "p99_ms")}


def tree_memory(pid: int) -> tuple[float, float]:
    """(RSS, USS) of a process and all its descendants, in MiB."""
    parent = psutil.Process(pid)
    procs = [parent, *parent.children(recursive=True)]
    rss = sum(p.memory_info().rss for p in procs)
    uss = sum(p.memory_full_info().uss for p in procs)
    return rss / 2**20, uss / 2**20


def plugin_footprint() -> tuple[float, float]:
    """USS of a bare interpreter vs one that imported and warmed the demo plugin."""
    code = (
        "import os, psutil, sys\n"
        "if sys.argv[1] == 'plugin':\n"
        "    from deepaas_host_demo.model import DemoModel\n"
        "    m = DemoModel(); m.warm(); m.predict(label='dog', count=2, scale=1.0, flag=False,"
        " data=None, accept='application/json', fail='none', sleep=0.0)\n"
        "print(psutil.Process().memory_full_info().uss / 2**20)\n"
    )
    bare = float(
        subprocess.run([PY, "-c", code, "bare"], capture_output=True, text=True, check=True).stdout
    )
    plugin = float(
        subprocess.run(
            [PY, "-c", code, "plugin"], capture_output=True, text=True, check=True
        ).stdout
    )
    return bare, plugin


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per load run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--quick", action="store_true", help="1 run of 2 s each")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.repeat = 2.0, 1

    data_dir = tempfile.mkdtemp(prefix="bench-host-")
    upload = Path(data_dir) / "upload.bin"
    upload.write_bytes(os.urandom(1 << 20))
    results: dict[str, Any] = {"cpu_count": os.cpu_count(), "python": sys.version.split()[0]}

    # start-up time (median of 3 cold starts of the host with the demo plugin)
    startups = []
    for _ in range(3):
        port = free_port()
        proc, took = start_host(port, data_dir)
        startups.append(took)
        stop(proc)
    results["startup_s"] = statistics.median(startups)

    host_port, bare_port = free_port(), free_port()
    host, _ = start_host(host_port, data_dir)
    bare = start_bare(bare_port)
    predict = "/v2/models/demo/predict/"
    cases = []
    for c in (1, 16, 64):
        cases.append((f"predict query c={c}", "POST", predict + "?label=dog&count=2", c, []))
    for c in (1, 16, 64):
        cases.append(
            (
                f"predict form c={c}",
                "POST",
                predict,
                c,
                ["--form", "label=dog", "--form", "count=2"],
            )
        )
    cases.append(("GET /v2/models/ c=16", "GET", "/v2/models/", 16, []))
    cases.append(("predict 1 MB upload c=4", "POST", predict, 4, ["--file", f"data={upload}"]))
    table = []
    try:
        for name, method, path, c, extra in cases:
            extra = [*extra, "--method", method]
            h = load(f"http://127.0.0.1:{host_port}{path}", c, args.duration, args.repeat, extra)
            b = load(f"http://127.0.0.1:{bare_port}{path}", c, args.duration, args.repeat, extra)
            row = {
                "case": name,
                "host": h,
                "bare": b,
                "ratio_rps": h["rps"] / b["rps"],
                "added_p50_ms": h["p50_ms"] - b["p50_ms"],
            }
            table.append(row)
            print(
                f"{name:<28} host {h['rps']:8.0f} req/s p50 {h['p50_ms']:6.2f} ms | "
                f"bare {b['rps']:8.0f} req/s p50 {b['p50_ms']:6.2f} ms | "
                f"ratio {row['ratio_rps']:.2f}  added p50 {row['added_p50_ms']:+.2f} ms",
                flush=True,
            )
        rss1, uss1 = tree_memory(host.pid)
    finally:
        stop(host)
        stop(bare)
    results["load"] = table

    port = free_port()
    host2, _ = start_host(port, data_dir, workers=2)
    try:
        for _ in range(50):
            requests.post(f"http://127.0.0.1:{port}{predict}", timeout=10)
        rss2, uss2 = tree_memory(host2.pid)
    finally:
        stop(host2)
    bare_uss, plugin_uss = plugin_footprint()
    extra_worker = uss2 - uss1
    results["memory_mib"] = {
        "tree_rss_1_worker": rss1,
        "tree_rss_2_workers": rss2,
        "tree_uss_1_worker": uss1,
        "tree_uss_2_workers": uss2,
        "extra_worker_uss": extra_worker,
        "plugin_footprint_uss": plugin_uss - bare_uss,
        "interpreter_uss": bare_uss,
        "extra_worker_beyond_plugin": extra_worker - (plugin_uss - bare_uss),
    }
    print(f"start-up to ready (median of 3): {results['startup_s']:.2f} s")
    m = results["memory_mib"]
    print(
        f"process tree after warm-up: 1 worker RSS {rss1:.1f} MiB (USS {uss1:.1f}); "
        f"2 workers RSS {rss2:.1f} MiB (USS {uss2:.1f})"
    )
    print(
        f"extra worker: {extra_worker:.1f} MiB USS, of which demo plugin {m['plugin_footprint_uss']:.1f} MiB "
        f"-> {m['extra_worker_beyond_plugin']:.1f} MiB beyond the plugin "
        f"(a bare interpreter is {bare_uss:.1f} MiB)"
    )
    out = Path(data_dir) / "results.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"full results: {out}")
    if args.json:
        figures = {"start-up s": results["startup_s"]}
        for row in table:
            figures[f"{row['case']} host req/s"] = row["host"]["rps"]
            figures[f"{row['case']} host/bare"] = row["ratio_rps"]
            figures[f"{row['case']} added p50 ms"] = row["added_p50_ms"]
        figures["extra worker beyond plugin MiB"] = m["extra_worker_beyond_plugin"]
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
