"""Soak: consecutive 2-worker MultiWorkerMirroredStrategy runs on busy cores, all of which must pass.

    .venv/bin/python benchmarks/workers_soak.py [--runs 20] [--busy 2] [--epochs 2] [--examples DIR] [--out DIR]

Each run is the command people type,

    tfpipe train --config pipelines/configs/digits.yaml --examples DIR --out OUT --workers 2 --set train.epochs=2

while `--busy` processes spin on the cores (each stops by itself after `--busy-seconds`, and all are
stopped when the soak ends), so that the workers' collectives run short of CPU, as on a shared machine.
Without `--examples` the digits are written and ingested first. Runs and their logs go under `--out`
(default: a temporary folder, removed at the end); a failed run's last log lines are printed.

A run passes when it exits 0 with a model and a history of every epoch. The launcher restarts both
workers when one crashes; the soak counts those restarts (one `started 2 workers` line per attempt) and
prints the launcher's line for each, so a pass that needed a restart shows. It prints one line per run,
then the totals: runs, passes, runs that needed a restart, restarts, and seconds per run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TFPIPE = str(Path(sys.executable).with_name("tfpipe"))
CONFIG = ROOT / "pipelines" / "configs" / "digits.yaml"


@dataclass(frozen=True)
class Run:
    number: int
    code: int
    seconds: float
    attempts: int  # groups of workers started: 1 when no worker crashed
    complete: bool  # a model and a history of every epoch
    restarts: tuple[str, ...]  # the launcher's line for each restart

    @property
    def passed(self) -> bool:
        return self.code == 0 and self.complete


def examples(folder: Path) -> str:
    """The digits, written and ingested with the digits config, as `make run` does."""
    run_tfpipe(["example-data", "--out", str(folder / "data")])
    out = folder / "examples"
    run_tfpipe(["ingest", "--config", str(CONFIG), "--out", str(out),
                "--set", f"ingest.source={folder / 'data' / 'digits'}"])
    return str(out)


def run_tfpipe(args: list[str]) -> None:
    """A preparation step, quiet unless it fails."""
    done = subprocess.run([TFPIPE, *args], capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"tfpipe {' '.join(args)} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")


def start_busy(count: int, seconds: float) -> list[subprocess.Popen]:
    """Processes that keep a core busy each, and stop by themselves after `seconds` whatever happens here."""
    spin = f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"
    return [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(count)]


def train(number: int, examples_dir: str, folder: Path, epochs: int) -> Run:
    out, log = folder / f"run-{number:02d}", folder / f"run-{number:02d}.log"
    command = [TFPIPE, "train", "--config", str(CONFIG), "--examples", examples_dir, "--out", str(out),
               "--workers", "2", "--set", f"train.epochs={epochs}"]
    start = time.perf_counter()
    with open(log, "w") as f:
        code = subprocess.run(command, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT).returncode
    seconds = time.perf_counter() - start
    lines = log.read_text(errors="replace").splitlines()
    return Run(number, code, seconds, attempts=sum(line.startswith("started 2 workers") for line in lines),
               complete=complete(out, epochs), restarts=tuple(line for line in lines if "restarting all" in line))


def complete(out: Path, epochs: int) -> bool:
    history = out / "history.json"
    if not (out / "model.keras").exists() or not history.exists():
        return False
    return len(json.loads(history.read_text())["loss"]) == epochs


def report(run: Run, folder: Path) -> None:
    verdict = "pass" if run.passed else f"FAIL (exit {run.code}, outputs {'complete' if run.complete else 'missing'})"
    print(f"run {run.number:2d}: {verdict} in {run.seconds:.0f} s, {run.attempts - 1} restart(s)", flush=True)
    for line in run.restarts:
        print(f"        {line}", flush=True)
    if not run.passed:
        tail = (folder / f"run-{run.number:02d}.log").read_text(errors="replace").splitlines()[-40:]
        print("\n".join(f"        | {line}" for line in tail), flush=True)


def summary(runs: list[Run], busy: int) -> None:
    seconds = [r.seconds for r in runs]
    restarted = [r for r in runs if r.attempts > 1]
    print(f"\n{len(runs)} runs of 2 workers with {busy} busy process(es): {sum(r.passed for r in runs)} passed; "
          f"{len(restarted)} needed a restart ({sum(r.attempts - 1 for r in runs)} restarts in all); "
          f"seconds per run: mean {statistics.mean(seconds):.0f}, min {min(seconds):.0f}, max {max(seconds):.0f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--busy", type=int, default=2, help="processes spinning on the cores during the runs")
    parser.add_argument("--busy-seconds", type=float, default=3 * 3600, help="the most a busy process lives")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--examples", help="ingested digits (default: written and ingested here first)")
    parser.add_argument("--out", help="a folder to keep the runs and their logs in (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="workers-soak-") as tmp:
        folder = Path(args.out or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        runs = soak(args, folder, args.examples or examples(folder))
    summary(runs, args.busy)
    return 0 if all(r.passed for r in runs) else 1


def soak(args: argparse.Namespace, folder: Path, examples_dir: str) -> list[Run]:
    busy = start_busy(args.busy, args.busy_seconds)
    runs = []
    try:
        for number in range(1, args.runs + 1):
            runs.append(train(number, examples_dir, folder, args.epochs))
            report(runs[-1], folder)
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    return runs


if __name__ == "__main__":
    sys.exit(main())
