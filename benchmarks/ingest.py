"""Ingest speed and memory against a naive one-process loop, measured in one run, on both engines.

    .venv/bin/python benchmarks/ingest.py [--rows 200000] [--scale 10] [--rounds 3] [--no-beam]

Generates a fixed CSV (rows x 20 columns: 15 float, 5 categorical string,
seed 0), ingests it with tfpipe's local engine and, in the same process,
runs the naive baseline: csv.reader, one `tf.train.Example` built per row in
Python, one GZIP TFRecord file. Then the engines side by side as a user runs
them: `--rounds` rounds, each ingesting the file once per engine in a fresh
process (the local engine, and the Beam engine on its default multi-process
runner, importing Beam and starting its workers included), the engines in
turn so that a busy moment of the machine falls on both alike; their median
rows/s, the spread, and the ratio of the medians. Beam's runner on threads
in this process is shown beside. Then a file `--scale` times larger in a
fresh process per engine, for peak RSS: memory must not grow with the input.
For Beam, the launching process, its largest worker process and all of them
together (read from /proc while it runs). Targets on a 2-core machine:
local >= 50,000 rows/s end to end and >= 2.5x the baseline; Beam's median
>= 0.4x local's.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FLOATS, STRINGS = 15, 5
CATEGORIES = [f"cat_{i:02d}" for i in range(40)]


def generate(path: Path, rows: int, seed: int = 0) -> Path:
    """Writes the benchmark CSV in chunks, so that a 2,000,000-row file costs little memory."""
    rng = np.random.default_rng(seed)
    header = [f"f{i}" for i in range(FLOATS)] + [f"s{i}" for i in range(STRINGS)] + ["label"]
    with open(path, "w", newline="") as f:
        f.write(",".join(header) + "\n")
        for start in range(0, rows, 100_000):
            n = min(100_000, rows - start)
            floats = rng.normal(size=(n, FLOATS)).round(5)
            cats = rng.integers(0, len(CATEGORIES), size=(n, STRINGS))
            labels = rng.integers(0, 2, size=n)
            lines = (
                ",".join(map(repr, fl.tolist())) + "," + ",".join(CATEGORIES[c] for c in ct) + f",{lb}\n"
                for fl, ct, lb in zip(floats, cats, labels)
            )
            f.writelines(lines)
    return path


def naive(csv_path: Path, out: Path) -> float:
    """The chapter-era way: a Python loop building one Example per row into one GZIP file."""
    import tensorflow as tf

    start = time.perf_counter()
    rows = 0
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    with open(csv_path, newline="") as f, tf.io.TFRecordWriter(str(out), options) as writer:
        reader = csv.reader(f)
        header = next(reader)
        for row in reader:
            feature = {}
            for name, value in zip(header, row):
                if name.startswith("f"):
                    feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))
                elif name == "label":
                    feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))
                else:
                    feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
            rows += 1
    return rows / (time.perf_counter() - start)


def tfpipe_ingest(csv_path: Path, out: Path, engine: str = "local", *beam_options: str) -> tuple[float, float]:
    """rows/s and CPU seconds per wall second (how many cores were busy, this process and its waited-for workers)."""
    from components.common.config import BeamConfig, IngestConfig
    from components.ingest import run

    cpu0, wall0 = os.times(), time.perf_counter()
    result = run(IngestConfig(source=str(csv_path), label="label", engine=engine), str(out),
                 BeamConfig(options=beam_options))
    cpu1, wall = os.times(), time.perf_counter() - wall0
    busy = sum(b - a for a, b in zip(cpu0[:4], cpu1[:4])) / wall
    return result.rows_per_second, busy


def peak_rss_child(csv_path: Path, out: Path, engine: str = "local") -> dict[str, int]:
    """Peak RSS (MiB) of a fresh process that ingests `csv_path`, of its largest worker process (Beam) and of all
    of them together, read from /proc while it runs; and its rows/s.

    Not `getrusage`: Linux keeps ru_maxrss across exec, so a process forked from one that had loaded TensorFlow
    reports at least that one's size. /proc's VmHWM is each process's own peak.
    """
    code = (
        "import sys; sys.path.insert(0, sys.argv[3]);"
        "from components.common.config import IngestConfig; from components.ingest import run;"
        "print(round(run(IngestConfig(source=sys.argv[1], label='label', engine=sys.argv[4]), sys.argv[2])"
        ".rows_per_second))"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen([sys.executable, "-c", code, str(csv_path), str(out), str(ROOT), engine],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    peaks: dict[int, int] = {}
    together = 0
    while proc.poll() is None:
        now = {pid: _memory_kib(pid) for pid in _process_tree(proc.pid)}
        for pid, (_, peak) in now.items():
            peaks[pid] = max(peaks.get(pid, 0), peak)
        together = max(together, sum(rss for rss, _ in now.values()))
        time.sleep(0.25)
    if proc.returncode:
        raise RuntimeError(f"the {engine} ingest of {csv_path} exited {proc.returncode}")
    workers = [peak for pid, peak in peaks.items() if pid != proc.pid]
    figures = {"process": round(peaks[proc.pid] / 1024), "rows_per_s": int(proc.stdout.read().split()[-1])}
    if workers:
        figures |= {"largest_worker": round(max(workers) / 1024), "all_processes": round(together / 1024)}
    return figures


def _process_tree(root: int) -> list[int]:
    """`root` and every process below it, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                parent = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def _memory_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB; zeros once it has gone."""
    try:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    except OSError:
        return 0, 0
    return tuple(int(fields.get(k, "0 kB").split()[0]) for k in ("VmRSS", "VmHWM"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--scale", type=int, default=10, help="size of the memory check's large file (0 skips it)")
    parser.add_argument("--rounds", type=int, default=3, help="fresh-process runs of each engine, in turn")
    parser.add_argument("--no-beam", dest="beam", action="store_false", help="leave the Beam engine out")
    args = parser.parse_args()
    engines = ("local", "beam") if args.beam else ("local",)
    with tempfile.TemporaryDirectory(prefix="tfpipe-bench-") as tmp:
        tmp = Path(tmp)
        data = generate(tmp / "bench.csv", args.rows)
        ours, busy = tfpipe_ingest(data, tmp / "ours")
        base = naive(data, tmp / "naive.tfrecord.gz")
        report = {
            "rows": args.rows,
            "tfpipe_rows_per_s": round(ours),
            "naive_rows_per_s": round(base),
            "ratio": round(ours / base, 2),
            "cores_busy": round(busy, 2),
        }
        if args.beam:
            runs = {engine: [] for engine in engines}
            for round_ in range(args.rounds):
                for engine in engines:
                    runs[engine].append(peak_rss_child(data, tmp / f"round-{round_}-{engine}", engine))
            medians = {engine: statistics.median(r["rows_per_s"] for r in found) for engine, found in runs.items()}
            report["fresh_processes"] = {
                engine: {"median_rows_per_s": round(medians[engine]),
                         "each": [r["rows_per_s"] for r in found]} for engine, found in runs.items()}
            report["beam_vs_local"] = round(medians["beam"] / medians["local"], 2)
            # The same runner on threads in this process: no worker processes to start.
            threads, _ = tfpipe_ingest(data, tmp / "beam-threads", "beam", "--direct_running_mode=multi_threading")
            report["beam_threads"] = {"rows_per_s": round(threads), "vs_local_in_process": round(threads / ours, 2)}
        if args.scale:
            big = generate(tmp / "big.csv", args.rows * args.scale, seed=1)
            for engine in engines:
                key = "peak_rss_mib" if engine == "local" else "beam_peak_rss_mib"  # with the rows/s of that run
                small = runs[engine][0] if args.beam else peak_rss_child(data, tmp / f"rss-small-{engine}", engine)
                report[key] = {
                    f"{args.rows:,} rows": small,
                    f"{args.rows * args.scale:,} rows": peak_rss_child(big, tmp / f"rss-big-{engine}", engine),
                }
        ok = ours >= 50_000 and ours / base >= 2.5
        print(f"targets (>= 50,000 rows/s and >= 2.5x naive): {'met' if ok else 'NOT met'}")
        if args.beam:
            print(f"Beam target (median >= 0.4x local's, fresh processes): "
                  f"{'met' if report['beam_vs_local'] >= 0.4 else 'NOT met'}")
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
