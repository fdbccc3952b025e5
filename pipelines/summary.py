"""What a finished local run made, read back from its folder, as the lines `tfpipe run` prints.

Each op leaves its step's record (pipelines.records) in `<run>/<task>/executor_output.json`,
next to the artifacts themselves; the serve step's `Deployment` is its own typed record, in
`deploy.json`. This reads those records, never the steps' files by key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from components.serve.deployment import Deployment
from pipelines.records import (
    EvaluateRecord,
    ExportRecord,
    IngestRecord,
    MonitorRecord,
    PredictRecord,
    RetrainRecord,
    ServeRecord,
    StepRecord,
    TrainRecord,
    ValidateRecord,
    WhatIfRecord,
    returned,
)

STEPS: tuple[type[StepRecord], ...] = (IngestRecord, ValidateRecord, TrainRecord, EvaluateRecord, WhatIfRecord,
                                       ExportRecord, ServeRecord)


@dataclass(frozen=True)
class RunOutputs:
    """Where a run's outputs are, following cached steps to the runs where they ran."""

    examples: Path
    model: Path
    evaluation: Path  # evaluate always runs, so its output is in the run itself
    version: int | None  # the version exported, if one was


def outputs_of(run_dir: Path) -> RunOutputs:
    evaluated, exported = EvaluateRecord.read(run_dir), ExportRecord.read(run_dir)
    return RunOutputs(Path(evaluated.examples_dir) if evaluated else run_dir / "ingest" / "examples",
                      Path(evaluated.model_dir) if evaluated else run_dir / "train" / "model",
                      run_dir / EvaluateRecord.TASK / EvaluateRecord.ARTIFACT, exported.version if exported else None)


def lines(run_dir: Path, alone: bool = False) -> list[str]:
    """The summary; `alone` for one step run on an earlier run's outputs (`tfpipe run --step`)."""
    ingested, evaluated, exported = IngestRecord.read(run_dir), EvaluateRecord.read(run_dir), ExportRecord.read(run_dir)
    ran = {record.TASK: done for record in STEPS if (done := record.read(run_dir)) is not None}
    total = sum(done.seconds for done in ran.values()) or 1.0
    out = [f"run {run_dir}"]
    for record in STEPS:
        if record.TASK in ran:
            seconds = ran[record.TASK].seconds
            out.append(f"  {record.TASK:<9} {seconds:6.1f} s  ({seconds / total:.0%})")
        elif record in (IngestRecord, TrainRecord) and evaluated and not alone:
            out.append(f"  {record.TASK:<9} cached (outputs of an earlier run with the same config and data)")
    outputs = outputs_of(run_dir)
    examples, model, evaluation = outputs.examples, outputs.model, outputs.evaluation
    best = returned(run_dir, "pick-best")
    if best is not None:
        trials = len(list(run_dir.glob("for-loop-*/run-trial")))
        out.append(f"  tuned     best of {trials} trials: {best} "
                   f"({run_dir / 'pick-best' / 'table'}; HParams: tfpipe tensorboard {run_dir})")
    if ingested:
        splits = ", ".join(f"{split} {rows:,}" for split, rows in ingested.splits.items())
        out.append(f"  rows      {ingested.rows:,} ({splits}), {ingested.rejected:,} rejected")
        if ingested.job_id:
            out.append(f"  dataflow  job {ingested.job_id}: {ingested.job_url}")
    out += validation_lines(run_dir, ran.get(ValidateRecord.TASK), "training")
    if evaluated:
        out.append(f"  test      {evaluated.headline} ({int(evaluated.metrics['count']):,} examples)")
        verdict = {"blessed": "yes", "unchecked": "UNCHECKED (no evaluate.thresholds: nothing was checked)"}
        out.append(f"  blessed   {verdict.get(evaluated.verdict, 'NO')} ({evaluation / 'blessing.json'})")
        reports = [examples / "stats.html", evaluation / "report.html", run_dir / "whatif" / "analysis" / "report.html"]
        out.append(f"  reports   {', '.join(str(r) for r in reports if r.exists())}")
    analysed = ran.get(WhatIfRecord.TASK)
    if analysed is not None and analysed.compared_with:
        out.append(f"  compared  with the baseline ({analysed.compared_with}): the what-if report opens with the "
                   "verdict")
    if evaluated or TrainRecord.TASK in ran:
        out.append(f"  model     {model / 'model.keras'}")
    if exported:
        out.append(f"  serving   {exported.path} (version {exported.version})")
    elif evaluated and not alone:
        out.append("  serving   not exported: " + ("nothing was checked (no evaluate.thresholds)"
                                                  if evaluated.verdict == "unchecked" else "the model was not blessed"))
    if ServeRecord.TASK in ran:
        deployed = Deployment.from_json((run_dir / "serve" / "deployment" / "deploy.json").read_text())
        out.append(f"  deployed  {_deployment(deployed)}")
    if exported:
        out.append(f"  what-if   tfpipe whatif serve --model-base {Path(exported.path).parent} --examples {examples}")
    out.append(f"  logs      tfpipe tensorboard {run_dir}")
    return out


def monitoring_lines(run_dir: Path) -> list[str]:
    """The summary of a monitoring run: what the requests showed, and the training run it started, if any."""
    monitored, retrained = MonitorRecord.read(run_dir), RetrainRecord.read(run_dir)
    out = [f"run {run_dir}"]
    if monitored is None:
        return [*out, "  monitor   did not finish: see the run's pipeline.log"]
    out += [f"  monitor   {monitored.seconds:6.1f} s  {monitored.headline}",
            f"  against   {monitored.training}",
            f"  report    {run_dir / MonitorRecord.TASK / 'report'}",
            f"  findings  {run_dir / MonitorRecord.TASK / MonitorRecord.ARTIFACT / 'findings.json'}"]
    if retrained:
        out.append(f"  retrained {retrained.started} ({retrained.seconds:.1f} s)")
    elif monitored.crossed:
        out.append("  retrained no: monitor.retrain_on does not ask for it")
    return out


def validation_lines(run_dir: Path, validated: ValidateRecord | None, stopped_before: str) -> list[str]:
    """What the data gate said, against which baseline, and where its report is when it stopped the run."""
    if not validated:
        return []
    against = f" (against {validated.baseline})" if validated.baseline else ""
    lines = [f"  data      {validated.headline}{against}"]
    if not validated.validated:
        lines.append(f"  stopped   before {stopped_before}; the report: "
                     f"{run_dir / ValidateRecord.TASK / ValidateRecord.ARTIFACT / 'report.html'}")
    return lines


def batch_lines(run_dir: Path) -> list[str]:
    """The summary of a batch scoring run: the span read, its validation, and the predictions written."""
    ingested, validated, scored = IngestRecord.read(run_dir), ValidateRecord.read(run_dir), PredictRecord.read(run_dir)
    out = [f"run {run_dir}"]
    if ingested:
        out.append(f"  rows      {ingested.rows:,} ingested, {ingested.rejected:,} rejected")
    out += validation_lines(run_dir, validated, "scoring")
    if scored:
        out += [f"  predict   {scored.seconds:6.1f} s  {scored.rows:,} rows scored, {scored.rejected:,} rejected, by "
                f"{scored.model} ({scored.alias})",
                f"  out       {scored.out}" + (f" (load job {scored.load_job})" if scored.load_job else
                                               f" ({scored.files} Parquet files)"),
                f"  report    {scored.report}"]
    elif not ingested or (validated and validated.validated):
        out.append("  predict   did not finish: see the run's pipeline.log")
    return out


def _deployment(deployed: Deployment) -> str:
    if not deployed.deployed:
        return f"NO: {deployed.reason}"
    if deployed.target == "local":
        return f"{deployed.path}; serve it with: {deployed.serve}"
    watched = f"; monitored by {deployed.monitoring_job}" if deployed.monitoring_job else ""
    return f"{deployed.target}: {deployed.manifest or deployed.endpoint}{watched}"
