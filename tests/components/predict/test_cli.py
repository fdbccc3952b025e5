"""`tfpipe predict` from the command line: what it prints, and exit 2 naming the flag, field, file or column."""

from __future__ import annotations

import shutil

import pyarrow.parquet as pq
import pytest

from components.data import reviews
from pipelines.cli import main
from tests.conftest import write_csv


def test_the_production_label_scores_and_says_what_it_did(penguins_home, penguins_examples, tmp_path, capsys):
    from components.common.registry import Registry

    home = shutil.copytree(penguins_home, tmp_path / "penguins")  # the session's home keeps no alias
    Registry(str(home)).promote(1, "production", force=True)
    out = tmp_path / "preds"
    assert main(["predict", "--model-base", str(home), "--label", "production",
                 "--examples", penguins_examples, "--out", str(out), "--keep", "island,sex"]) == 0
    printed = capsys.readouterr().out
    assert "rows scored by" in printed
    assert "version 1 (production)" in printed
    assert str(out) in printed
    assert pq.read_table(out).column_names[:4] == ["file", "line", "island", "sex"]


@pytest.mark.parametrize(("change", "named"), [
    (["--model-base", "{tmp}/nowhere"], "nowhere: no such folder"),
    (["--label", "staging"], "no alias 'staging'"),
    (["--version", "7"], "7/saved_model.pb: not there"),
    (["--keep", "colour"], "predict.keep: column(s) ['colour'] not in the examples"),
    (["--set", "predict.batch_size=0"], "predict.batch_size: expected an integer >= 1"),
    (["--out", "bq://just.two"], "--out: expected a folder or bq://project.dataset.table"),
    (["--out", "bq://p.d.t"], "--report: a BigQuery destination"),
    (["--report", "{tmp}/elsewhere"], "--report: only a bq:// --out needs one"),
])
def test_bad_input_is_exit_2_in_one_line_naming_what_is_wrong(penguins_home, penguins_examples, tmp_path, capsys,
                                                             change, named):
    given = {"--model-base": str(penguins_home), "--version": "1", "--examples": penguins_examples,
             "--out": str(tmp_path / "preds")}
    flags = dict(zip(change[::2], change[1::2], strict=True))
    if "--label" in flags:
        del given["--version"]
    argv = ["predict", *(x for k, v in {**given, **flags}.items() if k != "--set" for x in (k, v.format(tmp=tmp_path))),
            *(["--set", flags["--set"]] if "--set" in flags else [])]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ")
    assert named in err
    assert "\n" not in err
    assert not (tmp_path / "preds").exists()


def test_a_source_without_a_column_the_model_takes_is_named_with_its_file(reviews_home, tmp_path, capsys):
    rows = [r[:2] + r[3:] for r in reviews.rows(20)]  # no helpful_votes
    source = write_csv(tmp_path / "new.csv", [h for h in reviews.HEADER if h != "helpful_votes"], rows)
    assert main(["predict", "--model-base", str(reviews_home), "--version", "1", "--source", str(source),
                 "--out", str(tmp_path / "preds")]) == 2
    err = capsys.readouterr().err
    assert f"{source}: the model's inputs ['helpful_votes'] not among its columns" in err


def test_a_source_that_is_not_there_and_the_missing_choice_are_named(penguins_home, tmp_path, capsys):
    assert main(["predict", "--model-base", str(penguins_home), "--version", "1", "--source",
                 str(tmp_path / "none.csv"), "--out", str(tmp_path / "p")]) == 2
    assert "none.csv does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["predict", "--model-base", str(penguins_home), "--source", "x.csv", "--out", str(tmp_path / "p")])
    assert exited.value.code == 2
    assert "one of the arguments --version --label is required" in capsys.readouterr().err
