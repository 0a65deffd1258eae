#!/usr/bin/env python
"""A custom online model: the running mean of TrumpApproval's targets.

``running-mean`` is a hand-written class with ``learn_one`` and ``predict_one``;
the host serves it like any river model. Only the targets of the stream matter
(the features are empty). At the end the host's prediction, the mean of
everything learned, is compared with the mean computed here::

    bash scripts/serve &
    .venv/bin/python examples/custom/running_mean.py
    .venv/bin/python examples/custom/running_mean.py --bulk
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Iterator, Sequence

from river import datasets

from deepaas_host.client import BearerTokenAuth, Client, ModelAlreadyExists, ModelNotFound

PLUGIN = "running-mean"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:5000", help="the host's address")
    parser.add_argument("--model", default=PLUGIN, help="online model (created if missing)")
    parser.add_argument("--token", help="access token, when the host requires one")
    parser.add_argument("--bulk", action="store_true", help="send samples through the bulk route")
    parser.add_argument("--limit", type=int, help="stop after this many samples")
    parser.add_argument("--every", type=int, default=200, help="show metrics every N samples")
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


def targets(limit: int | None) -> Iterator[float]:
    return (y for _, y in itertools.islice(datasets.TrumpApproval(), limit))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    auth = BearerTokenAuth(args.token) if args.token else None
    with Client(args.url, auth, progress=False) as client:
        ensure_model(client, args.model)
        before = client.get_online_model(args.model)["learned"]
        seen: list[float] = []
        if args.bulk:
            lines = ({"features": {}, "ground_truth": y} for y in targets(args.limit))
            for answer, y in zip(
                client.learn_many(args.model, lines, chunk_size=args.every),
                targets(args.limit),
                strict=True,
            ):
                if "error" in answer:
                    print("refused:", answer["error"]["message"])
                    continue
                seen.append(y)
                if len(seen) % args.every == 0:
                    show(client, args.model, f"{len(seen)} samples")
        else:
            for y in targets(args.limit):
                client.learn(args.model, {}, y)
                seen.append(y)
                if len(seen) % args.every == 0:
                    show(client, args.model, f"{len(seen)} samples")
        mean = client.predict(args.model, features={}, keep=False)["prediction"]
        print(f"host's running mean {mean:.4f}; mean computed here {sum(seen) / len(seen):.4f}")
        if before:
            print(f"(the model had learned {before} samples before this run)")
        final = client.metrics(args.model)
        print(
            "final metrics:", json.dumps({k: final[k] for k in ("learned", "overall", "rolling")})
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
