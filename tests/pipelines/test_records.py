"""The ops' records survive KFP's metadata as the same types, and a renamed field fails loudly."""

import json

import pytest

from pipelines.records import EvaluateRecord, ExportRecord, IngestRecord, RecordError, TrainRecord


def test_records_come_back_as_written_after_kfp_made_every_number_a_double(tmp_path):
    written = [IngestRecord(1.5, 1797, 0, {"train": 1431, "eval": 180, "test": 186}, "", ""),
               TrainRecord(20.0, {"loss": 0.1, "accuracy": 0.98}),
               EvaluateRecord(4.0, True, "blessed", {"accuracy": 0.97, "count": 186.0}, "accuracy 0.9700", "/r/ex",
                              "/r/model"),
               ExportRecord(2.0, "/s/digits/1", 1, ("serving_default", "classification"))]
    for record in written:
        metadata = json.loads(json.dumps(record.to_json()), parse_int=float)  # as protobuf's Struct keeps them
        (tmp_path / record.TASK).mkdir()
        (tmp_path / record.TASK / "executor_output.json").write_text(json.dumps(
            {"artifacts": {record.ARTIFACT: {"artifacts": [{"name": record.ARTIFACT, "metadata": metadata}]}}}))
    read = [type(record).read(tmp_path) for record in written]
    assert read == written
    assert isinstance(read[0].rows, int)
    assert isinstance(read[0].splits["test"], int)
    assert isinstance(read[3].version, int)
    assert isinstance(read[3].signatures, tuple)


def test_a_task_that_did_not_run_has_no_record(tmp_path):
    assert ExportRecord.read(tmp_path) is None


def test_a_missing_field_is_an_error_that_names_it():
    plain = TrainRecord(1.0, {"loss": 0.5}).to_json()
    del plain["metrics"]
    with pytest.raises(RecordError, match="TrainRecord has no metrics"):
        TrainRecord.from_json(plain)
