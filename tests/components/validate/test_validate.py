"""Validate on real ingest outputs: what passes, what each kind of anomaly looks like, and bad input."""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from components.common.config import DriftThresholds, SplitRatios, ValidateConfig
from components.common.metadata import DataMetadata
from components.validate import Anomalies, ValidateError, run
from tests.conftest import people_rows

HEADER, _ = people_rows(1)
AGE, INCOME, CITY, LABEL = 1, 2, 3, 4


def people(seed: int = 1, n: int = 600) -> list[list]:
    return people_rows(n, seed=seed)[1]


def changed(rows: list[list], column: int, value) -> list[list]:
    """The rows with `column` replaced by value(row index, old value)."""
    return [[value(i, v) if c == column else v for c, v in enumerate(row)] for i, row in enumerate(rows)]


def findings(result, **match):
    return [f for f in result.anomalies.findings if all(getattr(f, k) == v for k, v in match.items())]


def the(result, **match):
    (found,) = findings(result, **match)
    return found


def test_same_distribution_passes(ingest, baseline, tmp_path):
    new = ingest("same", HEADER, people(seed=1))
    result = run(ValidateConfig(), new, baseline, str(tmp_path / "out"))
    assert result.validated
    assert result.anomalies.headline().startswith("validated")
    assert {f.verdict for f in result.anomalies.findings} == {"pass"}
    drift = findings(result, kind="drift")
    jsd = "jensen_shannon_divergence"
    assert {f.feature: f.statistic for f in drift} == {"id": jsd, "age": jsd, "income": jsd, "city": "l_infinity",
                                                       "label": "l_infinity"}
    written = Anomalies.from_json((tmp_path / "out" / "anomalies.json").read_text())
    assert written == result.anomalies
    assert json.loads((tmp_path / "out" / "anomalies.json").read_text())["validated"] is True
    assert "Data validation: passed" in (tmp_path / "out" / "report.md").read_text()
    assert "<svg" not in (tmp_path / "out" / "report.html").read_text()  # nothing drifted, nothing drawn


def test_a_shifted_number_drifts_and_fails(ingest, baseline, tmp_path):
    new = ingest("richer", HEADER, changed(people(), INCOME, lambda i, v: round(v + 20_000, 2)))
    result = run(ValidateConfig(), new, baseline, str(tmp_path / "out"))
    drift = the(result, kind="drift", feature="income")
    assert drift.statistic == "jensen_shannon_divergence"
    assert drift.measured > 0.3 > drift.threshold == 0.1
    assert drift.verdict == "fail"
    assert not result.validated
    assert result.anomalies.headline() == "NOT validated: income: drift"
    assert the(result, kind="out_of_range", feature="income").verdict == "warn"
    assert all(f.verdict == "pass" for f in findings(result, kind="drift") if f.feature != "income")
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.count("<svg") == 1
    assert "fraction of rows" in page
    assert "income (baseline's quantile bins)" in page
    assert "new examples" in page  # the legend: both distributions in each bin
    assert "Data validation: FAILED" in (tmp_path / "out" / "report.md").read_text()


def test_a_per_feature_threshold_is_honoured(ingest, baseline, tmp_path):
    new = ingest("a-little-richer", HEADER, changed(people(), INCOME, lambda i, v: round(v + 9_000, 2)))
    strict = run(ValidateConfig(), new, baseline, str(tmp_path / "strict"))
    assert the(strict, kind="drift", feature="income").verdict == "fail"
    lenient = ValidateConfig(drift=DriftThresholds(features={"income": 0.5}))
    result = run(lenient, new, baseline, str(tmp_path / "lenient"))
    income = the(result, kind="drift", feature="income")
    assert income.threshold == 0.5
    assert income.verdict == "pass"
    assert result.validated
    assert the(result, kind="drift", feature="age").threshold == 0.1


def test_a_new_category_is_outside_the_domain(ingest, baseline, tmp_path):
    new = ingest("rome", HEADER, changed(people(), CITY, lambda i, v: "Rome" if i % 5 == 0 else v))
    result = run(ValidateConfig(), new, baseline, str(tmp_path / "out"))
    domain = the(result, kind="out_of_domain", feature="city")
    assert domain.measured == pytest.approx(0.2)
    assert domain.threshold == 0.0
    assert domain.verdict == "warn"
    assert domain.message == "city: 20.0% of rows hold values outside the baseline's 4: 'Rome' (allowed outside: 0.0%)."
    drift = the(result, kind="drift", feature="city")
    assert drift.statistic == "l_infinity"
    assert drift.measured == pytest.approx(0.2)
    assert drift.verdict == "fail"
    assert "'Rome'" in drift.message


def test_a_renamed_column_is_one_feature_missing_and_one_new(ingest, baseline, tmp_path):
    renamed = ["salary" if h == "income" else h for h in HEADER]
    new = ingest("renamed", renamed, people())
    result = run(ValidateConfig(), new, baseline, str(tmp_path / "out"))
    assert the(result, kind="missing_feature").feature == "income"
    assert the(result, kind="new_feature").feature == "salary"
    assert [f.subject for f in result.anomalies.failures] == ["income"]
    assert [f.verdict for f in findings(result, kind="new_feature")] == ["warn"]


def test_type_change_missing_values_unseen_label_and_empty_split(ingest, baseline, tmp_path):
    rows = changed(people(), AGE, lambda i, v: v + 0.5)                      # ages become floats
    rows = changed(rows, CITY, lambda i, v: "" if i % 2 else v)             # half the cities missing
    rows = changed(rows, LABEL, lambda i, v: 2 if i % 10 == 0 else v)       # a class the baseline lacks
    new = ingest("broken", HEADER, rows, split=SplitRatios(train=0.9, eval=0.1, test=0.0))
    result = run(ValidateConfig(), new, baseline, str(tmp_path / "out"))
    assert the(result, kind="type_change").message == "age: type INT in the baseline, FLOAT now."
    missing = the(result, kind="missing_fraction", feature="city")
    assert missing.measured == pytest.approx(0.5)
    assert missing.threshold == pytest.approx(0.05)
    label = the(result, kind="new_label_class")
    assert label.measured == pytest.approx(0.1)
    assert "'2'" in label.message
    assert the(result, kind="empty_split").split == "test"
    failing = {(f.subject, f.kind) for f in result.anomalies.failures}
    assert {("age", "type_change"), ("city", "missing_fraction"), ("label", "new_label_class"),
            ("split test", "empty_split")} <= failing
    assert not findings(result, feature="age", kind="drift")  # a changed type is not compared further


def test_which_kinds_fail_is_configured(ingest, baseline, tmp_path):
    new = ingest("rome-only-warns", HEADER, changed(people(), CITY, lambda i, v: "Rome" if i % 5 == 0 else v))
    result = run(ValidateConfig(fail=("out_of_domain",)), new, baseline, str(tmp_path / "out"))
    assert the(result, kind="out_of_domain").verdict == "fail"
    assert the(result, kind="drift", feature="city").verdict == "warn"


def test_the_protos_alone_validate_the_same(ingest, baseline, tmp_path):
    new = ingest("richer-again", HEADER, changed(people(), INCOME, lambda i, v: round(v + 20_000, 2)))
    folders = {}
    for name, folder in (("baseline", baseline), ("new", new)):
        folders[name] = tmp_path / name
        DataMetadata.read(folder).write(str(folders[name]))
        assert sorted(p.name for p in folders[name].iterdir()) == ["schema.pbtxt", "stats.pb"]
    from_json = run(ValidateConfig(), new, baseline, str(tmp_path / "a"))
    from_protos = run(ValidateConfig(), str(folders["new"]), str(folders["baseline"]), str(tmp_path / "b"))
    assert from_protos.anomalies == replace(from_json.anomalies, examples=str(folders["new"]),
                                            baseline=str(folders["baseline"]))


def test_a_first_run_passes_and_says_so(ingest, baseline, tmp_path):
    result = run(ValidateConfig(), baseline, None, str(tmp_path / "out"))
    assert result.validated
    assert result.anomalies.first_run
    assert not result.anomalies.findings
    assert "no baseline" in (tmp_path / "out" / "report.md").read_text()
    assert "no baseline" in (tmp_path / "out" / "report.html").read_text()


@pytest.fixture
def earlier_out(tmp_path) -> Path:
    """An output folder from an earlier run, which a failed run must leave as it was."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "anomalies.json").write_text("earlier")
    return out


def assert_untouched(out: Path) -> None:
    assert [p.name for p in out.parent.iterdir() if p.name.startswith("out")] == ["out"]
    assert [p.name for p in out.iterdir()] == ["anomalies.json"]
    assert (out / "anomalies.json").read_text() == "earlier"


def test_an_unreadable_baseline_is_named(baseline, tmp_path, earlier_out):
    broken = tmp_path / "broken"
    shutil.copytree(baseline, broken)
    (broken / "schema.pbtxt").write_text("feature { name: 'a' type: NOT_A_TYPE }")
    (broken / "stats.pb").write_bytes(b"")
    with pytest.raises(ValidateError, match=rf"baseline: {broken}/schema.pbtxt: not a tensorflow_metadata Schema"):
        run(ValidateConfig(), baseline, str(broken), str(earlier_out))
    with pytest.raises(ValidateError, match=rf"baseline: {tmp_path}/nowhere/schema.json: schema not found"):
        run(ValidateConfig(), baseline, str(tmp_path / "nowhere"), str(earlier_out))
    assert_untouched(earlier_out)


def test_statistics_of_another_data_set_are_refused(ingest, baseline, earlier_out):
    other = ingest("other", ["x", "y", "target", "key"], [[i * 0.5, "a", i % 2, i] for i in range(100)],
                   label="target", key="key")
    with pytest.raises(ValidateError, match="share no feature: statistics of another data set"):
        run(ValidateConfig(), other, baseline, str(earlier_out))
    assert_untouched(earlier_out)


def test_a_threshold_for_an_unknown_feature_is_refused(baseline, earlier_out):
    cfg = ValidateConfig(drift=DriftThresholds(features={"incme": 0.3}))
    with pytest.raises(ValidateError, match=r"validation.drift.features.incme: no such feature .*'income'"):
        run(cfg, baseline, baseline, str(earlier_out))
    with pytest.raises(ValidateError, match=r"validation.drift.features.incme"):
        run(cfg, baseline, None, str(earlier_out))
    assert_untouched(earlier_out)
