"""kfp.local's console output: the one place tfpipe reads it.

kfp.local says what it does in lines for people, coloured with ANSI codes:

    03:10:39.720 - INFO - Executing task 'ingest'
    03:10:49.742 - INFO - Task 'ingest' finished with status SUCCESS

between them each task's own output, and when a step fails it raises
RuntimeError("Pipeline 'tfpipe-digits' finished with status FAILURE. Inner task
failed: 'train' inside 'exit-handler-1'."). `tfpipe run` shows the status lines
on the console and keeps everything in the run's `pipeline.log`; the failed
task's name comes from the exception only when the step could not record its
failure itself (pipelines.records.StepFailure: a process killed by a signal).
These patterns are kfp 2.17.3's; tests/pipelines/test_local_log.py pins them.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;]*m")
STATUS_LINE = re.compile(r"^[\d:.]+ - \w+ - (Running pipeline|Executing task|Task .* finished|Pipeline .* finished)")
FAILED_TASK = re.compile(r"Inner task failed: '([^']+)'")


def plain(text: str) -> str:
    """`text` without its colours."""
    return ANSI.sub("", text)


def is_status(line: str) -> bool:
    """Whether `line` says which task runs, or how a task or the pipeline ended."""
    return bool(STATUS_LINE.match(plain(line)))


def failed_task(message: str) -> str | None:
    """The innermost failed task named by kfp.local's exception, if it names one."""
    found = FAILED_TASK.search(plain(message))
    return found[1] if found else None


class Log(io.TextIOBase):
    """kfp.local's output: all of it to a file, the status lines (or all, when verbose) to the console."""

    def __init__(self, path: Path, console, verbose: bool):
        self.path = path
        self.file = open(path, "w")
        self.console, self.verbose = console, verbose
        self.partial = ""

    def write(self, text: str) -> int:
        if not self.file.closed:  # a logging handler made during the run may outlive it
            self.file.write(text)
        if self.verbose:
            self.console.write(text)
        self.partial += text
        *complete, self.partial = self.partial.split("\n")
        if not self.verbose:
            self.console.writelines(line + "\n" for line in complete if is_status(line))
        return len(text)

    def flush(self) -> None:
        if not self.file.closed:
            self.file.flush()
        self.console.flush()

    def close(self) -> None:
        """Closes the file; the console stays open (it is the process's stdout)."""
        if not self.file.closed:
            self.file.close()
