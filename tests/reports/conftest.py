"""Reports built once per session from tiny data and models, and a headless chromium to look at them.

The tabular data has a string feature with missing values and a binary label,
so every report has "(missing)" to show and a threshold to tune; the image
data is noise with random labels, so the model is surely wrong somewhere and
the saliency maps have examples to explain.
"""

import shutil

import numpy as np
import pytest
from PIL import Image

from components import evaluate, whatif
from components.common.config import EvaluateConfig, ExportConfig, IngestConfig, WhatIfConfig
from components.export import run as export
from components.ingest import run as ingest
from tests.components.conftest import trained
from tests.conftest import people_rows, write_csv

CHROMIUM = shutil.which("chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")  # one Playwright at a time: a module's tests share it, then it closes
def browser():
    if CHROMIUM is None:
        pytest.fail("needs chromium (Debian's package): run `make host` (tests/setup-host.sh), which installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def people_examples(tmp_path_factory):
    """300 people: age, income, city (every 5th missing), label "over 50"."""
    root = tmp_path_factory.mktemp("people")
    header, rows = people_rows(300)
    rows = [[age, income, "" if i % 5 == 0 else city, int(age > 50)] for i, (_, age, income, city, _) in
            enumerate(rows)]
    ingest(IngestConfig(source=str(write_csv(root / "people.csv", header[1:], rows)), label="label"),
           str(root / "examples"))
    return str(root / "examples")


@pytest.fixture(scope="session")
def noise_examples(tmp_path_factory):
    """120 8x8 grey images of noise in three classes."""
    root = tmp_path_factory.mktemp("noise")
    rng = np.random.default_rng(0)
    for i in range(120):
        path = root / "png" / "abc"[i % 3] / f"{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8), mode="L").save(path)
    ingest(IngestConfig(source=str(root / "png")), str(root / "examples"))
    return str(root / "examples")


@pytest.fixture(scope="session")
def people_model(tmp_path_factory, people_examples):
    return trained(tmp_path_factory, people_examples, "functional", 2)


@pytest.fixture(scope="session")
def noise_model(tmp_path_factory, noise_examples):
    return trained(tmp_path_factory, noise_examples, "sequential", 1)


@pytest.fixture(scope="session")
def reports(tmp_path_factory, people_model, people_examples, noise_model, noise_examples):
    """Every report, as a path: evaluate (no thresholds) and what-if, for the tabular and the image model."""
    root = tmp_path_factory.mktemp("reports")
    for name, model, examples in (("people", people_model, people_examples), ("noise", noise_model, noise_examples)):
        out = root / name
        evaluate.run(EvaluateConfig(), model, examples, str(out / "evaluate"), str(out / "serving"))
        whatif.run(WhatIfConfig(fairness_feature="city" if name == "people" else "", saliency_examples=2,
                                counterfactuals=4, ice_examples=5, grid_points=5),
                   model, examples, str(out / "whatif"), EvaluateConfig())
    return {name: {step: root / name / step / "report.html" for step in ("evaluate", "whatif")}
            for name in ("people", "noise")}


@pytest.fixture(scope="session")
def people_home(tmp_path_factory, people_model, people_examples):
    """`<base>/people` holding version 1 of the tabular model, for the What-If page."""
    home = tmp_path_factory.mktemp("serving") / "people"
    export(ExportConfig(model_name="people"), people_model, people_examples, str(home))
    return home


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory):
    return tmp_path_factory.mktemp("screenshots")
