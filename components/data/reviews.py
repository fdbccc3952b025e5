"""Short product reviews, generated reproducibly: the text-classification example.

No public corpus of labelled reviews ships in a package tfpipe installs, so the
rows are drawn with numpy from a fixed seed: a product (a category), the number
of readers who found the review helpful, and the review itself, a few sentences
of one to two dozen words in all, capitalised and punctuated like typed text.
Each sentence mixes neutral words with words of its review's sentiment; one
word in ten of those is the other sentiment's ("great" in a negative review,
as in "not great"), and one review in twenty-five is labelled against its words, so
that no rule reads the label off perfectly and a model must weigh many
tokens. The label is `sentiment`, positive or negative, about half each.

Two list columns, `|`-separated (`ingest.list_delimiter`), come from a second
stream of the same seed, so the columns above are the same with or without
them: `tags`, zero to three of the order's tags (a warranty claim more often
beside a negative review, a repeat buyer beside a positive one), and
`past_ratings`, the one to five stars the reviewer gave before (none for a
first review), a little higher from those who liked this product.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

PRODUCTS = ("kettle", "headphones", "backpack", "lamp", "blender", "keyboard")
NEUTRAL = ("the", "it", "this", "i", "my", "was", "is", "for", "with", "after", "a", "week", "and", "box", "day",
           "use", "bought", "arrived", "still", "so", "far", "price", "colour", "size", "again", "every", "morning")
POSITIVE = ("great", "excellent", "love", "sturdy", "quiet", "perfect", "recommend", "happy", "comfortable",
            "reliable", "works", "beautiful", "fast", "solid", "brilliant")
NEGATIVE = ("broke", "terrible", "disappointed", "noisy", "cheap", "returned", "useless", "flimsy", "refund",
            "leaks", "awful", "slow", "stopped", "waste", "poor")
OFF_SENTIMENT = 0.1  # of a review's sentiment words, this fraction come from the other list
LABEL_NOISE = 0.04  # of reviews, this fraction carry the other label
TAGS = ("gift", "sale", "verified", "bundle", "express")
LIST_DELIMITER = "|"
HEADER = ["review_id", "product", "helpful_votes", "review", "sentiment", "tags", "past_ratings"]


def rows(count: int = 3000, seed: int = 7) -> list[list]:
    """The reviews; the same count and seed give the same rows."""
    import numpy as np

    rng, lists = np.random.default_rng(seed), np.random.default_rng([seed, 1])
    out = []
    for i in range(count):
        positive = bool(rng.random() < 0.5)
        words = [_sentence(rng, positive) for _ in range(int(rng.integers(1, 4)))]
        label = positive != bool(rng.random() < LABEL_NOISE)
        out.append([f"r{i:05d}", str(rng.choice(PRODUCTS)), int(rng.poisson(3)), " ".join(words),
                    "positive" if label else "negative", *_lists(lists, positive)])
    return out


def _lists(rng, positive: bool) -> list[str]:
    """The tags and past ratings of one review, each as `|`-separated text."""
    tags = [str(t) for t in rng.choice(TAGS, int(rng.integers(0, 3)), replace=False)]
    if rng.random() < 0.3:
        tags.append("repeat_buyer" if positive else "warranty_claim")
    stars = [min(5, max(1, round(v))) for v in rng.normal(3.6 if positive else 2.9, 1.0, int(rng.poisson(2)))]
    return [LIST_DELIMITER.join(tags), LIST_DELIMITER.join(str(s) for s in stars)]


def _sentence(rng, positive: bool) -> str:
    """Four to eight words, one to three of them a sentiment's, capitalised, ending in . or !"""
    own, other = (POSITIVE, NEGATIVE) if positive else (NEGATIVE, POSITIVE)
    size = int(rng.integers(4, 9))
    words = [str(rng.choice(NEUTRAL)) for _ in range(size)]
    for slot in rng.choice(size, int(rng.integers(1, 4)), replace=False):
        words[slot] = str(rng.choice(other if rng.random() < OFF_SENTIMENT else own))
    return " ".join(words).capitalize() + str(rng.choice([".", "!", ",", "..."]))


def write(path: str | os.PathLike, count: int = 3000) -> Path:
    """`path` as a CSV file of `count` reviews, written whole (a temporary name, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        writer.writerows(rows(count))
    os.replace(tmp, path)
    return path
