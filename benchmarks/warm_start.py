"""What a warm start buys on the retraining example, measured in one run.

    .venv/bin/python benchmarks/warm_start.py [--epochs 12]

Day 1 of the churn example (components/data/churn.py) trains a model from
fresh weights; day 2 (the same distribution, new rows) is then trained twice
with the same config and seed: cold (fresh weights) and warm (from day 1's
model, `train.warm_start`). Printed side by side: the cold run's final
validation accuracy, and the epochs and seconds each run took to first reach
it. The figures end as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def reach(history: list[float], target: float) -> int | None:
    """The first epoch (1-based) whose validation accuracy reaches `target`."""
    return next((i + 1 for i, value in enumerate(history) if value >= target - 1e-9), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=12)
    args = parser.parse_args()

    from components.common.config import IngestConfig, ModelConfig, TensorBoardConfig, TrainConfig
    from components.data import RETRAINING_DAYS, churn
    from components.ingest import run as ingest
    from components.train import run as train

    quiet = TensorBoardConfig(profile_batch=(), histogram_freq=0, write_graph=False, confusion_matrix=False,
                              sample_images=0)
    cfg = TrainConfig(epochs=args.epochs, batch_size=64, learning_rate=0.01, tensorboard=quiet,
                      model=ModelConfig(api="functional", hidden_units=(16,), embedding_dim=0, dropout=0.0))
    with tempfile.TemporaryDirectory() as tmp:
        examples = {}
        for day in RETRAINING_DAYS[:2]:
            source = churn.write_day(f"{tmp}/data", day)
            examples[day] = f"{tmp}/examples-{day}"
            ingest(IngestConfig(source=str(source), label="churned", key="customer_id", drop=("customer_id",),
                                shards=1), examples[day])
        first, second = RETRAINING_DAYS[:2]
        train(cfg, examples[first], f"{tmp}/day1")
        runs = {}
        for name, start in (("cold", "none"), ("warm", f"{tmp}/day1/model.keras")):
            began = time.perf_counter()
            result = train(TrainConfig(**{**cfg.__dict__, "warm_start": start}), examples[second], f"{tmp}/{name}")
            seconds = time.perf_counter() - began
            history = json.loads(Path(f"{tmp}/{name}/history.json").read_text())["val_accuracy"]
            runs[name] = {"seconds": seconds, "epochs": result.epochs, "val_accuracy": history}
    target = runs["cold"]["val_accuracy"][-1]
    figures = {"target_val_accuracy": target, "epochs": args.epochs}
    for name, run in runs.items():
        epochs = reach(run["val_accuracy"], target)
        per_epoch = run["seconds"] / run["epochs"]
        figures[name] = {"epochs_to_target": epochs, "seconds_to_target": epochs * per_epoch if epochs else None,
                         "first_epoch_val_accuracy": run["val_accuracy"][0],
                         "final_val_accuracy": run["val_accuracy"][-1]}
        print(f"{name}: reaches {target:.4f} at epoch {epochs} (~{figures[name]['seconds_to_target'] or 0:.1f} s); "
              f"first epoch {run['val_accuracy'][0]:.4f}, last {run['val_accuracy'][-1]:.4f}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
