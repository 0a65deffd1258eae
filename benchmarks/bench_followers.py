"""Benchmark of a learner while hundreds of clients follow the model's event stream.

    .venv/bin/python benchmarks/bench_followers.py [--followers 400] [--duration 4] [--repeat 3]

One host serves the ``running-mean`` example plugin (the cheapest model, so the
figures show the host's own cost). For each run a fresh model is created and:

- ``--followers`` clients follow ``GET /v2/online/{name}/stream/events`` from a
  process of their own, reading and discarding everything (0 for the baseline);
- the load generator, another process, sends learns (one sample per request,
  ``--concurrency`` at a time) for ``--duration`` seconds after a warm-up.

Prints the median learns/s with no followers and with ``--followers`` of them,
measured in the same run, alternating, and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
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

import requests

PY = sys.executable
HOST_BIN = str(Path(PY).with_name("deepaas-host"))
PLUGIN = "running-mean"


# load generator and followers (their own processes) -----------------------------------


async def _generate(url: str, concurrency: int, duration: float) -> None:
    import aiohttp

    body = json.dumps({"features": {"x": 1.0}, "ground_truth": 2.0}).encode()
    headers = {"Content-Type": "application/json"}
    count = 0
    errors = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(stop_at: float, record: bool) -> None:
            nonlocal count, errors
            while time.perf_counter() < stop_at:
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors += 1
                if record:
                    count += 1

        warm = time.perf_counter() + 0.5
        await asyncio.gather(*(worker(warm, False) for _ in range(concurrency)))
        began = time.perf_counter()
        await asyncio.gather(*(worker(began + duration, True) for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    print(json.dumps({"learns_per_s": count / elapsed, "errors": errors}))


async def _follow(url: str, count: int) -> None:
    """Follow the stream ``count`` times over until stdin closes; report bytes read."""
    import aiohttp

    received = 0
    connected = 0
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def follower() -> None:
            nonlocal received, connected
            async with session.get(url) as resp:
                first = True
                async for chunk in resp.content.iter_any():
                    if first:
                        connected += 1
                        first = False
                    received += len(chunk)

        tasks = [asyncio.ensure_future(follower()) for _ in range(count)]
        while connected < count:
            await asyncio.sleep(0.05)
        print("connected", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.readline)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps({"bytes": received}), flush=True)


# the host -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_host(data_dir: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    args = [HOST_BIN, "run", "--listen-port", str(port), "--data-dir", data_dir]
    args += ["--model", PLUGIN, "--max-connections-per-client", "0"]
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


def _run(url: str, followers: int, concurrency: int, duration: float) -> float:
    r = requests.post(f"{url}/v2/online/", json={"plugin": PLUGIN}, timeout=30)
    r.raise_for_status()
    name = r.json()["name"]
    follow = None
    if followers:
        follow = subprocess.Popen(
            [PY, __file__, "_follow", f"{url}/v2/online/{name}/stream/events", str(followers)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert follow.stdout is not None and follow.stdin is not None
        if follow.stdout.readline().strip() != "connected":
            raise RuntimeError("the followers did not connect")
    try:
        out = subprocess.run(
            [PY, __file__, "_generate", f"{url}/v2/online/{name}/learn/", str(concurrency),
             str(duration)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    finally:
        if follow is not None:
            assert follow.stdin is not None and follow.stdout is not None
            follow.stdin.close()
            received = json.loads(follow.stdout.read().strip().splitlines()[-1])["bytes"]
            follow.wait(60)
            if not received:
                raise RuntimeError("the followers received nothing")
    requests.delete(f"{url}/v2/online/{name}", timeout=30)
    result = json.loads(out.stdout)
    if result["errors"]:
        raise RuntimeError(f"{result['errors']} failed learns")
    return float(result["learns_per_s"])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_generate":
        _, _, url, concurrency, duration = sys.argv
        asyncio.run(_generate(url, int(concurrency), float(duration)))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_follow":
        _, _, url, count = sys.argv
        asyncio.run(_follow(url, int(count)))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--followers", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16, help="learns in flight")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    args = parser.parse_args()

    print(
        f"event-stream followers benchmark: {os.cpu_count()} cores, {PLUGIN}, "
        f"concurrency {args.concurrency}, medians of {args.repeat} runs"
    )
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = _start_host(tmp)
        try:
            alone: list[float] = []
            followed: list[float] = []
            for _ in range(args.repeat):
                alone.append(_run(url, 0, args.concurrency, args.duration))
                followed.append(_run(url, args.followers, args.concurrency, args.duration))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    quiet, busy = statistics.median(alone), statistics.median(followed)
    print(f"  learns/s, no followers          {quiet:>10,.0f}")
    print(f"  learns/s, {args.followers:>4} followers        {busy:>10,.0f}")
    print(f"  ratio (followed / alone)        {busy / quiet:>10.2f}")


if __name__ == "__main__":
    main()
