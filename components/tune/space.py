"""The search space: trials from grid or seeded random search, as TensorBoard's hparams API sees them.

Keys are train config keys (`learning_rate`, `model.dropout`, `batch_size`);
a trial's values are applied to the train config the way `--set` is, so a
value of the wrong type is the same clear error.
"""

from __future__ import annotations

import itertools
import math
import random

from tensorboard.plugins.hparams import api as hp

from components.common import config as config_lib
from components.common.config import Domain, TrainConfig, TuneConfig


def grid_values(domain: Domain, points: int) -> list:
    if domain.values:
        return list(domain.values)
    low, high = domain.min, domain.max
    if points == 1 or low == high:
        values = [low]
    elif domain.log:
        values = [math.exp(math.log(low) + i * (math.log(high) - math.log(low)) / (points - 1)) for i in range(points)]
    else:
        values = [low + i * (high - low) / (points - 1) for i in range(points)]
    return sorted({int(round(v)) for v in values}) if domain.integer else [float(f"{v:.6g}") for v in values]


def sample(domain: Domain, rng: random.Random):
    if domain.values:
        return rng.choice(list(domain.values))
    if domain.integer:
        return rng.randint(int(domain.min), int(domain.max))
    if domain.log:
        return float(f"{math.exp(rng.uniform(math.log(domain.min), math.log(domain.max))):.6g}")
    return float(f"{rng.uniform(domain.min, domain.max):.6g}")


def trials(cfg: TuneConfig) -> list[dict]:
    """The hyperparameter values of every trial, in the order they run."""
    keys = sorted(cfg.space)
    if cfg.algorithm == "grid":
        grid = itertools.product(*(grid_values(cfg.space[k], cfg.grid_points) for k in keys))
        return [dict(zip(keys, values)) for values in itertools.islice(grid, cfg.trials)]
    rng = random.Random(cfg.seed)
    return [{k: sample(cfg.space[k], rng) for k in keys} for _ in range(cfg.trials)]


def as_written(cfg: TuneConfig, values: dict) -> dict:
    """A trial's values as the space writes them: KFP hands every number back as a double, and a module's
    `params` have no declared type to restore an integer from (`cross_layers: 2.0` would reach its code)."""
    def typed(key, value):
        domain = cfg.space.get(key)
        if domain is None or isinstance(value, bool) or not isinstance(value, float):
            return value
        if domain.values:
            return next((v for v in domain.values if v == value), value)
        return int(round(value)) if domain.integer else value

    return {key: typed(key, value) for key, value in values.items()}


def apply(train: TrainConfig, values: dict) -> TrainConfig:
    """The train config with a trial's values set, checked as `--set train.<key>=<value>` would be."""
    plain = {"train": config_lib.to_plain(train)}
    for key, value in values.items():
        node = plain["train"]
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    updated = config_lib.from_plain(config_lib.RunConfig, plain).train
    updated.validate()
    return updated


def hparams(cfg: TuneConfig) -> dict[str, hp.HParam]:
    """The search space as TensorBoard HParams (Discrete, IntInterval, RealInterval)."""
    out = {}
    for key, d in sorted(cfg.space.items()):
        if d.values:
            domain = hp.Discrete(list(d.values))
        elif d.integer:
            domain = hp.IntInterval(int(d.min), int(d.max))
        else:
            domain = hp.RealInterval(float(d.min), float(d.max))
        out[key] = hp.HParam(key, domain)
    return out
