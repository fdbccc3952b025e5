"""The validate step: new examples' schema and statistics against a baseline's, an anomalies record, a gate.

Both sides are ingest output folders, read through `DataMetadata` (schema.pbtxt
+ stats.pb, else schema.json + stats.json); rows are never read, so validating
costs milliseconds whatever the data's size. Every input problem is found
before anything is written, and `out` appears whole or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.common import io
from components.common.config import ValidateConfig
from components.common.errors import TfpipeError
from components.common.metadata import DataMetadata
from components.validate import report
from components.validate.anomalies import Anomalies
from components.validate.checks import Sides, compare
from components.validate.errors import ValidateError
from components.validate.profile import Profile, profiles


@dataclass(frozen=True)
class ValidateResult:
    out: str
    anomalies: Anomalies

    @property
    def validated(self) -> bool:
        return self.anomalies.validated


def run(cfg: ValidateConfig, examples: str, baseline: str | None, out: str) -> ValidateResult:
    """Validates the ingest output `examples` against the ingest output `baseline` (None or "": a first run,
    which passes) into folder `out`: anomalies.json, report.html, report.md."""
    cfg.validate()
    new, new_profiles = _read("examples", examples)
    sides = _sides(baseline, examples, new, new_profiles) if baseline else None
    _check_thresholds(cfg, set(new_profiles) | set(sides.baseline if sides else ()))
    anomalies = Anomalies(examples, baseline or "", compare(sides, cfg) if sides else ())
    with io.staged_dir(out) as stage:
        io.write_text(f"{stage}/anomalies.json", anomalies.to_json() + "\n")
        io.write_text(f"{stage}/report.html", report.html(anomalies, sides))
        io.write_text(f"{stage}/report.md", report.markdown(anomalies))
    return ValidateResult(out, anomalies)


def _sides(baseline: str, examples: str, new: DataMetadata, new_profiles: dict[str, Profile]) -> Sides:
    base, base_profiles = _read("baseline", baseline)
    if not set(base_profiles) & set(new_profiles):
        raise ValidateError(f"baseline {baseline} and examples {examples} share no feature: statistics of another "
                            f"data set? (baseline: {sorted(base_profiles)}; examples: {sorted(new_profiles)})")
    return Sides(base_profiles, new_profiles, base.label, base.split_rows, new.split_rows)


def _check_thresholds(cfg: ValidateConfig, known: set[str]) -> None:
    unknown = sorted(set(cfg.drift.features) - known)
    if unknown:
        raise ValidateError(f"validation.drift.features.{unknown[0]}: no such feature in the examples or the "
                            f"baseline; features are {sorted(known)}")


def _read(role: str, folder: str) -> tuple[DataMetadata, dict[str, Profile]]:
    """A side's metadata and profiles, or an error that says which side and why it cannot be read."""
    try:
        meta = DataMetadata.read(folder)
        return meta, profiles(meta)
    except TfpipeError as e:
        raise ValidateError(f"{role}: {e}") from None
