"""HTTP load generator, run as its own process by ``benchmarks/bench_host.py``.

    python benchmarks/loadgen.py URL --method POST --concurrency 16 --duration 5 \
        [--form k=v ...] [--file field=path] [--json]

Keeps ``concurrency`` requests in flight on keep-alive connections for
``duration`` seconds (after a short warm-up) and prints one JSON line:
requests, errors, req/s and latency percentiles in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

import aiohttp


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))
    return sorted_values[index]


async def _run(args: argparse.Namespace) -> dict[str, object]:
    form = dict(item.split("=", 1) for item in args.form)
    file_data = None
    if args.file:
        field, path = args.file.split("=", 1)
        file_data = (field, Path(path).read_bytes(), Path(path).name)
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=args.concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:

        def body() -> aiohttp.FormData | None:
            if file_data is None and not form:
                return None
            data = aiohttp.FormData()
            for k, v in form.items():
                data.add_field(k, v)
            if file_data is not None:
                data.add_field(file_data[0], file_data[1], filename=file_data[2])
            return data

        async def one() -> None:
            nonlocal errors
            start = time.perf_counter()
            async with session.request(args.method, args.url, data=body()) as resp:
                await resp.read()
                if resp.status != 200:
                    errors += 1
            latencies.append(time.perf_counter() - start)

        async def worker(stop_at: float) -> None:
            while time.perf_counter() < stop_at:
                await one()

        warm_until = time.perf_counter() + args.warmup
        await asyncio.gather(*(worker(warm_until) for _ in range(args.concurrency)))
        latencies.clear()
        errors = 0
        began = time.perf_counter()
        stop_at = began + args.duration
        await asyncio.gather(*(worker(stop_at) for _ in range(args.concurrency)))
        elapsed = time.perf_counter() - began
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / elapsed,
        "p50_ms": _percentile(ordered, 0.5) * 1000,
        "p90_ms": _percentile(ordered, 0.9) * 1000,
        "p99_ms": _percentile(ordered, 0.99) * 1000,
        "mean_ms": (statistics.fmean(ordered) * 1000) if ordered else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--method", default="POST")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--form", action="append", default=[], metavar="K=V")
    parser.add_argument("--file", metavar="FIELD=PATH")
    args = parser.parse_args()
    try:
        import uvloop

        result = uvloop.run(_run(args))
    except ImportError:
        result = asyncio.run(_run(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
