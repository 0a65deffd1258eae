#!/usr/bin/env python
"""Online multiclass classification: river's ImageSegments stream (7 surfaces).

Each image region is learned with its class; the host predicts it first, so the
metrics are progressive. At the end a few regions are predicted, with the
probability of each class::

    bash scripts/serve &
    .venv/bin/python examples/multiclass/image_segments.py
    .venv/bin/python examples/multiclass/image_segments.py --bulk
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Iterator, Sequence
from typing import Any

from river import datasets

from deepaas_host.client import BearerTokenAuth, Client, ModelAlreadyExists, ModelNotFound

PLUGIN = "image-segments"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:5000", help="the host's address")
    parser.add_argument("--model", default=PLUGIN, help="online model (created if missing)")
    parser.add_argument("--token", help="access token, when the host requires one")
    parser.add_argument("--bulk", action="store_true", help="send samples through the bulk route")
    parser.add_argument("--limit", type=int, help="stop after this many samples")
    parser.add_argument("--every", type=int, default=500, help="show metrics every N samples")
    return parser.parse_args(argv)


def ensure_model(client: Client, name: str) -> None:
    try:
        client.get_online_model(name)
    except ModelNotFound:
        try:
            client.create_model(PLUGIN, name=name)
            print(f"created online model {name!r} from plugin {PLUGIN!r}")
        except ModelAlreadyExists:
            pass  # created meanwhile (the host creates one per plugin at first start)


def show(client: Client, model: str, label: str) -> None:
    report = client.metrics(model)
    values = "  ".join(f"{k}={v:.4f}" for k, v in report["overall"].items() if v is not None)
    print(f"[{label}] learned={report['learned']}  {values}")


def samples(limit: int | None) -> Iterator[tuple[dict[str, Any], str]]:
    return itertools.islice(datasets.ImageSegments(), limit)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    auth = BearerTokenAuth(args.token) if args.token else None
    with Client(args.url, auth, progress=False) as client:
        ensure_model(client, args.model)
        sent = errors = 0
        if args.bulk:
            lines = ({"features": x, "ground_truth": y} for x, y in samples(args.limit))
            for answer in client.learn_many(args.model, lines, chunk_size=args.every):
                sent += 1
                if "error" in answer:
                    errors += 1
                    print(f"sample {sent}: {answer['error']['message']}")
                if sent % args.every == 0:
                    show(client, args.model, f"{sent} samples")
        else:
            for x, y in samples(args.limit):
                client.learn(args.model, x, y)
                sent += 1
                if sent % args.every == 0:
                    show(client, args.model, f"{sent} samples")
        print("a few regions, predicted without keeping them for a label:")
        for x, y in itertools.islice(datasets.ImageSegments(), 0, 2310, 462):
            answer = client.predict(args.model, features=x, keep=False)
            top = sorted(answer.get("probabilities", {}).items(), key=lambda kv: -kv[1])[:3]
            odds = ", ".join(f"{label} {p:.2f}" for label, p in top)
            print(f"  truth {y:<10} predicted {answer['prediction']!s:<10} ({odds})")
        final = client.metrics(args.model)
        print(f"sent {sent} samples ({errors} refused)")
        print(
            "final metrics:", json.dumps({k: final[k] for k in ("learned", "overall", "rolling")})
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
