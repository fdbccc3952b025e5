"""The labels file a server follows against the registry it renders, through the `tfpipe models` commands: what a
writer killed between its two writes leaves, a mistyped base, and many promotions at once."""

import json
import os
import subprocess
import sys
from pathlib import Path

from components.common.registry import Registry
from tests.components.registry.conftest import GATE, at_once, blessed
from tests.conftest import ROOT

TFPIPE = str(Path(sys.executable).with_name("tfpipe"))


def tfpipe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([TFPIPE, "models", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def test_labels_a_crash_left_behind_are_shown_and_a_promotion_that_changes_nothing_repairs_them(home):
    registry = Registry(str(home))
    for version in (1, 2):
        registry.register(version, blessed(0.9))
    registry.promote(1, "production")
    labels_then = (home / "labels.json").read_bytes()
    registry.promote(2, "production")
    (home / "labels.json").write_bytes(labels_then)  # as a promote killed after registry.json, before labels.json

    listed = tfpipe("list", "--base", str(home))
    assert listed.returncode == 0, listed.stderr
    assert "LABELS DISAGREE: production -> 1 in labels.json, 2 in the registry" in listed.stdout

    promoted = tfpipe("promote", "--base", str(home), "--version", "2")
    assert promoted.returncode == 0, promoted.stderr
    assert promoted.stdout.strip() == (f"penguins: production -> version 2 (already); labels in {home}/labels.json, "
                                       "repaired (production -> 1 in labels.json, 2 in the registry)")
    assert json.loads((home / "labels.json").read_text()) == {"production": 2}
    assert "DISAGREE" not in tfpipe("list", "--base", str(home)).stdout

    (home / "labels.json").unlink()  # killed before the first labels file was written
    rolled = tfpipe("rollback", "--base", str(home))
    assert rolled.returncode == 0, rolled.stderr
    assert rolled.stdout.strip().endswith("(rolled back from 2); labels in "
                                          f"{home}/labels.json, repaired (labels.json is missing or unreadable)")
    assert json.loads((home / "labels.json").read_text()) == {"production": 1}


def test_a_base_that_is_not_there_is_refused_and_nothing_is_created(tmp_path):
    typo = tmp_path / "serving" / "pengiuns"
    for args in (("list", "--base", str(typo)), ("list", "--base", str(typo), "--json"),
                 ("promote", "--base", str(typo), "--version", "1"), ("rollback", "--base", str(typo))):
        done = tfpipe(*args)
        assert done.returncode == 2, (args, done.stdout)
        assert done.stderr.splitlines() == [f"error: {typo}: no such folder; expected a model's folder of "
                                            "numbered versions, <base>/<name>"]
    assert not (tmp_path / "serving").exists()


def test_promotions_at_once_each_report_where_the_alias_was_under_the_lock(home):
    registry = Registry(str(home))
    registry.register(1, blessed(0.9))
    script = ("import sys; from components.common.registry_commands import promote_model; "
              f"{GATE}; print(promote_model(sys.argv[1], 1, 'live'))")
    outputs = at_once(script, [[str(home)]] * 8)  # every process promotes at the same moment
    said = sorted(output.split(" (")[1].split(")")[0] for output in outputs)
    assert said == ["already"] * 7 + ["new alias"]
