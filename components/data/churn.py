"""A subscription-churn table, generated reproducibly, delivered as one file a day: the retraining example.

No public churn data set ships in a package tfpipe installs, so the rows are
drawn from a fixed model with numpy (a seed per day): tenure in months,
monthly charges, support calls, a plan (basic / standard / premium) and a
region, and `churned` drawn from a logistic function of them. Days of the
same `shift` are different samples of one distribution; `shift=True` is the
day a broken upstream export would deliver: monthly charges about 60% higher,
a plan never seen before ("enterprise") and `support_calls` renamed
`support_tickets`. `concept=True` is the day the customers changed rather
than the data: every feature is drawn as before, but who churns follows
another rule (long-standing customers on cheap plans leave, support calls no
longer matter), so skew and drift see nothing and only the labels, arriving
later, show the model is now wrong.
"""

from __future__ import annotations

import csv
import datetime
import os
import zlib
from pathlib import Path

PLANS = ("basic", "standard", "premium")
REGIONS = ("north", "south", "east", "west")


def rows(day: datetime.date, count: int = 2000, shift: bool = False, concept: bool = False
         ) -> tuple[list[str], list[list]]:
    """The header and rows of one day; the same day, shift and concept give the same rows."""
    import numpy as np

    rng = np.random.default_rng(zlib.crc32(f"{day.isoformat()}-{shift}{'-concept' if concept else ''}".encode()))
    tenure = rng.integers(1, 72, count)
    plans = rng.choice(PLANS + (("enterprise",) if shift else ()), count)
    charges = np.round(rng.normal(55, 18, count).clip(10, None) * (1.6 if shift else 1.0), 2)
    calls = rng.poisson(1.5, count)
    regions = rng.choice(REGIONS, count)
    premium = np.isin(plans, ("premium", "enterprise"))
    logit = -0.5 - 0.05 * tenure + 0.025 * (charges - 55) + 0.6 * calls - 0.7 * premium
    if concept:
        logit = -2.5 + 0.05 * tenure - 0.025 * (charges - 55) + 0.7 * premium
    churned = (rng.random(count) < 1 / (1 + np.exp(-logit))).astype(int)
    header = ["customer_id", "tenure_months", "monthly_charges", "support_tickets" if shift else "support_calls",
              "plan", "region", "churned"]
    ids = [f"{day:%Y%m%d}-{i:05d}" for i in range(count)]
    return header, [list(r) for r in zip(ids, tenure.tolist(), charges.tolist(), calls.tolist(), plans.tolist(),
                                         regions.tolist(), churned.tolist(), strict=True)]


def write_day(root: str | os.PathLike, day: datetime.date, shift: bool = False, concept: bool = False) -> Path:
    """`<root>/<YYYY-MM-DD>/churn.csv`, written whole (a temporary name, then renamed)."""
    path = Path(root) / day.isoformat() / "churn.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    header, body = rows(day, shift=shift, concept=concept)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(body)
    os.replace(tmp, path)
    return path


def write_labels(root: str | os.PathLike, day: datetime.date, shift: bool = False, concept: bool = False,
                 count: int = 2000) -> Path:
    """`<root>/<YYYY-MM-DD>.csv`, dated the day after `day`: whether each of that day's customers churned, known
    a day later (`customer_id`, `churned`, `known_at`), as a nightly labels export delivers them."""
    known = day + datetime.timedelta(days=1)
    path = Path(root) / f"{known.isoformat()}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    _, body = rows(day, count=count, shift=shift, concept=concept)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["customer_id", "churned", "known_at"])
        writer.writerows([r[0], r[-1], known.isoformat()] for r in body)
    os.replace(tmp, path)
    return path
