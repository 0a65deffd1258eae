#!/usr/bin/env python
"""Online clustering of short texts: bag of words, TF-IDF and k-means on the host.

The features of a text model are the text itself. Thirty short texts about three
topics (space, cooking, football) are learned without any label, a few passes
over them; then each text is predicted and the clusters are shown per topic::

    bash scripts/serve &
    .venv/bin/python examples/clustering/text_clusters.py
    .venv/bin/python examples/clustering/text_clusters.py --bulk
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections import Counter
from collections.abc import Iterator, Sequence

from deepaas_host.client import BearerTokenAuth, Client, ModelAlreadyExists, ModelNotFound

PLUGIN = "text-clusters"

TEXTS = [
    ("space", "the rocket launched the satellite into orbit"),
    ("space", "astronauts on the space station watched the earth"),
    ("space", "a telescope found a planet orbiting a distant star"),
    ("space", "the moon landing put astronauts on the lunar surface"),
    ("space", "the rocket engine fired and the capsule reached orbit"),
    ("space", "mars rover sends photos of the red planet"),
    ("space", "the star exploded as a supernova in a distant galaxy"),
    ("space", "the space telescope saw galaxy clusters and stars"),
    ("space", "astronauts trained for the moon mission in the capsule"),
    ("space", "a comet passed the planet on its orbit around the sun"),
    ("cooking", "simmer the tomato sauce with garlic and basil"),
    ("cooking", "bake the bread in a hot oven until golden"),
    ("cooking", "whisk the eggs with sugar and butter for the cake"),
    ("cooking", "chop the onion and garlic and fry them in olive oil"),
    ("cooking", "the soup simmers with carrots onion and fresh herbs"),
    ("cooking", "knead the dough and let the bread rise before baking"),
    ("cooking", "season the sauce with salt pepper and basil"),
    ("cooking", "roast the vegetables in the oven with olive oil"),
    ("cooking", "melt the butter and sugar then bake the cake"),
    ("cooking", "fry the eggs in butter and season with salt"),
    ("football", "the striker scored a goal in the final minute"),
    ("football", "the goalkeeper saved the penalty and the team won"),
    ("football", "the coach picked the team for the league match"),
    ("football", "fans cheered as the team scored another goal"),
    ("football", "the referee gave a penalty after the foul"),
    ("football", "the midfielder passed to the striker who scored"),
    ("football", "the league title was won on the last match day"),
    ("football", "the goalkeeper and defenders kept a clean sheet"),
    ("football", "the team trained before the cup final match"),
    ("football", "a late goal won the match for the home team"),
]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:5000", help="the host's address")
    parser.add_argument("--model", default=PLUGIN, help="online model (created if missing)")
    parser.add_argument("--token", help="access token, when the host requires one")
    parser.add_argument("--bulk", action="store_true", help="send samples through the bulk route")
    parser.add_argument("--limit", type=int, help="stop after this many samples")
    parser.add_argument("--passes", type=int, default=5, help="passes over the texts")
    parser.add_argument("--every", type=int, default=30, help="show metrics every N samples")
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


def stream(passes: int, limit: int | None) -> Iterator[str]:
    """The texts, interleaved across topics, ``passes`` times."""
    order = [TEXTS[i + 10 * t] for i in range(10) for t in range(3)]
    return itertools.islice((text for _ in range(passes) for _, text in order), limit)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    auth = BearerTokenAuth(args.token) if args.token else None
    with Client(args.url, auth, progress=False) as client:
        ensure_model(client, args.model)
        sent = 0
        if args.bulk:
            lines = ({"features": text} for text in stream(args.passes, args.limit))
            for answer in client.learn_many(args.model, lines, chunk_size=args.every):
                sent += 1
                if "error" in answer:
                    print(f"text {sent}: {answer['error']['message']}")
                if sent % args.every == 0:
                    show(client, args.model, f"{sent} texts")
            texts = [{"features": text, "keep": False} for _, text in TEXTS]
            clusters = [
                a.get("prediction") for a in client.learn_many(args.model, texts, "predict")
            ]
        else:
            for text in stream(args.passes, args.limit):
                client.learn(args.model, text)  # no ground truth: clustering
                sent += 1
                if sent % args.every == 0:
                    show(client, args.model, f"{sent} texts")
            clusters = [
                client.predict(args.model, features=text, keep=False)["prediction"]
                for _, text in TEXTS
            ]
        print("clusters per topic:")
        for topic in ("space", "cooking", "football"):
            counts = Counter(c for (t, _), c in zip(TEXTS, clusters, strict=True) if t == topic)
            shown = ", ".join(f"cluster {c}: {n}" for c, n in sorted(counts.items(), key=str))
            print(f"  {topic:<9} {shown}")
        final = client.metrics(args.model)
        print(f"learned {sent} texts")
        print(
            "final metrics:", json.dumps({k: final[k] for k in ("learned", "overall", "rolling")})
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
