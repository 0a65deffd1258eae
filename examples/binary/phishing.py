#!/usr/bin/env python
"""Online binary classification: river's Phishing stream with delayed labels.

Two samples in three are learned at once (features and label together). The third
is first only predicted; its label arrives ``--delay`` samples later and is sent
with the id the prediction was answered with, as a real label would come back
from a person or a downstream system. Metrics score each prediction when its
label arrives::

    bash scripts/serve &
    .venv/bin/python examples/binary/phishing.py
    .venv/bin/python examples/binary/phishing.py --bulk
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

from river import datasets

from deepaas_host.client import BearerTokenAuth, Client, ModelAlreadyExists, ModelNotFound

PLUGIN = "phishing"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:5000", help="the host's address")
    parser.add_argument("--model", default=PLUGIN, help="online model (created if missing)")
    parser.add_argument("--token", help="access token, when the host requires one")
    parser.add_argument("--bulk", action="store_true", help="send samples through the bulk route")
    parser.add_argument("--limit", type=int, help="stop after this many samples")
    parser.add_argument("--every", type=int, default=250, help="show metrics every N samples")
    parser.add_argument("--delay", type=int, default=20, help="samples before a label arrives")
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


def samples(limit: int | None) -> Iterator[tuple[dict[str, Any], bool]]:
    return itertools.islice(datasets.Phishing(), limit)


def delayed(i: int) -> bool:
    """Whether sample ``i`` is predicted now and labelled later."""
    return i % 3 == 2


def one_by_one(client: Client, args: argparse.Namespace) -> tuple[int, int]:
    waiting: deque[tuple[str, bool]] = deque()
    labels = 0
    sent = 0
    for i, (x, y) in enumerate(samples(args.limit)):
        if delayed(i):
            answer = client.predict(args.model, features=x)
            waiting.append((answer["id"], y))
        else:
            client.learn(args.model, x, y)
        while len(waiting) > args.delay:
            ident, truth = waiting.popleft()
            client.label(args.model, ident, truth)
            labels += 1
        sent += 1
        if sent % args.every == 0:
            show(client, args.model, f"{sent} samples, {len(waiting)} awaiting a label")
    while waiting:  # the labels still to come
        ident, truth = waiting.popleft()
        client.label(args.model, ident, truth)
        labels += 1
    return sent, labels


def in_bulk(client: Client, args: argparse.Namespace) -> tuple[int, int]:
    """Blocks of ``--every`` samples: one bulk predict, one bulk learn, then the
    labels of the block's predictions in one bulk label."""
    sent = labels = 0
    stream = samples(args.limit)
    while block := list(itertools.islice(stream, args.every)):
        now = [(x, y) for i, (x, y) in enumerate(block, sent) if not delayed(i)]
        later = [(x, y) for i, (x, y) in enumerate(block, sent) if delayed(i)]
        predictions = client.learn_many(
            args.model, ({"features": x} for x, _ in later), op="predict"
        )
        pending = [(answer["id"], y) for answer, (_, y) in zip(predictions, later, strict=True)]
        for answer in client.learn_many(
            args.model, ({"features": x, "ground_truth": y} for x, y in now)
        ):
            if "error" in answer:
                print("refused:", answer["error"]["message"])
        for answer in client.learn_many(
            args.model, ({"id": ident, "ground_truth": y} for ident, y in pending), op="label"
        ):
            if "error" in answer:
                print("label refused:", answer["error"]["message"])
            else:
                labels += 1
        sent += len(block)
        show(client, args.model, f"{sent} samples")
    return sent, labels


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    auth = BearerTokenAuth(args.token) if args.token else None
    with Client(args.url, auth, progress=False) as client:
        ensure_model(client, args.model)
        sent, labels = in_bulk(client, args) if args.bulk else one_by_one(client, args)
        final = client.metrics(args.model)
        print(f"sent {sent} samples, {labels} of them labelled after their prediction")
        print(
            "final metrics:", json.dumps({k: final[k] for k in ("learned", "overall", "rolling")})
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
