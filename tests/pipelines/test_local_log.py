"""kfp.local's console output, read in one place (pipelines.targets.local_log), against lines kfp 2.17.3 printed."""

import io

import kfp

from pipelines.targets import local_log

# Captured from `tfpipe run` and from a failing pipeline under kfp.local 2.17.3, colours included.
STATUS = [
    "03:10:39.709 - INFO - Running pipeline: \x1b[95m'tfpipe-digits'\x1b[0m",
    "03:10:39.720 - INFO - Executing task \x1b[96m'ingest'\x1b[0m",
    "03:10:49.742 - INFO - Task \x1b[96m'ingest'\x1b[0m finished with status \x1b[92mSUCCESS\x1b[0m",
    "03:12:17.373 - INFO - Pipeline \x1b[95m'tfpipe-digits'\x1b[0m finished with status \x1b[92mSUCCESS\x1b[0m",
]
OTHER = [
    "03:10:39.720 - INFO - Streamed logs:",
    "    [KFP Executor 2026-12-01 03:10:39,834 INFO]: Got executor_input:",
    "03:26:58.650 - INFO - Task \x1b[96m'fine'\x1b[0m outputs:",
    "    Output: 'ok'",
    "--------------------------------------------------------------------------------",
]
FAILED = ("Pipeline \x1b[95m'cap'\x1b[0m finished with status \x1b[91mFAILURE\x1b[0m. Inner task failed: "
          "\x1b[96m'boom'\x1b[0m inside \x1b[96m'exit-handler-1'\x1b[0m.")


def test_the_patterns_are_those_of_the_installed_kfp():
    assert kfp.__version__ == "2.17.3", (
        f"kfp is {kfp.__version__}: check that kfp.local still prints the lines above (run a pipeline with "
        "`tfpipe run --verbose`, make one step fail) and update them, pipelines/targets/local_log.py, and "
        "pipelines/executor.py's KFP_COMMAND, then this version")


def test_status_lines_and_the_failed_task():
    assert all(local_log.is_status(line) for line in STATUS)
    assert not any(local_log.is_status(line) for line in OTHER)
    assert local_log.failed_task(FAILED) == "boom"
    assert local_log.failed_task("DockerRunner selected but docker is not installed.") is None
    assert local_log.plain(STATUS[1]) == "03:10:39.720 - INFO - Executing task 'ingest'"


def test_the_log_keeps_everything_and_shows_status_lines(tmp_path):
    console = io.StringIO()
    log = local_log.Log(tmp_path / "pipeline.log", console, verbose=False)
    text = "\n".join(STATUS[:2] + OTHER + STATUS[2:]) + "\n"
    for piece in (text[:50], text[50:51], text[51:]):  # kfp writes in pieces, not whole lines
        log.write(piece)
    log.close()
    assert console.getvalue() == "\n".join(STATUS) + "\n"
    assert (tmp_path / "pipeline.log").read_text() == text
