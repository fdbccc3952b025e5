"""Validation cost against ingest cost, measured in one run.

    .venv/bin/python benchmarks/validate.py [--rows 200000] [--repeats 5]

Generates benchmarks/ingest.py's fixed CSV (rows x 20 columns: 15 float, 5
categorical string) twice, seeds 0 and 1, ingests both with tfpipe (the first
is the baseline, the second the new data), then validates the new output
against the baseline. Validation reads only schema and statistics, so it
should cost a sliver of ingesting the rows: the target is under 5% of the
new data's ingest time. The first validation in the process is the one that
counts (it pays for its imports and proto conversions); the median of
`--repeats` more is printed beside it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.ingest import generate  # noqa: E402 (after the path is set)

TARGET = 0.05


def timed(function, *args) -> tuple[float, object]:
    start = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from components.common.config import IngestConfig, ValidateConfig
    from components.ingest import run as ingest
    from components.validate import run as validate

    with tempfile.TemporaryDirectory(prefix="tfpipe-bench-") as tmp:
        tmp = Path(tmp)
        outputs = {}
        seconds = {}
        for name, seed in (("baseline", 0), ("new", 1)):
            data = generate(tmp / f"{name}.csv", args.rows, seed=seed)
            seconds[name], _ = timed(ingest, IngestConfig(source=str(data), label="label"), str(tmp / name))
            outputs[name] = str(tmp / name)
            print(f"ingest {name}: {args.rows:,} rows x 20 columns in {seconds[name]:.2f} s")
        first, result = timed(validate, ValidateConfig(), outputs["new"], outputs["baseline"], str(tmp / "v"))
        again = [timed(validate, ValidateConfig(), outputs["new"], outputs["baseline"], str(tmp / "v"))[0]
                 for _ in range(args.repeats)]
        print(f"validate new against baseline: {first * 1000:.1f} ms first, {statistics.median(again) * 1000:.1f} ms "
              f"median of {args.repeats} more; {result.anomalies.headline()}")
        ratio = first / seconds["new"]
        print(f"validation / ingest: {ratio:.2%} (target < {TARGET:.0%}): {'met' if ratio < TARGET else 'NOT met'}")
        print(json.dumps({
            "rows": args.rows,
            "columns": 20,
            "ingest_baseline_s": round(seconds["baseline"], 3),
            "ingest_new_s": round(seconds["new"], 3),
            "validate_first_ms": round(first * 1000, 2),
            "validate_median_ms": round(statistics.median(again) * 1000, 2),
            "validate_over_ingest": round(ratio, 5),
            "validated": result.validated,
            "findings": len(result.anomalies.findings),
        }, indent=2))


if __name__ == "__main__":
    main()
