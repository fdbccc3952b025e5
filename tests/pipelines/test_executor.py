"""The ops' entry point: the step's process ends once its outputs are written, and a failure leaves a record."""

import contextlib
import io
import json

import pytest
from kfp import dsl, local

from pipelines import executor
from pipelines.records import StepFailure


def produce(marker: str) -> str:
    """Asks Python's teardown to write `marker`: a process that ends at once never does."""
    import atexit

    atexit.register(lambda: open(marker, "w").close())
    return "made"


def fail(message: str):
    from components.common.errors import TfpipeError

    raise TfpipeError(message)


def component(function):
    return executor.run_through_this(dsl.component(function, base_image="python:3.11", install_kfp_package=False))


@pytest.fixture
def kfp_local(tmp_path):
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "runs"),
               raise_on_error=False)
    with contextlib.redirect_stdout(io.StringIO()):  # kfp.local prints every task's output
        yield tmp_path


def test_the_step_ends_after_its_outputs_are_written(kfp_local):
    marker = kfp_local / "teardown-ran"
    task = component(produce)(marker=str(marker))
    assert task.output == "made"
    assert not marker.exists()


def test_a_failed_step_records_its_error_beside_its_outputs(kfp_local):
    component(fail)(message="no rows left")
    [path] = (kfp_local / "runs").rglob(StepFailure.FILE)
    assert path.parent.name == "fail"
    failure = StepFailure.read(path)
    assert str(failure) == "components.common.errors.TfpipeError: no rows left"
    assert json.loads(path.read_text()) == {"error": "components.common.errors.TfpipeError", "message": "no rows left"}


def test_a_changed_kfp_command_is_an_error_not_a_silent_skip():
    op = dsl.component(produce, base_image="python:3.11", install_kfp_package=False)
    op.component_spec.implementation.container.command[2] = "python3 -m something.else"
    with pytest.raises(RuntimeError, match="kfp's command for lightweight components changed"):
        executor.run_through_this(op)
