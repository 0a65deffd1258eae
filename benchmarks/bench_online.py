"""Benchmark of online learning over HTTP against the same river work in-process.

    .venv/bin/python benchmarks/bench_online.py [--duration 4] [--repeat 3] [--quick]

For the regression (TrumpApproval) and binary (Phishing) example plugins:
- learn and predict events per second over HTTP, one sample per request, at
  concurrency 1 and 16 (the load generator runs in its own process and cycles
  through the river dataset), with the event log fsynced before every
  acknowledgement (the default);
- the same learn events through the bulk route (newline-delimited JSON);
- in-process river doing what the host does per learned event, measured in the
  same run: predict, update the flavor's metrics (overall and rolling), learn —
  and, for reference, ``learn_one`` alone.

Prints medians of ``--repeat`` runs and the ratio of bulk to in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
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

import requests

PY = sys.executable
HOST_BIN = str(Path(PY).with_name("deepaas-host"))
PLUGINS = {"regression": "trump-approval", "binary": "phishing"}


def _dataset(plugin: str) -> list[tuple[dict[str, Any], Any]]:
    from river import datasets

    stream = datasets.TrumpApproval() if plugin == "trump-approval" else datasets.Phishing()
    return list(stream)


# load generator (its own process) -----------------------------------------------------


async def _generate(url: str, plugin: str, op: str, concurrency: int, duration: float) -> None:
    import aiohttp

    samples = _dataset(plugin)
    if op == "learn":
        bodies = [json.dumps({"features": x, "ground_truth": y}).encode() for x, y in samples]
    else:
        bodies = [json.dumps({"features": x, "keep": False}).encode() for x, _ in samples]
    source = itertools.cycle(bodies)
    latencies: list[float] = []
    errors = 0
    headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(stop_at: float, record: bool) -> None:
            nonlocal errors
            while time.perf_counter() < stop_at:
                began = time.perf_counter()
                async with session.post(url, data=next(source), headers=headers) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors += 1
                if record:
                    latencies.append(time.perf_counter() - began)

        warm = time.perf_counter() + 0.5
        await asyncio.gather(*(worker(warm, False) for _ in range(concurrency)))
        began = time.perf_counter()
        await asyncio.gather(*(worker(began + duration, True) for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    ordered = sorted(latencies)
    print(
        json.dumps(
            {
                "events_per_s": len(latencies) / elapsed,
                "errors": errors,
                "p50_ms": ordered[len(ordered) // 2] * 1000 if ordered else None,
            }
        )
    )


# the host -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_host(data_dir: str, fsync: bool) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    args = [HOST_BIN, "run", "--listen-port", str(port), "--data-dir", data_dir]
    for plugin in PLUGINS.values():
        args += ["--model", plugin]
    if not fsync:
        args.append("--no-online-fsync")
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/v2/health", timeout=1).status_code == 200:
                return proc, url
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise TimeoutError("host not ready")


def _fresh(url: str, plugin: str) -> str:
    r = requests.post(f"{url}/v2/online/", json={"plugin": plugin}, timeout=30)
    r.raise_for_status()
    name: str = r.json()["name"]
    return name


def _http(url: str, plugin: str, op: str, concurrency: int, duration: float) -> float:
    name = _fresh(url, plugin)
    out = subprocess.run(
        [PY, __file__, "_generate", f"{url}/v2/online/{name}/{op}/", plugin, op,
         str(concurrency), str(duration)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result = json.loads(out.stdout)
    if result["errors"]:
        raise RuntimeError(f"{result['errors']} failed requests")
    return float(result["events_per_s"])


def _bulk(url: str, plugin: str, passes: int) -> float:
    name = _fresh(url, plugin)
    samples = _dataset(plugin) * passes
    body = "".join(json.dumps({"features": x, "ground_truth": y}) + "\n" for x, y in samples)
    data = body.encode()
    began = time.perf_counter()
    r = requests.post(f"{url}/v2/online/{name}/bulk/", data=data, timeout=600)
    elapsed = time.perf_counter() - began
    r.raise_for_status()
    lines = r.text.count("\n")
    if lines != len(samples) or '"error"' in r.text:
        raise RuntimeError("bulk answered errors")
    return len(samples) / elapsed


def _in_process(plugin: str, passes: int) -> tuple[float, float]:
    """(events/s doing what the host does per event, events/s of learn_one alone)."""
    from deepaas_host.model.discovery import list_plugins, load_plugin
    from deepaas_host.online.flavors import flavor_of, metric_set

    info = next(p for p in list_plugins() if p.name == plugin)
    adapter = load_plugin(info).model
    samples = _dataset(plugin) * passes

    model = adapter.build()
    flavor = flavor_of(adapter.flavor, model)
    metrics = metric_set(flavor, adapter.metrics(), 1000)
    began = time.perf_counter()
    for x, y in samples:
        prediction, proba = flavor.predict(model, x)
        flavor.learn(model, x, y)
        metrics.update(model, x, y, prediction, proba)
    full = len(samples) / (time.perf_counter() - began)

    model = adapter.build()
    began = time.perf_counter()
    for x, y in samples:
        model.learn_one(x, y)
    bare = len(samples) / (time.perf_counter() - began)
    return full, bare


def _median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_generate":
        _, _, url, plugin, op, concurrency, duration = sys.argv
        asyncio.run(_generate(url, plugin, op, int(concurrency), float(duration)))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per HTTP run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--passes", type=int, default=20, help="dataset passes for bulk")
    parser.add_argument("--quick", action="store_true", help="1 run of 1.5 s, 3 passes")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.repeat, args.passes = 1.5, 1, 3

    print(f"online learning benchmark: {os.cpu_count()} cores, medians of {args.repeat} runs")
    collected: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = _start_host(str(Path(tmp) / "fsync"), fsync=True)
        try:
            for flavor, plugin in PLUGINS.items():
                figures: dict[str, float] = {}
                for op in ("learn", "predict"):
                    for c in (1, 16):
                        runs = [
                            _http(url, plugin, op, c, args.duration) for _ in range(args.repeat)
                        ]
                        figures[f"{op} c={c}"] = _median(runs)
                figures["bulk learn"] = _median(
                    [_bulk(url, plugin, args.passes) for _ in range(args.repeat)]
                )
                local = [_in_process(plugin, args.passes) for _ in range(args.repeat)]
                figures["in-process (predict+metrics+learn)"] = _median([f for f, _ in local])
                figures["in-process learn_one only"] = _median([b for _, b in local])
                print(f"\n{flavor} ({plugin}), events/s:")
                for key, value in figures.items():
                    print(f"  {key:<36} {value:>10,.0f}")
                ratio = figures["in-process (predict+metrics+learn)"] / figures["bulk learn"]
                print(f"  bulk learn takes {ratio:.2f}x the in-process time per event")
                collected.update({f"{flavor} {key} events/s": v for key, v in figures.items()})
                collected[f"{flavor} bulk/in-process time"] = ratio
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    if args.json:
        Path(args.json).write_text(json.dumps(collected, indent=2))


if __name__ == "__main__":
    main()
