"""The evaluate step's files as typed records: read and written again byte for byte, as every earlier run wrote
them; a damaged file is an error naming the field."""

import json

import numpy as np
import pytest

from components.common import io
from components.common.evaluation_records import BaselineRef, Blessing, Check, MetricsDocument, Overall, RecordError
from components.evaluate import metrics


def written(plain) -> str:
    """The text io.write_json gives a document."""
    return json.dumps(plain, indent=2, sort_keys=False, default=str) + "\n"


@pytest.mark.parametrize("classes", [("no", "yes"), ("Adelie", "Chinstrap", "Gentoo")], ids=["binary", "three"])
def test_an_overall_result_reads_and_writes_back_in_its_order(classes):
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(len(classes)), 200)
    result = metrics.classification(rng.integers(0, len(classes), 200), probabilities, list(classes))
    overall = Overall.from_dict(result, "overall")
    assert written(overall.to_json()) == written(result)
    assert overall.count == 200
    assert set(overall.per_class) == set(classes)
    assert overall.calibration.ece == result["ece"]
    assert overall.roc[classes[1]].fpr == tuple(result["roc"][classes[1]]["fpr"])
    assert overall.scalars()[f"f1/{classes[0]}"] == result["per_class"][classes[0]]["f1"]


def test_a_regression_result_and_a_slice_without_curves_read_and_write_back():
    result = metrics.regression(np.array([1.0, 2.0, 3.0]), np.array([1.5, 2.0, 2.0]))
    assert written(Overall.from_dict(result, "overall").to_json()) == written(result)
    sliced = metrics.classification(np.array([0, 1, 1]), np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]]), ["a", "b"],
                                    curves=False)
    assert written(Overall.from_dict(sliced, "overall").to_json()) == written(sliced)


def test_a_blessing_reads_and_writes_back_and_one_without_a_verdict_reads_from_blessed(tmp_path):
    check = Check("accuracy", "max_worse", 5, 0.9, 0.95, "fail", "accuracy 0.9 vs baseline 0.95: worse by 0.05")
    blessing = Blessing("not blessed", BaselineRef("/m/model.keras", 1, "production", "2026-12-01T00:00:00+00:00",
                                                   "/m/1/assets.extra"), None, (check,))
    io.write_json(tmp_path / "blessing.json", blessing.to_json())
    text = (tmp_path / "blessing.json").read_text()
    assert Blessing.from_json(text) == blessing
    assert written(Blessing.from_json(text).to_json()) == text
    assert '"threshold": 5,' in text  # a threshold written as a whole number stays one
    assert not blessing.blessed
    assert Blessing.from_dict({"blessed": True, "checks": []}).verdict == "blessed"
    assert Blessing.from_dict({"blessed": False}).verdict == "not blessed"


def test_a_document_reads_and_writes_back(tmp_path):
    result = metrics.regression(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.5, 2.0, 2.0, 4.5]))
    plain = {"model": "/m/model.keras", "examples": "/e", "split": "test", "task": "regression", "classes": [],
             "overall": result, "slices": [{"feature": "island", "slice": "Dream", "count": 4,
                                            "metrics": {"count": 4.0, "mae": 0.5}}],
             "slices_note": "", "baseline": {"mae": 0.4}}
    document = MetricsDocument.from_json(written(plain))
    assert written(document.to_json()) == written(plain)
    assert document.slices[0].metrics["mae"] == 0.5
    assert document.overall.values["r2"] == result["r2"]


@pytest.mark.parametrize(("plain", "message"), [
    ({"model": "m", "task": "ranking", "overall": {"count": 1}}, "metrics.json.task: expected one of "
                                                                 "'classification', 'regression', got 'ranking'"),
    ({"model": "m", "task": "regression"},
     "metrics.json: no overall; expected model, task, overall, examples, split, classes, slices, slices_note, "
     "baseline"),
    ({"model": "m", "task": "regression", "overall": {"count": 2, "mae": "low"}},
     "metrics.json.overall: mae: expected numbers"),
    ({"model": "m", "task": "regression", "overall": {"count": 2}, "slices": [{"feature": "x"}]},
     "metrics.json.slices[0]: no slice, count, metrics; expected feature, slice, count, metrics"),
], ids=["task", "overall", "number", "slice"])
def test_a_damaged_document_names_the_field(plain, message):
    with pytest.raises(RecordError) as error:
        MetricsDocument.from_dict(plain)
    assert str(error.value) == message


def test_a_damaged_check_names_the_field():
    with pytest.raises(RecordError) as error:
        Blessing.from_dict({"blessed": True, "verdict": "blessed", "checks": [
            {"metric": "auc", "check": "at_least", "threshold": 0.5, "value": 0.6, "baseline": None,
             "verdict": "maybe", "reason": ""}]})
    assert str(error.value) == "blessing.json.checks[0].verdict: expected one of 'pass', 'fail', 'skipped', got 'maybe'"
