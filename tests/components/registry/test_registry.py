"""The registry on a local folder: versions, aliases with history, rollback, baseline, migration, bad input."""

import json

import pytest

from components.common import registry_commands as commands
from components.common.errors import TfpipeError
from components.common.registry import (
    CorruptRegistry,
    Evaluation,
    NoEarlierVersion,
    Registry,
    RegistryError,
    RegistryRecord,
    UnknownAlias,
    UnknownVersion,
)
from components.serve.models import ModelManager
from tests.components.registry.conftest import LINEAGE, add_versions, blessed


def served_labels(home) -> dict[str, int]:
    """The labels as the model server's own parser reads them."""
    manager = ModelManager(str(home), labels_file=str(home / "labels.json"))
    return manager._read_labels()


def test_register_promote_resolve_and_the_labels_file_the_server_reads(home):
    registry = Registry(str(home))
    for version, accuracy in ((1, 0.90), (2, 0.93), (3, 0.95)):
        registry.register(version, blessed(accuracy), LINEAGE)
    registry.promote(1, "production")
    registry.promote(3, "candidate")
    assert (registry.resolve("production"), registry.resolve("candidate")) == (1, 3)
    assert json.loads((home / "labels.json").read_text()) == {"candidate": 3, "production": 1}
    assert served_labels(home) == {"candidate": 3, "production": 1}
    registry.promote(3, "production")
    assert served_labels(home) == {"candidate": 3, "production": 3}
    record = registry.read()
    assert [v.version for v in record.versions] == [1, 2, 3]
    assert record.find(2).evaluation.metrics["accuracy"] == 0.93
    assert record.find(2).lineage == LINEAGE
    assert record.find(2).created.endswith("+00:00")


def test_rollback_walks_back_through_the_alias_history(home):
    registry = Registry(str(home))
    for version in (1, 2, 3):
        registry.register(version, blessed(0.9))
        registry.promote(version, "production")
    registry.promote(3, "production")  # already there: no new history entry
    assert registry.read().alias("production").previous == (1, 2)
    assert registry.rollback("production").version == 2
    assert served_labels(home) == {"production": 2}
    assert registry.rollback("production").version == 1
    before = (home / "registry.json").read_bytes()
    with pytest.raises(NoEarlierVersion, match="'production' has pointed only at version 1: there is no earlier"):
        registry.rollback("production")
    assert (home / "registry.json").read_bytes() == before
    history = registry.read().alias("production").history
    assert [(c.action, c.version) for c in history] == [("promote", 1), ("promote", 2), ("promote", 3),
                                                        ("rollback", 2), ("rollback", 1)]
    registry.promote(3, "production")
    assert registry.read().alias("production").previous == (1,)


def test_the_record_survives_json_and_says_what_each_alias_pointed_at(home):
    registry = Registry(str(home))
    registry.register(1, blessed(0.9), LINEAGE)
    registry.register(2, Evaluation("not blessed", {"accuracy": 0.5}))
    registry.promote(1, "production")
    registry.promote(2, "shadow-test")
    record = registry.read()
    assert RegistryRecord.from_json(json.loads(record.to_bytes()), "x") == record
    plain = json.loads((home / "registry.json").read_text())
    assert plain["format"] == 1
    assert plain["name"] == "penguins"
    assert plain["aliases"]["production"]["version"] == 1
    assert plain["aliases"]["production"]["previous"] == []
    assert plain["versions"][0]["lineage"]["run_id"] == "run-7"


def test_baseline_is_production_then_the_newest_blessed(home):
    registry = Registry(str(home))
    assert registry.baseline() is None
    registry.register(1, blessed(0.90, "/runs/a/model.keras"))
    registry.register(2, Evaluation("not blessed", {"accuracy": 0.5}, "/runs/b/model.keras"))
    registry.register(3, blessed(0.95, "/runs/c/model.keras"))
    baseline = registry.baseline()
    assert (baseline.version, baseline.model, baseline.why) == (3, "/runs/c/model.keras", "newest blessed")
    registry.promote(1, "production")
    baseline = registry.baseline()
    assert (baseline.version, baseline.model, baseline.why) == (1, "/runs/a/model.keras", "production")
    assert baseline.metrics == {"accuracy": 0.90, "loss": pytest.approx(0.10)}


def test_a_folder_with_only_the_blessing_record_reads_as_a_registry(tmp_path):
    home = tmp_path / "penguins"
    home.mkdir()
    (home / "blessed.json").write_text(json.dumps({"model": "/runs/7/model.keras", "metrics": {"accuracy": 0.9},
                                                   "evaluation": "/runs/7/evaluate",
                                                   "blessed_at": "2026-11-01T10:00:00+00:00"}))
    registry = Registry(str(home))
    baseline = registry.baseline()
    assert (baseline.model, baseline.version, baseline.why) == ("/runs/7/model.keras", None, "blessed.json")
    assert baseline.metrics == {"accuracy": 0.9}
    assert baseline.blessed_at == "2026-11-01T10:00:00+00:00"
    assert not (home / "registry.json").exists()  # reading writes nothing
    assert "blessed.json: /runs/7/model.keras" in commands.list_models(str(home))


def test_migration_keeps_the_version_folders_and_the_blessing_record_until_a_blessed_version(home):
    (home / "blessed.json").write_text(json.dumps({"model": "/runs/7/model.keras", "metrics": {}}))
    registry = Registry(str(home))
    record = registry.read()
    assert [(v.version, v.evaluation.verdict) for v in record.versions] == [(1, "unknown"), (2, "unknown"),
                                                                            (3, "unknown")]
    assert registry.next_version() == 4
    registry.promote(3, "production")  # a version of unknown blessing may be promoted
    assert json.loads((home / "registry.json").read_text())["blessed_json"]["model"] == "/runs/7/model.keras"
    # production's version has no Keras model on record, so it cannot be evaluated again: the record stays
    assert registry.baseline().why == "blessed.json"
    add_versions(home, 4)
    registry.register(4, blessed(0.97, "/runs/8/model.keras"))
    assert registry.baseline().model == "/runs/8/model.keras"


def test_registering_completes_a_version_the_migration_found(home):
    registry = Registry(str(home))
    registry.register(3, blessed(0.9), LINEAGE)  # 3 is on disk: the migration found it, this completes it
    assert registry.get(3).evaluation.verdict == "blessed"
    with pytest.raises(RegistryError, match="version 3 is already registered"):
        registry.register(3, blessed(0.8))


def test_bad_input_is_a_clear_error_and_changes_nothing(home):
    registry = Registry(str(home))
    registry.register(1, blessed(0.9))
    registry.register(2, Evaluation("not blessed", {"accuracy": 0.4}))
    registry.promote(1, "production")
    add_versions(home, 5)
    before = (home / "registry.json").read_bytes(), (home / "labels.json").read_bytes()
    cases = [
        (lambda: registry.resolve("staging"), UnknownAlias, "no alias 'staging' for penguins \\(aliases: production"),
        (lambda: registry.rollback("staging"), UnknownAlias, "no alias 'staging'"),
        (lambda: registry.promote(9, "production"), UnknownVersion, "no version 9 of penguins \\(registered: 1, 2"),
        (lambda: registry.promote(5, "production"), UnknownVersion, "no version 5"),  # on disk, not registered
        (lambda: registry.register(7), UnknownVersion, "penguins/7/saved_model.pb: not there"),
        (lambda: registry.promote(2, "production"), RegistryError, "version 2 of penguins is not blessed"),
        (lambda: registry.promote(1, "Prod"), RegistryError, "alias 'Prod': expected 2-128 characters"),
        (lambda: registry.promote(1, "v2"), RegistryError, "'v<number>' names a version"),
        (lambda: registry.rollback("production"), NoEarlierVersion, "no earlier version"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message) as raised:
            call()
        assert isinstance(raised.value, TfpipeError)
        assert str(home) in str(raised.value) or str(raised.value).startswith("alias '")  # names where, or what
        assert ((home / "registry.json").read_bytes(), (home / "labels.json").read_bytes()) == before
    registry.promote(2, "production", force=True)
    assert registry.resolve("production") == 2


def test_a_version_whose_folder_is_gone_is_not_promoted(home):
    registry = Registry(str(home))
    registry.register(1, blessed(0.9))
    (home / "1" / "saved_model.pb").unlink()
    with pytest.raises(UnknownVersion, match="penguins/1/saved_model.pb: not there"):
        registry.promote(1, "production")


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not valid JSON"),
    ("[]", "expected a JSON object"),
    ('{"format": 9, "versions": [], "aliases": {}}', "format 9; this tfpipe reads format 1"),
    ('{"format": 1, "versions": [{"version": "one"}], "aliases": {}}', "versions\\[0\\].version: expected int"),
    ('{"format": 1, "versions": [], "aliases": {"production": {"history": [{"version": 4, "action": "promote"}]}}}',
     "aliases.production names version 4, which is not in versions"),
    ('{"format": 1, "versions": [{"version": 1}], "aliases": {"production": {"history": '
     '[{"version": 1, "action": "rollback"}]}}}', "a rollback to version 1 that the alias never pointed at"),
])
def test_a_corrupt_registry_is_an_error_naming_the_file_and_is_left_alone(home, content, message):
    (home / "registry.json").write_text(content)
    registry = Registry(str(home))
    for call in (registry.read, lambda: registry.promote(1, "production"), registry.baseline):
        with pytest.raises(CorruptRegistry, match=message) as raised:
            call()
        assert str(home / "registry.json") in str(raised.value)
    assert (home / "registry.json").read_text() == content
    assert not (home / "labels.json").exists()


def test_a_corrupt_blessing_record_is_an_error_not_an_empty_registry(home):
    (home / "blessed.json").write_text("{oops")
    with pytest.raises(CorruptRegistry, match="blessed.json: unreadable blessing record"):
        Registry(str(home)).baseline()


def test_evaluation_read_from_the_evaluate_steps_output(tmp_path):
    out = tmp_path / "evaluate"
    out.mkdir()
    # As an early evaluate step wrote them: no examples, split or slices yet, a blessing without its verdict.
    (out / "metrics.json").write_text(json.dumps({
        "model": "/runs/1/model.keras", "task": "classification",
        "overall": {"count": 50, "accuracy": 0.9, "auc": 0.97, "r2": None,
                    "per_class": {"a": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 50}}}}))
    (out / "blessing.json").write_text(json.dumps({"blessed": True, "checks": []}))
    evaluation = Evaluation.read(str(out))
    assert evaluation == Evaluation("blessed", {"accuracy": 0.9, "auc": 0.97}, "/runs/1/model.keras",
                                    "classification", str(out))
    (out / "blessing.json").write_text(json.dumps({"blessed": True, "verdict": "blesed", "checks": []}))
    with pytest.raises(RegistryError, match=r"evaluate: not an evaluate step's output \(RecordError: .*blessing.json"
                                            r"\.verdict: expected one of 'blessed', 'not blessed', 'unchecked', "
                                            r"got 'blesed'\)"):
        Evaluation.read(str(out))
    (out / "blessing.json").unlink()
    with pytest.raises(RegistryError, match="evaluate: not an evaluate step's output"):
        Evaluation.read(str(out))


def test_the_table_and_the_command_functions(home):
    registry = Registry(str(home))
    registry.register(1, blessed(0.91), LINEAGE)
    registry.register(2, Evaluation("not blessed", {"accuracy": 0.5, "loss": 2.0}))
    registry.register(3, blessed(0.95), LINEAGE)
    promoted = commands.promote_model(str(home), 1, "production")
    assert promoted.startswith("penguins: production -> version 1 (new alias)")
    assert commands.promote_model(str(home), 3, "production").startswith("penguins: production -> version 3 (was 1)")
    assert commands.promote_model(str(home), 3, "candidate").startswith("penguins: candidate -> version 3")
    table = commands.list_models(str(home))
    lines = table.splitlines()
    assert lines[0] == f"penguins  ({home / 'registry.json'}): 3 versions"
    header = [cell.strip() for cell in lines[1].split("  ") if cell.strip()]
    assert header == ["version", "aliases", "blessing", "accuracy", "loss", "data span", "created (UTC)"]
    assert lines[2].split()[:5] == ["3", "candidate,production", "blessed", "0.9500", "0.0500"]
    assert lines[3].split()[:6] == ["2", "-", "not", "blessed", "0.5000", "2.0000"]
    assert "data/span-3" in lines[4]
    assert "production: version 3, rollback to 1 (then none)" in table
    assert commands.rollback_model(str(home), "production").startswith(
        "penguins: production -> version 1 (rolled back from 3)")


def test_next_version_counts_registered_and_on_disk_versions(tmp_path):
    home = add_versions(tmp_path / "m", 1, 2)
    registry = Registry(str(home))
    registry.register(2, blessed(0.9))
    assert registry.next_version() == 3
    assert Registry(str(tmp_path / "empty")).next_version() == 1


def test_other_remote_file_systems_are_refused():
    with pytest.raises(RegistryError, match="s3://b/m/registry.json: the registry needs a local folder"):
        Registry("s3://b/m")
