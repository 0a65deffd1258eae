#!/usr/bin/env python
"""Online regression: stream river's TrumpApproval through a deepaas-host online model.

Every poll aggregate goes to the host, which predicts the approval rating before it
learns the true one, so the metrics are progressive (test-then-train)::

    bash scripts/serve &
    .venv/bin/python examples/regression/trump_approval.py
    .venv/bin/python examples/regression/trump_approval.py --bulk
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Iterator, Sequence
from typing import Any

from river import datasets

from deepaas_host.client import BearerTokenAuth, Client, ModelNotFound

PLUGIN = "trump-approval"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:5000", help="the host's address")
    parser.add_argument("--model", default=PLUGIN, help="online model (created if missing)")
    parser.add_argument("--token", help="access token, when the host requires one")
    parser.add_argument("--bulk", action="store_true", help="send samples through the bulk route")
    parser.add_argument("--limit", type=int, help="stop after this many samples")
    parser.add_argument("--every", type=int, default=100, help="show metrics every N samples")
    return parser.parse_args(argv)


def ensure_model(client: Client, name: str) -> None:
    try:
        client.get_online_model(name)
    except ModelNotFound:
        client.create_model(PLUGIN, name=name)
        print(f"created online model {name!r} from plugin {PLUGIN!r}")


def show(client: Client, model: str, label: str) -> None:
    report = client.metrics(model)
    values = "  ".join(f"{k}={v:.4f}" for k, v in report["overall"].items() if v is not None)
    print(f"[{label}] learned={report['learned']}  {values}")


def samples(limit: int | None) -> Iterator[tuple[dict[str, Any], float]]:
    return itertools.islice(datasets.TrumpApproval(), limit)


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
                answer = client.learn(args.model, x, y)
                sent += 1
                if sent % args.every == 0:
                    print(f"  predicted {answer['prediction']:.2f}, truth {y:.2f}")
                    show(client, args.model, f"{sent} samples")
        final = client.metrics(args.model)
        print(f"sent {sent} samples ({errors} refused)")
        print(
            "final metrics:", json.dumps({k: final[k] for k in ("learned", "overall", "rolling")})
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
