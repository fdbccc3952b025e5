"""Where one process of a train run writes, as a typed record every part of the step shares."""

from __future__ import annotations

from dataclasses import dataclass

from components.common import io
from components.train import strategy as strategy_lib


@dataclass(frozen=True)
class TrainPaths:
    """Where one process of a run writes: the chief into `out`, any other worker into a temporary folder of its own
    (TensorFlow's pattern for multi-worker saving); the backup is shared, so every worker resumes from one state."""

    worker: str  # this process's folder: `out` itself on the chief
    logs: str
    checkpoints: str
    backup: str
    csv: str

    @classmethod
    def of(cls, out: str) -> TrainPaths:
        base = strategy_lib.output_dir(out, "train")
        return cls(worker=base, logs=f"{out}/logs" if strategy_lib.is_chief() else f"{base}/logs",
                   checkpoints=f"{base}/checkpoints", backup=f"{out}/backup", csv=f"{base}/history.csv")

    def prepare(self) -> None:
        io.makedirs(self.logs)
        io.makedirs(self.checkpoints)
        if not io.exists(self.backup) and io.exists(self.csv):
            io.gfile().remove(self.csv)  # a finished earlier run's log; a resumed run appends to its own
