"""A served text classifier's logged requests: its text compared with training's as validate compares text, by
its tokens and by its lengths in bytes and in tokens."""

import random

import pyarrow as pa

from components import monitor
from components.common.config import MonitorConfig, RequestLogConfig
from components.common.metadata import DataMetadata
from components.ingest.stats import TextStats
from components.monitor import compare, statistics
from components.monitor.statistics import TOP_VALUES
from components.serve.client import GrpcClient, RestClient
from components.serve.server import running
from components.validate.profile import profiles
from tests.components.monitor.test_monitor import send, training_rows
from tests.components.serve.conftest import config

WHOLE = MonitorConfig.MAX_WINDOW_SECONDS  # every request in one window: skew alone, however long sending takes
TEXT = {"l_infinity", "jensen_shannon_divergence_bytes_per_value", "jensen_shannon_divergence_tokens_per_value"}


def other_words(row: dict) -> dict:
    """The review with a complaint no training review makes, in a word the model never saw: longer, in bytes and
    in tokens, and one token in three or so that word."""
    return {**row, "review": f"{row['review']} Broken, broken. BROKEN... broken! Broken broken!"}


def logged(home, rows: list[dict], logs) -> None:
    """`rows` sent to `home`'s server in every API, each request logged into `logs`."""
    with running(config(home, logging=RequestLogConfig(sampling_rate=1.0, dir=str(logs)))) as server:
        rest, grpc = RestClient(server.rest_url, "reviews"), GrpcClient(server.grpc_target, "reviews")
        try:
            send(rest, grpc, rows)
        finally:
            rest.close()
            grpc.close()


def test_served_text_is_measured_by_tokens_and_lengths_and_drifts_when_its_words_change(
        tmp_path, reviews_home, reviews_examples):
    rows = random.Random(0).choices(training_rows(reviews_examples), k=200)
    logged(reviews_home, rows, tmp_path / "same")
    logged(reviews_home, [other_words(r) for r in rows], tmp_path / "other")
    same, other = (monitor.run(MonitorConfig(), str(tmp_path / name), reviews_examples, str(tmp_path / f"{name}.out"),
                               window=WHOLE).findings for name in ("same", "other"))

    [window] = same.windows
    assert window.rows == 200
    assert not window.anomalies
    assert not same.crossed
    assert {m.statistic for m in window.measurements if m.feature == "review"} == TEXT
    [window] = other.windows
    crossed = {m.statistic: m for m in window.crossed("skew") if m.feature == "review"}
    assert crossed.keys() == TEXT
    assert crossed["l_infinity"].at == "broken"
    assert {m.feature for m in window.crossed("skew")} <= {"review", "sentiment"}  # the rest of each row is training's
    assert "THRESHOLD CROSSED: " in other.headline()
    assert "skew of review" in other.headline()

    before, after = (profiles(DataMetadata.read(str(tmp_path / f"{name}.out" / w.statistics)))
                     for name, w in (("same", same.windows[0]), ("other", window)))
    assert after["review"].type == "TEXT"
    assert max(after["review"].values, key=after["review"].values.get) == "broken"
    drift = compare.measure("drift", MonitorConfig().drift, before, after, "sentiment")  # as between two windows
    assert {m.statistic for m in drift if m.crossed and m.feature == "review"} == TEXT


def test_a_windows_text_statistics_are_ingests():
    """DataMetadata turns both into the same protos, so a window's text compares with training's field for field."""
    texts = ["Great kettle, it WORKS!", "Ça marche... mais   bruyant", "", "the the the"]
    ingest = TextStats(TOP_VALUES)
    ingest.update(pa.array([*texts, None]))
    expected = ingest.to_dict()
    found = statistics.feature_stats("text", texts, 1)
    assert found.keys() == expected.keys()
    assert {k: found[k] for k in ("count", "missing", "unique", "tokens")} == \
        {k: expected[k] for k in ("count", "missing", "unique", "tokens")}
    assert sorted(found["top"]) == sorted(expected["top"])
    for numbers in ("length", "token_count"):
        assert {k: found[numbers][k] for k in ("count", "missing", "min", "max", "mean")} == \
            {k: expected[numbers][k] for k in ("count", "missing", "min", "max", "mean")}
