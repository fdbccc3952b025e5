"""What a finished local run made, read back from its folder, as the lines `tfpipe run` prints.

kfp.local leaves `<run>/<task>/executor_output.json` (each artifact's metadata:
the ops record their step's time there) next to the artifacts themselves.
"""

from __future__ import annotations

import json
from pathlib import Path

STEPS = ("ingest", "train", "evaluate", "export", "serve")


def metadata(run_dir: Path, task: str) -> dict | None:
    """Every output artifact's metadata of one task, merged, or None if the task did not run."""
    path = run_dir / task / "executor_output.json"
    if not path.exists():
        return None
    outputs = json.loads(path.read_text()).get("artifacts", {})
    merged = {}
    for artifact in outputs.values():
        for item in artifact.get("artifacts", []):
            merged.update(item.get("metadata", {}))
    return merged


def inputs_of(run_dir: Path) -> tuple[Path, Path, int | None]:
    """(examples, model, exported version) of a run, following cached steps to where they ran."""
    evaluated = metadata(run_dir, "evaluate") or {}
    exported = metadata(run_dir, "export") or {}
    version = exported.get("version")
    return (Path(evaluated.get("examples_dir", run_dir / "ingest" / "examples")),
            Path(evaluated.get("model_dir", run_dir / "train" / "model")), int(version) if version else None)


def lines(run_dir: Path, alone: bool = False) -> list[str]:
    """The summary; `alone` for one step run on an earlier run's outputs (`tfpipe run --step`)."""
    from components.evaluate.metrics import headline, scalars

    steps = {task: metadata(run_dir, task) for task in STEPS}
    ran = {task: m for task, m in steps.items() if m is not None}
    total = sum(m.get("seconds", 0.0) for m in ran.values()) or 1.0
    out = [f"run {run_dir}"]
    for task in STEPS:
        if task in ran:
            seconds = ran[task].get("seconds", 0.0)
            out.append(f"  {task:<9} {seconds:6.1f} s  ({seconds / total:.0%})")
        elif task in ("ingest", "train") and "evaluate" in ran and not alone:
            out.append(f"  {task:<9} cached (outputs of an earlier run with the same config and data)")
    examples, model, _ = inputs_of(run_dir)
    evaluation = run_dir / "evaluate" / "evaluation"
    tuned = run_dir / "pick-best" / "executor_output.json"
    if tuned.exists():
        best = json.loads(tuned.read_text())["parameterValues"]["Output"]
        trials = len(list(run_dir.glob("for-loop-*/run-trial")))
        out.append(f"  tuned     best of {trials} trials: {best} ({run_dir / 'pick-best' / 'table'}; "
                   f"HParams: tfpipe tensorboard {run_dir})")
    if "ingest" in ran:
        rows = ran["ingest"]
        out.append(f"  rows      {int(rows['rows']):,} (train {int(rows.get('train', 0)):,}, eval "
                   f"{int(rows.get('eval', 0)):,}, test {int(rows.get('test', 0)):,}), {int(rows['rejected']):,} rejected")
    if "evaluate" in ran:
        document = json.loads((evaluation / "metrics.json").read_text())
        blessing = json.loads((evaluation / "blessing.json").read_text())
        out.append(f"  test      {headline(scalars(document['overall']))} ({document['overall']['count']:,} examples)")
        out.append(f"  blessed   {'yes' if blessing['blessed'] else 'NO'} ({evaluation / 'blessing.json'})")
        reports = [examples / "stats.html", evaluation / "report.html", run_dir / "whatif" / "analysis" / "report.html"]
        out.append(f"  reports   {', '.join(str(r) for r in reports if r.exists())}")
    out.append(f"  model     {model / 'model.keras'}")
    if "export" in ran:
        out.append(f"  serving   {ran['export']['path']} (version {int(ran['export']['version'])})")
    elif "evaluate" in ran and not alone:
        out.append("  serving   not exported: the model was not blessed")
    if "serve" in ran:
        deploy = json.loads((run_dir / "serve" / "deployment" / "deploy.json").read_text())
        out.append(f"  deployed  {_deployment(deploy)}")
    if "export" in ran:
        home = Path(ran["export"]["path"]).parent
        out.append(f"  what-if   tfpipe whatif serve --model-base {home} --examples {examples}")
    out.append(f"  logs      tfpipe tensorboard {model}")
    return out


def _deployment(record: dict) -> str:
    if not record["deployed"]:
        return f"NO: {record['reason']}"
    if record["target"] == "local":
        return f"{record['path']}; serve it with: {record['serve']}"
    return f"{record['target']}: {record.get('manifest') or record.get('endpoint')}"
