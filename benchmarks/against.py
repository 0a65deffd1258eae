"""Run a benchmark against another revision of the package, interleaved, in one run.

    .venv/bin/python benchmarks/against.py REV bench_host.py [--rounds 3] [-- BENCH ARGS]

The package (``deepaas_host/``) of ``REV`` is exported with ``git archive`` into a
temporary directory; the benchmark script of *this* tree then runs ``--rounds`` times
against each package, alternating which goes first, with ``PYTHONPATH`` choosing the
package (the host, its workers and the ``deepaas-host`` command all import from it).
Every benchmark writes its figures with ``--json FILE``; this prints, per figure, the
median of the rounds for ``REV`` and for this tree and their ratio. The machine's noise
is large: read the ratios, and rerun when one looks odd.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def export(rev: str, target: Path) -> None:
    archive = subprocess.run(
        ["git", "archive", "--format=tar", rev, "deepaas_host"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)


def run_once(bench: Path, args: list[str], package_root: Path, out: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(package_root)}
    subprocess.run(
        [sys.executable, str(bench), *args, "--json", str(out)],
        env=env,
        check=True,
        stdout=sys.stderr,  # the benchmark's own lines, for whoever watches
    )
    figures: dict[str, float] = json.loads(out.read_text())
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("rev", help="the revision to compare with, e.g. HEAD~1 or main")
    parser.add_argument("bench", help="a benchmark script in benchmarks/, e.g. bench_host.py")
    parser.add_argument("--rounds", type=int, default=3, help="runs per package (median)")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:cut])
    args.bench_args = argv[cut + 1 :]  # everything after "--" goes to the benchmark
    bench = (HERE / args.bench).resolve()
    label = (
        subprocess.run(
            ["git", "rev-parse", "--short", args.rev], cwd=ROOT, check=True, capture_output=True
        )
        .stdout.decode()
        .strip()
    )
    results: dict[str, dict[str, list[float]]] = {"base": {}, "this": {}}
    with tempfile.TemporaryDirectory(prefix="bench-against-") as tmp:
        base_root = Path(tmp) / "base"
        base_root.mkdir()
        export(args.rev, base_root)
        trees = {"base": base_root, "this": ROOT}
        for round_no in range(args.rounds):
            order = ["base", "this"] if round_no % 2 == 0 else ["this", "base"]
            for which in order:
                print(f"round {round_no + 1}: {which}", file=sys.stderr, flush=True)
                out = Path(tmp) / f"{which}-{round_no}.json"
                for name, value in run_once(bench, args.bench_args, trees[which], out).items():
                    results[which].setdefault(name, []).append(value)
    print(f"\n{args.bench}: medians of {args.rounds} interleaved rounds")
    print(f"{'figure':<44} {label:>12} {'this tree':>12} {'ratio':>7}")
    for name, values in results["this"].items():
        base = results["base"].get(name)
        mine = statistics.median(values)
        if not base:
            print(f"{name:<44} {'-':>12} {mine:>12,.2f}")
            continue
        old = statistics.median(base)
        ratio = mine / old if old else float("nan")
        print(f"{name:<44} {old:>12,.2f} {mine:>12,.2f} {ratio:>7.3f}")


if __name__ == "__main__":
    main()
