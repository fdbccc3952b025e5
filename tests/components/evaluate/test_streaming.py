"""Streaming evaluation: accumulators against scikit-learn, merges against one pass, slices, and the beam engine."""

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from components.common.config import BeamConfig, EvaluateConfig, Threshold
from components.common.model_loading import load_model
from components.common.schema import Feature, Schema
from components.common.task import task_of
from components.evaluate import metrics, run, slices
from components.evaluate.accumulators import Classification, Regression
from components.evaluate.evaluation import Evaluation
from components.evaluate.step import predict, read_test_split
from components.evaluate.stream import Batch

AUC_TOLERANCE = 1e-3  # scores sharing one of the 10,000 buckets count as tied


def scored(rng: np.random.Generator, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and float32 probabilities that lean towards the true class, as a fair model's do."""
    labels = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[labels]
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return labels, probabilities.astype(np.float32)


def parts(n: int, cuts: tuple[int, ...]) -> list[slice]:
    edges = [0, *cuts, n]
    return [slice(a, b) for a, b in zip(edges, edges[1:])]


@pytest.mark.parametrize("k", [2, 4])
def test_classification_agrees_with_scikit_learn(k):
    labels, probabilities = scored(np.random.default_rng(k), 20_000, k)
    classes = [f"c{i}" for i in range(k)]
    r = metrics.classification(labels, probabilities, classes)
    predicted = probabilities.argmax(axis=1)
    assert r["count"] == len(labels)
    assert r["confusion_matrix"] == skm.confusion_matrix(labels, predicted).tolist()
    assert r["accuracy"] == skm.accuracy_score(labels, predicted)
    precision, recall, f1, support = skm.precision_recall_fscore_support(labels, predicted, zero_division=0)
    for i, c in enumerate(classes):
        assert r["per_class"][c]["support"] == support[i]
        assert r["per_class"][c]["precision"] == pytest.approx(precision[i], abs=1e-12)
        assert r["per_class"][c]["recall"] == pytest.approx(recall[i], abs=1e-12)
        assert r["per_class"][c]["f1"] == pytest.approx(f1[i], abs=1e-12)
    assert r["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(labels, predicted), abs=1e-12)
    assert r["macro_f1"] == pytest.approx(skm.f1_score(labels, predicted, average="macro"), abs=1e-12)
    assert r["loss"] == pytest.approx(skm.log_loss(labels, probabilities), rel=1e-5)
    onehot = np.eye(k, dtype=bool)[labels]
    truth, scores = (labels == 1, probabilities[:, 1]) if k == 2 else (onehot.ravel(), probabilities.ravel())
    assert r["auc"] == pytest.approx(skm.roc_auc_score(truth, scores), abs=AUC_TOLERANCE)
    assert r["pr_auc"] == pytest.approx(skm.average_precision_score(truth, scores), abs=AUC_TOLERANCE)
    if k > 2:
        macro = np.mean([skm.roc_auc_score(onehot[:, i], probabilities[:, i]) for i in range(k)])
        assert r["macro_auc"] == pytest.approx(macro, abs=AUC_TOLERANCE)
    main = "micro" if k > 2 else "c1"
    assert r["roc"][main]["auc"] == r["auc"]
    assert len(r["roc"][main]["fpr"]) <= 101
    assert r["roc"][main]["fpr"][0] == 0
    assert r["roc"][main]["tpr"][-1] == 1
    assert np.all(np.diff(r["pr"][main]["thresholds"]) > 0)
    assert sum(b["count"] for b in r["calibration"]["bins"]) == len(labels)


def test_regression_agrees_with_scikit_learn():
    rng = np.random.default_rng(7)
    labels = rng.normal(1000.0, 3.0, 50_000)  # a large mean: sums of squares would lose the spread
    predictions = labels + rng.normal(0.5, 1.0, len(labels))
    r = metrics.regression(labels, predictions)
    assert r["count"] == len(labels)
    assert r["mae"] == pytest.approx(skm.mean_absolute_error(labels, predictions), rel=1e-9)
    assert r["loss"] == pytest.approx(skm.mean_squared_error(labels, predictions), rel=1e-9)
    assert r["rmse"] == pytest.approx(skm.root_mean_squared_error(labels, predictions), rel=1e-9)
    assert r["r2"] == pytest.approx(skm.r2_score(labels, predictions), rel=1e-9)
    assert metrics.regression(np.array([2.0, 2.0]), np.array([2.0, 2.0]))["r2"] == 1.0


def test_merged_parts_equal_one_pass():
    labels, probabilities = scored(np.random.default_rng(1), 9_000, 3)
    whole = Classification.empty(("a", "b", "c"))
    whole.add(labels, probabilities)
    merged = Classification.empty(("a", "b", "c"))
    for part in parts(len(labels), (1, 4_000, 8_999)):
        piece = Classification.empty(("a", "b", "c"))
        piece.add(labels[part], probabilities[part])
        merged.merge(piece)
    for name in ("count", "confusion", "positives", "examples"):
        np.testing.assert_array_equal(getattr(merged, name), getattr(whole, name))
    np.testing.assert_allclose(merged.loss, whole.loss, rtol=1e-12)
    np.testing.assert_allclose(merged.reliability, whole.reliability, rtol=1e-12)

    values = np.random.default_rng(2).normal(50.0, 2.0, 9_000)
    predictions = values + 0.3
    one = Regression.empty()
    one.add(values, predictions)
    many = Regression.empty()
    for part in parts(len(values), (3, 5_000)):
        piece = Regression.empty()
        piece.add(values[part], predictions[part])
        many.merge(piece)
    assert many.result() == pytest.approx(one.result(), rel=1e-12)


CLASSES = ("a", "b", "c")
SCHEMA = Schema((Feature("size", "float"), Feature("colour", "string"),
                 Feature("label", "string", {"top": [[c, 1] for c in CLASSES]})), "label")


def table(n: int, seed: int = 3) -> Batch:
    rng = np.random.default_rng(seed)
    labels, probabilities = scored(rng, n, 3)
    colours = np.array([b"red", b"green", b"blue", b""], dtype=object)[rng.integers(0, 4, n)]
    return Batch(labels, (probabilities,), {"size": rng.gamma(2.0, 3.0, n).astype(np.float32), "colour": colours})


def test_slices_streamed_in_parts_equal_those_computed_in_memory():
    batch, cfg, names = table(3_000), EvaluateConfig(numeric_bins=4), ["size", "colour"]
    profile = slices.Profile.empty(SCHEMA, names)
    for part in parts(3_000, (1_000, 2_000)):
        piece = slices.Profile.empty(SCHEMA, names)
        piece.add(Batch(batch.labels[part], (), {n: c[part] for n, c in batch.columns.items()}))
        profile.merge(piece)
    evaluation = Evaluation.empty(task_of(SCHEMA), profile.slices(names, 4), baseline=False)
    for part in parts(3_000, (500, 2_500)):
        evaluation.add(Batch(batch.labels[part], (batch.outputs[0][part],),
                             {n: c[part] for n, c in batch.columns.items()}))
    streamed = evaluation.slices()
    in_memory = slices.compute(SCHEMA, cfg, batch.columns, lambda mask: metrics.scalars(metrics.classification(
        batch.labels[mask], batch.outputs[0][mask], list(CLASSES), curves=False)))
    assert [(r.feature, r.slice, r.count) for r in streamed] == \
           [(r["feature"], r["slice"], r["count"]) for r in in_memory]
    assert {r.slice for r in streamed if r.feature == "colour"} == {"red", "green", "blue", "(missing)"}
    edges = np.quantile(batch.columns["size"], np.linspace(0, 1, 5))
    assert [r.slice for r in streamed if r.feature == "size"][0] == f"[{edges[0]:.4g}, {edges[1]:.4g})"
    for s, m in zip(streamed, in_memory):
        assert s.metrics == pytest.approx(m["metrics"], rel=1e-9)


def test_a_profile_stays_bounded_on_large_splits():
    rng = np.random.default_rng(4)
    profile = slices.Profile.empty(SCHEMA, ["size", "colour"])
    values = rng.normal(size=3 * slices.SAMPLE_SIZE)
    heavy = np.array([b"common-%d" % (i % 5) for i in range(2_000)] * 30, dtype=object)
    rare = np.array([b"once-%d" % i for i in range(len(values) - len(heavy))], dtype=object)
    words = np.concatenate([heavy, rare])[rng.permutation(len(values))]
    for part in parts(len(values), tuple(range(25_000, len(values), 25_000))):
        profile.add(Batch(np.zeros(0), (), {"size": values[part], "colour": words[part]}))
    sample = profile.numbers["size"].values()
    assert len(sample) == slices.SAMPLE_SIZE
    assert len(profile.strings["colour"]) <= slices.MAX_VALUES * slices._PRUNE_FACTOR
    size, colour = profile.slices(["size", "colour"], 4)
    exact = np.quantile(values, [0.25, 0.5, 0.75])
    ranks = np.searchsorted(np.sort(values), size.edges[1:-1]) / len(values)
    assert np.abs(ranks - [0.25, 0.5, 0.75]).max() < 0.01
    assert np.allclose(size.edges[1:-1], exact, atol=0.03)
    assert set(colour.labels[:5]) == {f"common-{i}" for i in range(5)}


def test_the_beam_engine_writes_what_the_local_engine_does(tmp_path, penguins_model, penguins_examples):
    cfg = EvaluateConfig(thresholds={"accuracy": Threshold(at_least=0.6)}, batch_size=8)
    local = run(cfg, penguins_model, penguins_examples, str(tmp_path / "local"), str(tmp_path / "serving"))
    in_process = BeamConfig(workers=1, options=("--direct_running_mode=in_memory",))
    beam = run(EvaluateConfig(thresholds=cfg.thresholds, batch_size=8, engine="beam"), penguins_model,
               penguins_examples, str(tmp_path / "beam"), str(tmp_path / "serving"), in_process)
    assert beam.verdict == local.verdict
    assert beam.metrics == local.metrics
    for name in ("metrics.json", "blessing.json"):
        assert json.loads((tmp_path / "beam" / name).read_text()) == json.loads((tmp_path / "local" / name).read_text())

    # Today's figures, from every prediction held in memory and scikit-learn.
    schema = Schema.read(penguins_examples)
    test = read_test_split(penguins_examples, schema, task_of(schema), 256)
    outputs = predict(load_model(penguins_model, schema), test.data)
    overall = json.loads((tmp_path / "local" / "metrics.json").read_text())["overall"]
    assert overall["count"] == len(test.labels)
    assert overall["confusion_matrix"] == skm.confusion_matrix(test.labels, outputs.argmax(axis=1),
                                                               labels=range(3)).tolist()
    assert overall["accuracy"] == skm.accuracy_score(test.labels, outputs.argmax(axis=1))
    onehot = np.eye(3, dtype=bool)[test.labels]
    assert overall["auc"] == pytest.approx(skm.roc_auc_score(onehot.ravel(), outputs.ravel()), abs=AUC_TOLERANCE)
    assert overall["loss"] == pytest.approx(skm.log_loss(test.labels, outputs, labels=range(3)), rel=1e-5)
