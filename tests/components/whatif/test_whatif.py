"""What-If analyses on models with known behaviour, and the report for both example data sets."""

import json

import keras
import numpy as np
import pytest

from components.common.config import EvaluateConfig, IngestConfig, WhatIfConfig
from components.common.layers import Standardize
from components.common.schema import Schema
from components.common.task import Task
from components.ingest import run as ingest
from components.train import models
from components.whatif import Compared, analysis, comparison, registry_baseline, run
from components.whatif.document import Finding, WhatIfDocument, WhatIfError
from tests.components.conftest import trained, with_noise
from tests.conftest import people_rows, write_csv
from tests.pages import assert_whatif_report_shows, tables


@pytest.fixture(scope="module")
def bill_length_only(tmp_path_factory, penguins_examples):
    """A penguins classifier whose output depends on bill_length_mm alone (the other inputs are unused)."""
    schema = Schema.read(penguins_examples)
    inputs = {f.name: models.model_input(f) for f in schema.inputs}
    bill = schema.feature("bill_length_mm")
    x = Standardize(bill.stats["mean"], bill.stats["std"])(inputs["bill_length_mm"])
    head = keras.layers.Dense(3, activation="softmax")
    model = keras.Model(inputs, head(x))
    head.set_weights([np.array([[-3.0, 0.0, 3.0]], np.float32), np.zeros(3, np.float32)])
    folder = tmp_path_factory.mktemp("bill-only")
    model.save(folder / "model.keras")
    return str(folder)


def test_partial_dependence_is_flat_except_for_the_one_feature(tmp_path, bill_length_only, penguins_examples):
    slicing = EvaluateConfig(slices=("island", "body_mass_g"), numeric_bins=2)
    document = run(WhatIfConfig(grid_points=6), bill_length_only, penguins_examples, str(tmp_path / "w"),
                   slicing).document
    for pd in document.partial_dependence:
        spread = np.ptp(np.asarray(pd.mean), axis=0).max()
        if pd.feature == "bill_length_mm":
            assert spread > 0.3, "the model's one feature must move its prediction"
            assert np.asarray(pd.mean)[:, 2].tolist() == sorted(np.asarray(pd.mean)[:, 2].tolist())
        else:
            assert spread < 1e-6, f"{pd.feature} does not enter the model, yet its partial dependence moves"
    assert document.counterfactuals, "no counterfactuals found"
    for found in document.counterfactuals:
        assert "bill_length_mm" in found.differs
        assert found.predicted != found.counterfactual_predicted
    # The run's evaluate section decides the slices: its features, its bins.
    assert {s.feature for s in document.slices} == {"island", "body_mass_g"}
    assert sum(s.feature == "body_mass_g" for s in document.slices) == 2
    assert document.why_empty.thresholds == "Threshold analysis is for binary labels; 'species' has 3 classes."
    assert assert_whatif_report_shows(tmp_path / "w") == document
    assert (tmp_path / "w" / "report.html").read_text().count("<svg") == len(document.partial_dependence)


def test_counterfactual_by_hand():
    features = {"x": np.array([0.0, 1.0, 5.0, 0.5]), "c": np.array([b"a", b"", b"a", b"a"], dtype=object)}
    predicted = np.array([0, 1, 1, 0])
    found = analysis.nearest_counterfactual(features, ["x"], predicted, 0, ("no", "yes"))
    # example 1: |0-1|/std + 1 string mismatch; example 2: |0-5|/std, no mismatch; std of x = 1.9526
    std = features["x"].std()
    assert found.counterfactual == 1
    assert found.distance == pytest.approx(1 / std + 1)
    assert found.differs == ("x", "c")
    assert (found.predicted, found.counterfactual_predicted) == ("no", "yes")
    assert [(v.example, v.counterfactual) for v in found.values] == [("0", "1"), ("a", "(missing)")]


def test_a_renamed_field_fails_where_the_document_is_read():
    with pytest.raises(WhatIfError, match=r"whatif.json: .*unknown key; expected one of"):
        WhatIfDocument.from_json('{"task": "regression", "label": "y", "classes": [], "count": 1, "overall": {}, '
                                 '"partial_dependences": []}')


def test_thresholds_and_fairness_on_a_binary_label(tmp_path, tmp_path_factory):
    header, rows = people_rows(400)
    for row in rows:  # a learnable label: old and rich
        row[-1] = int(row[1] > 50 and row[2] > 48_000)
    ingest(IngestConfig(source=str(write_csv(tmp_path / "people.csv", header, rows)), label="label"),
           str(tmp_path / "examples"))
    model = trained(tmp_path_factory, str(tmp_path / "examples"), "functional", 4)
    document = run(WhatIfConfig(fairness_feature="city", cost_ratio=3.0), model, str(tmp_path / "examples"),
                   str(tmp_path / "w"), EvaluateConfig()).document
    t = document.thresholds
    costs = {round(r.threshold, 2): r.cost for r in t.curve}
    assert t.best.cost == min(costs.values()) <= costs[0.5]
    assert {g.group for g in t.groups} == {"Paris", "Oslo", "Lima", "Austin, TX"}
    for group in t.groups:
        assert 0 <= group.demographic_parity <= 1
        assert 0 <= group.equal_opportunity <= 1
    assert "demographic parity threshold" in (tmp_path / "w" / "report.html").read_text()


def test_image_model_report(tmp_path, digits_model, digits_examples):
    document = run(WhatIfConfig(saliency_examples=3), digits_model, digits_examples, str(tmp_path / "w"),
                   EvaluateConfig()).document
    assert len(document.per_class) == 10
    assert document.partial_dependence == ()
    assert "reads only images (image)" in document.why_empty.partial_dependence
    assert 1 <= len(document.images) <= 3
    for item in document.images:
        assert item.true != item.predicted
        assert np.asarray(item.saliency).shape == (8, 8)
        assert np.asarray(item.image).shape == (8, 8, 1)
    assert "occlusion saliency" in (tmp_path / "w" / "report.html").read_text()
    assert WhatIfDocument.read(str(tmp_path / "w")) == document


def test_paired_bootstrap_by_hand():
    """Two models on 400 rows: the candidate right on 300, the baseline on the same 300 minus 40 (a paired
    difference of 0.1 whose interval leaves out 0); against itself, a difference of exactly 0, within noise."""
    labels = np.zeros(400, int)
    right, wrong = np.array([[0.9, 0.1]]), np.array([[0.2, 0.8]])
    candidate = np.where(np.arange(400)[:, None] < 300, right, wrong)
    baseline = np.where(np.arange(400)[:, None] < 260, right, wrong)
    task = Task("classification", ("no", "yes"))
    accuracy, loss = comparison.differences(comparison.per_row(task, labels, candidate, baseline),
                                            np.arange(400), 500)
    assert (accuracy.candidate, accuracy.baseline) == (0.75, 0.65)
    assert accuracy.difference == pytest.approx(0.1)
    assert 0 < accuracy.low < 0.1 < accuracy.high < 0.2
    assert accuracy.better == "candidate"
    assert loss.difference < 0
    assert loss.better == "candidate"  # lower loss is better
    same = comparison.differences(comparison.per_row(task, labels, candidate, candidate), np.arange(400), 500)
    assert [(d.difference, d.low, d.high, d.better) for d in same] == [(0, 0, 0, "neither")] * 2


def test_the_candidate_against_a_worse_model_on_the_same_rows(tmp_path, penguins_model, other_penguins_model,
                                                              penguins_examples):
    cfg = WhatIfConfig(grid_points=4, ice_examples=2, counterfactuals=2, disagreement_examples=3)
    slicing = EvaluateConfig(slices=("island",))
    document = run(cfg, penguins_model, penguins_examples, str(tmp_path / "w"), slicing,
                   Compared(other_penguins_model, "production (version 1)")).document
    c = document.comparison
    accuracy = next(d for d in c.overall if d.metric == "accuracy")
    assert accuracy.candidate == pytest.approx(document.overall["accuracy"])
    assert accuracy.low <= accuracy.difference <= accuracy.high
    assert accuracy.low > 0, "noise of 0.5 on every weight must cost accuracy"
    assert accuracy.better == "candidate"
    assert c.findings[0] == Finding("overall", c.overall[0])
    islands = {s.slice: s for s in c.slices if s.feature == "island"}
    assert set(islands) == {"Biscoe", "Dream", "Torgersen"}
    assert sum(s.count for s in islands.values()) == document.count
    assert sum(s.disagreements for s in islands.values()) == c.disagreements > 0
    assert {s.slice for s in c.slices if s.feature == "true class"} == {"Adelie", "Chinstrap", "Gentoo"}
    assert 0 < len(c.most_confident) <= 3
    for d in c.most_confident:
        assert d.candidate != d.baseline
        assert {v.feature for v in d.values} == {f.name for f in Schema.read(penguins_examples).inputs}
    sureness = [min(d.candidate_confidence, d.baseline_confidence) for d in c.most_confident]
    assert sureness == sorted(sureness, reverse=True)
    assert len(c.calibration) == 2
    assert all(0 <= cal.ece <= 1 for cal in c.calibration)
    assert [pd.feature for pd in c.partial_dependence] == [pd.feature for pd in document.partial_dependence]
    assert [pd.grid for pd in c.partial_dependence] == [pd.grid for pd in document.partial_dependence]
    assert c.partial_dependence[0].mean != document.partial_dependence[0].mean
    report = (tmp_path / "w" / "report.html").read_text()
    assert report.index("<h2>Verdict</h2>") < report.index("<h2>Performance by slice</h2>")
    assert f"overall: accuracy {accuracy.candidate:.4g} against {accuracy.baseline:.4g}" in report
    side_by_side = tables(report)["Candidate and baseline"]
    assert [(r["feature"], r["slice"], r["metric"], r["beyond noise"]) for r in side_by_side[:len(c.overall)]] == [
        ("overall", "", d.metric, f"{d.better} better" if d.better != "neither" else "no") for d in c.overall]
    assert [(r["slice"], r["count"]) for r in side_by_side[len(c.overall)::2]] == [
        (s.slice, str(s.count)) for s in c.slices]
    for shown in ("production (version 1)", "Gentoo (baseline)", "ECE"):
        assert shown in report
    assert WhatIfDocument.read(str(tmp_path / "w")) == document


def test_a_model_of_another_label_is_not_compared(tmp_path, penguins_examples, bill_length_only):
    two = tmp_path / "two"
    schema = Schema.read(penguins_examples)
    inputs = {f.name: models.model_input(f) for f in schema.inputs}
    x = keras.layers.Concatenate()([keras.ops.cast(inputs["bill_length_mm"], "float32"),
                                    keras.ops.cast(inputs["year"], "float32")])
    keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x)).save(two.with_suffix(".keras"))
    with pytest.raises(WhatIfError, match=r"two.keras: it answers 2 values per example where the candidate and the "
                                          r"examples' label answer 3 class probabilities \(Adelie, Chinstrap, "
                                          r"Gentoo\): the two models do not have the same task or classes"):
        run(WhatIfConfig(), bill_length_only, penguins_examples, str(tmp_path / "w"), EvaluateConfig(),
            Compared(str(two.with_suffix(".keras"))))
    assert not (tmp_path / "w").exists()


def test_the_pipeline_step_compares_with_the_baseline_evaluate_uses(tmp_path, other_penguins_model):
    home = tmp_path / "penguins"
    assert registry_baseline(str(home)) is None  # a first run: nothing to compare with
    home.mkdir()
    (home / "blessed.json").write_text(json.dumps({"model": f"{other_penguins_model}/model.keras", "metrics": {}}))
    assert registry_baseline(str(home)) == Compared(f"{other_penguins_model}/model.keras", "blessed.json")


def test_regression_models_compare_by_their_errors():
    labels = np.zeros(200)
    candidate, baseline = np.full((200, 1), 1.0), np.full((200, 1), 3.0)
    baseline[:100] = -1.0  # errors: the candidate 1 everywhere; the baseline 1 on half the rows, 3 on the other
    mae, rmse = comparison.differences(comparison.per_row(Task("regression"), labels, candidate, baseline),
                                       np.arange(200), 300)
    assert (mae.metric, mae.candidate, mae.baseline, mae.better) == ("mae", 1.0, 2.0, "candidate")
    assert (rmse.metric, rmse.candidate, rmse.better) == ("rmse", 1.0, "candidate")
    assert rmse.baseline == pytest.approx(np.sqrt(5))


def test_an_image_model_against_itself_differs_nowhere(tmp_path, digits_model, digits_examples):
    document = run(WhatIfConfig(saliency_examples=1, bootstrap_resamples=200), digits_model, digits_examples,
                   str(tmp_path / "w"), EvaluateConfig(), Compared(digits_model, "itself")).document
    c = document.comparison
    assert (c.findings, c.disagreements, c.most_confident, c.partial_dependence) == ((), 0, (), ())
    assert [s.feature for s in c.slices] == ["true class"] * 10
    assert c.calibration[0] == c.calibration[1]
    report = (tmp_path / "w" / "report.html").read_text()
    assert "<b>No difference beyond noise</b>, overall or in any slice." in report
    assert "None: the two models put every test row in the same class." in report


def test_an_image_models_disagreements_are_shown_as_images(tmp_path, tmp_path_factory, digits_model,
                                                          digits_examples):
    noisy = with_noise(tmp_path_factory, digits_model, 0.1)
    document = run(WhatIfConfig(saliency_examples=1, bootstrap_resamples=200, disagreement_examples=3),
                   digits_model, digits_examples, str(tmp_path / "w"), EvaluateConfig(), Compared(noisy)).document
    c = document.comparison
    assert c.disagreements > 0
    assert 0 < len(c.most_confident) <= 3
    for d in c.most_confident:
        assert np.asarray(d.image).shape == (8, 8, 1)
        assert d.values == ()
    disagreements = (tmp_path / "w" / "report.html").read_text().split("<h2>Disagreements</h2>")[1].split("<h2>")[0]
    assert disagreements.count("<svg") == len(c.most_confident)
