"""Model folders with version placeholders: the registry checks only that `<version>/saved_model.pb` is there."""

from pathlib import Path

import pytest

from components.common.registry import Evaluation, Lineage


def add_versions(home: Path, *versions: int) -> Path:
    for version in versions:
        (home / str(version)).mkdir(parents=True, exist_ok=True)
        (home / str(version) / "saved_model.pb").write_bytes(b"placeholder")
    return home


def blessed(accuracy: float, model: str = "/runs/train/model.keras") -> Evaluation:
    return Evaluation("blessed", {"accuracy": accuracy, "loss": 1 - accuracy}, model, "classification",
                      "/runs/evaluate")


LINEAGE = Lineage(data_span="data/span-3", source_fingerprint="ab12", run_id="run-7", config_hash="c0ffee")


@pytest.fixture
def home(tmp_path) -> Path:
    """`<base>/penguins` with versions 1, 2 and 3 on disk, none registered."""
    return add_versions(tmp_path / "serving" / "penguins", 1, 2, 3)
