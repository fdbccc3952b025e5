"""Every path through the blessing gate."""

import pytest

from components.common.config import Threshold
from components.evaluate.gate import (
    BLESSED,
    NOT_BLESSED,
    UNCHECKED,
    EvaluateError,
    blessing,
    decide,
)

THRESHOLDS = {"accuracy": Threshold(at_least=0.8, max_worse=0.02), "loss": Threshold(max_worse_relative=0.1)}


def verdicts(checks):
    return {(c.metric, c.check): c.verdict for c in checks}


def test_first_run_is_blessed_on_value_thresholds_alone():
    verdict, checks = decide(THRESHOLDS, {"accuracy": 0.9, "loss": 0.3}, baseline=None)
    assert verdict == BLESSED
    assert verdicts(checks) == {("accuracy", "at_least"): "pass", ("accuracy", "max_worse"): "skipped",
                                ("loss", "max_worse_relative"): "skipped"}
    assert "first model to be blessed" in checks[1].reason


def test_better_than_the_baseline():
    verdict, checks = decide(THRESHOLDS, {"accuracy": 0.93, "loss": 0.25}, {"accuracy": 0.9, "loss": 0.3})
    assert verdict == BLESSED
    assert set(verdicts(checks).values()) == {"pass"}


def test_worse_within_the_allowed_change():
    # accuracy 0.015 lower (0.02 allowed); loss 0.032 higher (10% of 0.34 = 0.034 allowed).
    verdict, _ = decide(THRESHOLDS, {"accuracy": 0.885, "loss": 0.372}, {"accuracy": 0.9, "loss": 0.34})
    assert verdict == BLESSED


def test_worse_beyond_the_allowed_change():
    verdict, checks = decide(THRESHOLDS, {"accuracy": 0.87, "loss": 0.38}, {"accuracy": 0.9, "loss": 0.34})
    assert verdict == NOT_BLESSED
    assert verdicts(checks) == {("accuracy", "at_least"): "pass", ("accuracy", "max_worse"): "fail",
                                ("loss", "max_worse_relative"): "fail"}
    assert "worse by 0.03" in checks[1].reason


def test_value_threshold_miss():
    verdict, checks = decide({"accuracy": Threshold(at_least=0.95), "loss": Threshold(at_most=0.2)},
                             {"accuracy": 0.94, "loss": 0.1}, None)
    assert verdict == NOT_BLESSED
    assert verdicts(checks)[("accuracy", "at_least")] == "fail"
    assert checks[0].reason == "accuracy 0.94 < 0.95"


def test_undefined_metric_fails_and_unknown_metric_is_an_error():
    verdict, _ = decide({"auc": Threshold(at_least=0.5)}, {"auc": None}, None)
    assert verdict == NOT_BLESSED
    with pytest.raises(EvaluateError, match="evaluate.thresholds.acc: no such metric; the evaluation has accuracy"):
        decide({"acc": Threshold(at_least=0.5)}, {"accuracy": 0.9}, None)


def test_no_thresholds_is_unchecked_never_blessed():
    verdict, checks = decide({}, {"accuracy": 0.99}, {"accuracy": 0.5})
    assert verdict == UNCHECKED
    assert checks == ()
    written = blessing(verdict, checks, None).to_json()
    assert written["blessed"] is False
    assert written["verdict"] == "unchecked"
    assert "nothing was checked" in written["note"]
    assert "will not be exported" in written["note"]
