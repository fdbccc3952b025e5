"""Model folders with version placeholders: the registry checks only that `<version>/saved_model.pb` is there."""

import subprocess
import sys
from pathlib import Path

import pytest

from components.common.registry import Evaluation, Lineage
from tests.conftest import ROOT

# Where a script run by `at_once` waits for the others: it says it is ready, then waits for the word to go.
GATE = "print('ready', flush=True); sys.stdin.readline()"


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


def at_once(script: str, arguments: list[list[str]]) -> list[str]:
    """Runs `script` (Python that passes `GATE` once it has imported and opened what it needs) in one process per
    argument list, lets them all through the gate together and returns what each printed after it; each must
    exit 0."""
    processes = [subprocess.Popen([sys.executable, "-c", script, *args], cwd=ROOT, text=True, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE) for args in arguments]
    for process in processes:
        assert process.stdout.readline() == "ready\n", "a process ended before it reached the gate"
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert [process.returncode for process in processes] == [0] * len(processes)
    return outputs
