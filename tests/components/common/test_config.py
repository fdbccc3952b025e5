import json

import pytest

from components.common import config
from components.common.config import ConfigError, IngestConfig, RunConfig


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_yaml_then_overrides_with_coercion(tmp_path):
    path = write(tmp_path, "name: demo\ningest:\n  source: a.csv\n  label: y\n")
    cfg = config.load(path, ["ingest.shards=4", "ingest.split.train=0.6", "ingest.split.eval=0.2",
                             "ingest.split.test=0.2", "ingest.drop=[a, b]", "ingest.csv.header=false",
                             "ingest.types={age: float}"])
    assert cfg.name == "demo"
    assert cfg.ingest.shards == 4
    assert isinstance(cfg.ingest.shards, int)
    assert cfg.ingest.split.train == 0.6
    assert cfg.ingest.drop == ("a", "b")
    assert cfg.ingest.csv.header is False
    assert cfg.ingest.types == {"age": "float"}


def test_string_numbers_are_coerced(tmp_path):
    cfg = config.load(None, ["ingest.source=x.csv", "ingest.shards='3'"])
    assert cfg.ingest.shards == 3


@pytest.mark.parametrize(("override", "message"), [
    ("ingest.shard=3", "ingest.shard: unknown key; expected one of"),
    ("ingest.shards=three", "ingest.shards: expected an integer, got 'three'"),
    ("ingest.split.train=lots", "ingest.split.train: expected a number"),
    ("ingest.format=xls", "ingest.format: expected one of auto, csv, parquet, jsonl, images, got 'xls'"),
    ("ingest.types={age: decimal}", "ingest.types.age: expected one of int, float, string, text, image"),
    ("ingest.csv.header=maybe", "ingest.csv.header: expected true or false"),
    ("ingest.split.train=0.9", "ingest.split: train + eval + test must be 1.0"),
    ("ingest.shards=0", "ingest.shards: expected an integer >= 1"),
    ("ingest", "expected section.key=value"),
])
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=None) as err:
        config.load(None, ["ingest.source=x.csv", override])
    assert message in str(err.value)


def test_unknown_section_in_yaml(tmp_path):
    path = write(tmp_path, "ingest: {source: a.csv}\ntrian: {epochs: 3}\n")
    with pytest.raises(ConfigError, match="trian: unknown key"):
        config.load(path)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        config.load(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.load(write(tmp_path, "ingest: [unclosed\n"))


def test_missing_source_is_an_error():
    with pytest.raises(ConfigError, match="ingest.source: expected a path"):
        config.load(None, [])


def test_json_round_trip_and_written_file(tmp_path):
    cfg = config.load(None, ["ingest.source=x.csv", "ingest.types={a: int}", "ingest.image.size=[28, 28]"])
    assert RunConfig.from_json(cfg.to_json()) == cfg
    written = cfg.write(tmp_path)
    assert json.loads(written.read_text())["ingest"]["image"]["size"] == [28, 28]


def test_configs_in_the_repository_load():
    from tests.conftest import ROOT

    for path in sorted((ROOT / "pipelines" / "configs").glob("*.yaml")):
        cfg = config.load(path)
        assert cfg.name
        assert path.read_text().startswith("#"), f"{path} must open with how to run it"


def test_frozen():
    cfg = IngestConfig(source="x")
    with pytest.raises(AttributeError):
        cfg.source = "y"


@pytest.mark.parametrize(("override", "message"), [
    ("tune.parallel=0", "tune.parallel: expected an integer >= 1, got 0"),
    ("tune.trials=0", "tune.trials: expected an integer >= 1, got 0"),
    ("tune.space={learning_rate: {min: 0.1, max: 0.01}}", r"tune.space.learning_rate: expected min <= max"),
])
def test_tune_is_checked_even_when_the_run_does_not_tune(override, message):
    with pytest.raises(ConfigError, match=message):
        config.load(None, ["ingest.source=x.csv", override])


def test_only_a_search_needs_a_space():
    cfg = config.load(None, ["ingest.source=x.csv"])
    assert cfg.tune.space == {}
    with pytest.raises(ConfigError, match="tune.space: expected at least one train key"):
        cfg.tune.validate(searching=True)


@pytest.mark.parametrize(("override", "retrain_on"), [
    ("monitor.retrain_on=drift", ("drift",)),
    ("monitor.retrain_on=[skew, quality]", ("skew", "quality")),
    ("monitor.retrain_on=never", ("never",)),
])
def test_retrain_on_takes_one_kind_or_several(override, retrain_on):
    cfg = config.load(None, ["ingest.source=x.csv", "monitor.quality={auc: {at_least: 0.7}}", override])
    assert cfg.monitor.retrain_on == retrain_on


@pytest.mark.parametrize(("overrides", "message"), [
    (["monitor.retrain_on=[never, skew]"], r"monitor.retrain_on: expected never, or skew, drift, quality or a list"),
    (["monitor.retrain_on=quality"], r"monitor.retrain_on: quality needs thresholds in monitor.quality"),
    (["monitor.quality={f1: {at_least: 0.5}}"], r"monitor.quality.f1: not a quality metric; expected one of "
                                                  r"accuracy, balanced_accuracy, auc, ece, rmse, mae"),
    (["monitor.quality={auc: {}}"], r"monitor.quality.auc: expected at least one of at_least, at_most"),
    (["monitor.quality={auc: {max_worse: -1}}"], r"monitor.quality.auc.max_worse: expected a number >= 0"),
    (["monitor.min_labels=0"], r"monitor.min_labels >= 1"),
    (["monitor.labels={key: id, column: x}"], r"monitor.labels.column: unknown key"),
])
def test_monitor_quality_settings_are_checked(overrides, message):
    with pytest.raises(ConfigError, match=message):
        config.load(None, ["ingest.source=x.csv", *overrides])
