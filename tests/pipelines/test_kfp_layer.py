"""The KFP layer stays light: compiling, submitting and scheduling load kfp and the config, never TensorFlow.

Each check runs in a fresh interpreter, since this test process has long since imported TensorFlow.
"""

import json
import subprocess
import sys

import yaml

from components.common import config as config_lib
from tests.conftest import ROOT

HEAVY = ("tensorflow", "keras", "pyarrow", "sklearn")


def heavy_modules_after(code: str) -> list[str]:
    """The heavy packages in sys.modules after `code` runs in a fresh interpreter."""
    check = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_building_and_compiling_the_pipeline_loads_no_tensorflow(tmp_path):
    assert heavy_modules_after(f"""
from kfp import compiler
from components.common import config
from pipelines import training
for source in ("data/digits", "gs://bucket/digits/span-{{SPAN}}"):
    cfg = config.load("pipelines/configs/digits.yaml", [f"ingest.source={{source}}"])
    compiler.Compiler().compile(training.build(cfg), "{tmp_path}/p.yaml")
    compiler.Compiler().compile(training.build(cfg, vertex=True), "{tmp_path}/vertex.yaml")
""") == []


def test_what_tfpipe_run_does_around_the_steps_loads_no_tensorflow(tmp_path):
    """The source's fingerprint before the run, the summary after it, and each step's entry point."""
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    assert heavy_modules_after(f"""
from components.common import fingerprint
from pipelines import executor, ops, summary
from pipelines.targets import local
fingerprint.of_source("{tmp_path}/data.csv")
summary.lines(__import__("pathlib").Path("{tmp_path}"))
""") == []


def test_tfpipe_compile_is_quick(tmp_path):
    """Quick because it never loads TensorFlow or Keras (seconds of imports); the command runs as users type it."""
    probe = ("import sys; from pipelines import cli; code = cli.main(sys.argv[1:]); "
             "print(sorted({'tensorflow', 'keras'} & set(sys.modules))); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", probe, "compile", "--config", "pipelines/configs/digits.yaml",
                           "--out", str(tmp_path / "p.yaml")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"pipeline tfpipe-digits -> {tmp_path / 'p.yaml'}\n[]\n"
    compiled = yaml.safe_load((tmp_path / "p.yaml").read_text())
    assert compiled["pipelineInfo"]["name"] == "tfpipe-digits"
    assert set(compiled["deploymentSpec"]["executors"]) == {  # the DAG of a run without tuning
        f"exec-{step}" for step in ("ingest", "validate", "train", "evaluate", "export", "serve", "whatif", "summary")}
    config = compiled["root"]["inputDefinitions"]["parameters"]["config"]["defaultValue"]
    assert json.loads(config) == json.loads(config_lib.load(ROOT / "pipelines/configs/digits.yaml").to_json())
