"""Each example config's header tells the truth: the commands it says to run are run, as written, in a folder
holding the example data (`tfpipe example-data`, which the headers name), and what the header says they reach
is read from the header and checked against what they wrote.

Two documented changes keep this cheap, and neither touches a claim: every `tfpipe run` gets
`--set deploy.infra_check=false` (the infra check starts a server of its own; tests/components/serve/test_deploy.py
tests it), and `tfpipe tune` gets `--set train.epochs=1` (trials are checked to run and be ranked, not to learn).
`make run` is not run (it installs the venv first): its recipe, as `make -n` prints it, must be the `tfpipe run`
line the header gives next to it. How long a header says a run takes is not checked (no clock in tests).
"""

import csv
import json
import math
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from components.common import config as config_lib
from components.common.config import ServeConfig
from components.common.model_loading import load_model
from components.common.registry import Registry
from components.common.schema import Schema
from components.serve.client import RestClient
from components.serve.server import running
from pipelines import summary
from pipelines.targets.local_log import ANSI
from tests.conftest import ROOT
from tests.pages import assert_evaluation_report_shows, assert_whatif_report_shows
from tests.pipelines.test_cli import assert_tensorboard_serves, step_commands_on
from tests.served import assert_served_as_keras

CONFIGS = ROOT / "pipelines" / "configs"
TFPIPE = str(Path(sys.executable).with_name("tfpipe"))
CHEAP = {"run": ["--set", "deploy.infra_check=false"], "tune": ["--set", "train.epochs=1"]}
ABOUT = 0.03  # "about 0.97": within this
WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6}


def header(config: Path) -> str:
    """The comment block the config opens with, without its '#'s."""
    lines = []
    for line in config.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].removeprefix(" "))
    return "\n".join(lines)


def commands(text: str) -> list[str]:
    """The header's indented commands (`tfpipe ...`, `make ...`; a line ending in a backslash goes on), without
    their trailing comments."""
    found, going_on = [], False
    for line in text.splitlines():
        if going_on:
            found[-1] = found[-1][:-1] + line.strip()
        elif re.match(r"\s{2,}(tfpipe|make) ", line):
            found.append(re.sub(r"\s+#.*$", "", line.strip()))
        going_on = bool(found) and found[-1].endswith("\\")
    return found


def claim(text: str, pattern: str) -> tuple[str, ...]:
    """The groups of `pattern` in the header (newlines read as spaces); the test fails if the header lost it."""
    found = re.search(pattern, " ".join(text.split()))
    assert found, f"the header no longer says {pattern!r}"
    return found.groups()


def number(text: str) -> float:
    return float(text.replace(",", ""))


class Ran:
    """The header's commands run in `folder`, each with its output; `<run>` is the last `tfpipe run`'s folder."""

    def __init__(self, text: str, folder: Path):
        self.text, self.folder, self.outputs, self.runs = text, folder, {}, []
        for command in commands(text):
            if command.startswith("make "):
                self.outputs[command] = self._make(command)
                continue
            args = shlex.split(command.replace("<run>", self.runs[-1].name if self.runs else "<run>"))
            args += CHEAP.get(args[1], [])
            done = subprocess.run([TFPIPE, *args[1:]], cwd=folder, capture_output=True, text=True, timeout=900)
            assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stderr[-3000:]}"
            self.outputs[command] = output = ANSI.sub("", done.stdout)
            if args[1] == "run":
                self.runs.append(Path(re.search(r"^run (\S+)$", output, re.MULTILINE).group(1)))

    def _make(self, command: str) -> str:
        """`make -n`: the recipe make would run, which must be the header's `tfpipe run` line."""
        done = subprocess.run(["make", "-n", "--no-print-directory", "-C", str(ROOT), *shlex.split(command)[1:]],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def summary_rows(self, run: Path) -> tuple[float, ...]:
        """(rows, train, eval, test) from the run's printed summary."""
        [output] = [o for o in self.outputs.values() if f"run {run}\n" in o]
        found = re.search(r"rows\s+([\d,]+) \(train ([\d,]+), eval ([\d,]+), test ([\d,]+)\)", output)
        return tuple(map(number, found.groups()))


def assert_test_accuracy_as_claimed(done: Ran, run: Path) -> None:
    claimed = number(*claim(done.text, r"test accuracy about (\d+(?:\.\d+)?)"))
    metrics = json.loads((summary.outputs_of(run).evaluation / "metrics.json").read_text())
    assert metrics["overall"]["accuracy"] == pytest.approx(claimed, abs=ABOUT)


@pytest.fixture(scope="module")
def example_data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("example")
    done = subprocess.run([TFPIPE, "example-data", "--out", "data"], cwd=folder, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return folder / "data"


def ran(config: str, example_data: Path, tmp_path: Path) -> Ran:
    """The config's header commands, run in a folder of their own beside the example data and the configs."""
    (tmp_path / "data").symlink_to(example_data)
    (tmp_path / "pipelines").symlink_to(ROOT / "pipelines")
    return Ran(header(CONFIGS / config), tmp_path)


def test_the_example_data_is_what_the_headers_read(example_data):
    assert len(list((example_data / "digits").glob("*/*.png"))) == 1797
    with open(example_data / "penguins" / "penguins.csv", newline="") as f:
        penguins = list(csv.DictReader(f))
    assert len(penguins) == 344
    assert {p["species"] for p in penguins} == {"Adelie", "Chinstrap", "Gentoo"}


def test_every_config_has_its_header_checked():
    assert {p.name for p in CONFIGS.glob("*.yaml")} == set(CHECKS)
    for name in CHECKS:
        assert any(c.startswith("tfpipe run --config pipelines/configs/" + name) for c in commands(header(
            CONFIGS / name))), name


def check_digits(done: Ran) -> None:
    [make, run] = done.outputs
    assert done.outputs[make].splitlines()[-1].endswith(run.removeprefix("tfpipe")), done.outputs[make]
    [first] = done.runs
    assert done.summary_rows(first) == tuple(map(number, claim(
        done.text, r"\(([\d,]+) images -> train ([\d,]+) / eval ([\d,]+) / test ([\d,]+)\)")))
    eval_accuracy = json.loads((summary.outputs_of(first).model / "metrics.json").read_text())["accuracy"]
    assert eval_accuracy == pytest.approx(number(*claim(done.text, r"eval accuracy about (\d+(?:\.\d+)?)")),
                                          abs=ABOUT)


def check_penguins(done: Ran) -> None:
    [first] = done.runs
    rows, missing, sex, measured = map(int, claim(
        done.text, r"\((\d+) rows; (\d+) have missing values: sex is missing in (\d+), read as an empty string, and "
                   r"the four measurements in (\d+), read as the column mean\)"))
    assert done.summary_rows(first)[0] == rows
    with open(done.folder / "data" / "penguins" / "penguins.csv", newline="") as f:
        assert sum(any(v in ("", "NA") for v in row.values()) for row in csv.DictReader(f)) == missing
    schema = Schema.read(str(summary.outputs_of(first).examples))
    assert (schema.feature("sex").stats["missing"], schema.feature("sex").default_value) == (sex, "")
    for name in ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"):
        feature = schema.feature(name)
        assert feature.stats["missing"] == measured
        assert feature.default_value == pytest.approx(feature.stats["mean"], abs=0.5)  # integers round it
    assert_test_accuracy_as_claimed(done, first)
    outputs = summary.outputs_of(first)
    shown = assert_evaluation_report_shows(outputs.evaluation, "BLESSED")
    assert {r["feature"] for r in shown["Slices"]} == {"island", "sex", "body_mass_g"}  # the config's slices
    registered = Registry(str(done.folder / "runs" / "serving" / "penguins")).get(1)
    assert registered.blessed
    kept = done.folder / "runs" / "serving" / "penguins" / "1" / "assets.extra" / "keras" / "model.keras"
    assert registered.evaluation.model == str(kept.relative_to(done.folder))  # with the version, as runs_root says
    assert kept.read_bytes() == (outputs.model / "model.keras").read_bytes()
    step_commands_on(outputs.examples, outputs.model, done.folder)
    assert f"tfpipe tensorboard {first}" in done.outputs[commands(done.text)[0]]
    assert_tensorboard_serves(first, {"train/train", "train/validation", "evaluate/evaluation"})


def check_tuned(done: Ran) -> None:
    """A run and a tuning of its examples: the test accuracy the header gives, and trials ranked: as many as the
    header says the pipeline tried, which is every point of the config's grid."""
    [first] = done.runs
    assert_test_accuracy_as_claimed(done, first)
    tune = next(o for c, o in done.outputs.items() if c.startswith("tfpipe tune"))
    trials = int(re.search(r"^(\d+) trials \(0 failed\); best ", tune, re.MULTILINE).group(1))
    in_pipeline = re.search(r"tuned\s+best of (\d+) trials", done.outputs[commands(done.text)[0]]).group(1)
    claimed = WORDS[claim(done.text, r"The whole pipeline, (\w+) tuning trials included")[0]]
    assert trials == int(in_pipeline) == claimed
    config = config_lib.load(done.folder / commands(done.text)[0].split("--config ")[1].split()[0])
    assert claimed == math.prod(len(domain.values) for domain in config.tune.space.values())


def check_wide_deep(done: Ran) -> None:
    """The wide & deep module (its own registered CrossLayer) from ingest to serving: tuned, and the best of its
    values is what was trained, served on both protocols as Keras predicts."""
    import keras

    check_tuned(done)
    [first] = done.runs
    outputs = summary.outputs_of(first)
    best = json.loads((outputs.model / "training.json").read_text())["params"]
    assert best["cross_layers"] in (1, 2)
    assert isinstance(best["cross_layers"], int)  # as the space wrote it
    assert best["dropout"] == 0.1  # the config's: the space tunes cross layers only
    crosses = [layer for layer in load_model(str(outputs.model)).layers if type(layer).__name__ == "CrossLayer"]
    assert len(crosses) == best["cross_layers"]
    assert keras.saving.get_registered_object("wide_deep>CrossLayer") is not None
    assert_served_as_keras(str(done.folder / "runs" / "serving" / "penguins_wide_deep"), "penguins_wide_deep",
                           str(outputs.examples), str(outputs.model))


def check_reviews(done: Ran) -> None:
    """The text classifier (its own TextVectorization) from ingest to serving, tuned, served on both protocols."""
    check_tuned(done)
    [first] = done.runs
    assert done.summary_rows(first)[0] == number(*claim(done.text, r"([\d,]+) reviews generated"))
    outputs = summary.outputs_of(first)
    schema = Schema.read(str(outputs.examples))
    assert (schema.feature("review").type, schema.feature("product").type) == ("text", "string")
    assert json.loads((outputs.model / "training.json").read_text())["params"]["ngrams"] in (1, 2)  # the best's
    model = load_model(str(outputs.model), schema)
    assert model.get_layer("vectorize").get_config()["output_mode"] == "tf_idf"
    assert_served_as_keras(str(done.folder / "runs" / "serving" / "reviews_text"), "reviews_text",
                           str(outputs.examples), str(outputs.model))
    assert_whatif_report_shows(first / "whatif" / "analysis")


def check_retraining(done: Ran) -> None:
    day1, day2, day3 = done.runs
    first, second, third = (done.outputs[c] for c in commands(done.text) if c.startswith("tfpipe run"))
    assert "blessed   yes" in first
    assert "data      validated: first run" in first
    # Day 2 validates against day 1's statistics, kept with version 1, and starts from production's weights.
    assert "data      validated: no failing anomalies" in second
    assert "(against runs/serving/churn/1/assets.extra)" in second
    warm = json.loads((summary.outputs_of(day2).model / "training.json").read_text())["warm_start"]
    assert warm["source"].endswith("runs/serving/churn/1/assets.extra/keras/model.keras")
    at_least, max_worse, below = map(number, claim(
        done.text, r"test AUC is at least ([\d.]+) and no more than ([\d.]+) below production's on the same test "
                   r"split \(evaluate.thresholds.auc; on the example day 2 is promoted about (\d+(?:\.\d+)?) below it"))
    blessing = json.loads((summary.outputs_of(day2).evaluation / "blessing.json").read_text())
    [floor, change] = blessing["checks"]
    assert (floor["threshold"], change["threshold"], blessing["verdict"]) == (at_least, max_worse, "blessed")
    assert change["baseline"] - change["value"] == pytest.approx(below, abs=0.005)
    # Day 3 stops at validate, naming what changed; production stays on day 2's model.
    assert "NOT validated: support_calls: missing_feature; monthly_charges: drift; plan: drift" in third
    assert "stopped   before training" in third
    findings = json.loads((day3 / "validate" / "anomalies" / "anomalies.json").read_text())["findings"]
    assert {f["feature"] for f in findings if f["verdict"] == "fail"} == {"support_calls", "monthly_charges", "plan"}
    assert not (day3 / "train").exists(), "training ran on data that failed validation"
    listed = done.outputs["tfpipe models list --base runs/serving/churn"]
    assert "production: version 2, rollback to 1" in listed
    home = done.folder / "runs" / "serving" / "churn"
    assert Registry(str(home)).get(2).lineage.examples == "runs/serving/churn/2/assets.extra"  # as runs_root says
    assert Registry(str(home)).get(1).lineage.data_span.endswith("2026-11-01/churn.csv")
    with running(ServeConfig(model_base=str(home), rest_port=0, grpc_port=0)) as server:  # the registry's labels
        row = {"tenure_months": 12, "monthly_charges": 70.0, "support_calls": 2, "plan": "basic", "region": "east"}
        answer = RestClient(server.rest_url, "churn").predict([row], label="production")
    assert len(answer["predictions"][0]["probabilities"]) == 2


CHECKS = {"digits.yaml": check_digits, "penguins.yaml": check_penguins, "penguins_wide_deep.yaml": check_wide_deep,
          "retraining.yaml": check_retraining, "reviews_text.yaml": check_reviews}


@pytest.mark.slow
@pytest.mark.parametrize("config", sorted(CHECKS))
def test_the_header_commands_reach_what_the_header_says(config, example_data, tmp_path):
    CHECKS[config](ran(config, example_data, tmp_path))
