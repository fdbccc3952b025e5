"""`python3 -m pipelines.executor kfp.dsl.executor_main ARGS...`: how every op's process runs its step.

Each op's command (see `run_through_this`) runs kfp's executor module through
this one, which adds two things:

- The process ends as soon as the executor has written the step's outputs.
  After TensorFlow, Python's own teardown (freeing every module, native
  destructors) takes about 2 s and writes nothing anyone reads; `os._exit`
  after flushing skips it. Steps close their own files before they return.
- On a replica of a multi-worker train step other than the chief, the step's
  output files go to a temporary folder: every replica runs the same command.
- A step that fails leaves its error as a record (`StepFailure`, in
  `failure.json` beside its outputs), so that `tfpipe run` says which step
  failed and why without reading a traceback.

kfp's executor is named on the command line rather than imported here because
kfp.local's SubprocessRunner runs only commands that name it. Where `tfpipe run`
has a fork server running (its address in FORKSERVER), the step runs in a child
of that server, which has done the steps' slow imports already
(pipelines.targets.forkserver); elsewhere (containers, clusters) in this process.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import runpy
import socket
import sys
import traceback
from pathlib import Path
from typing import NoReturn

from components.common import tf_config
from pipelines.records import StepFailure

FORKSERVER = "TFPIPE_FORKSERVER"
STREAMS = (0, 1, 2)  # stdin, stdout and stderr, handed to the fork server's child
KFP_EXECUTOR = "kfp.dsl.executor_main"
# The line of the shell script kfp generates for a lightweight component that starts the executor.
KFP_COMMAND = f"python3 -m {KFP_EXECUTOR}"


def run_through_this(component):
    """The component, its command changed to start the executor through this module."""
    shell, flag, script, *source = component.component_spec.implementation.container.command
    if (shell, flag) != ("sh", "-ec") or script.count(KFP_COMMAND) != 1:
        raise RuntimeError(f"{component.name}: kfp's command for lightweight components changed (expected "
                           f"`sh -ec` and one `{KFP_COMMAND}`); pipelines/executor.py must follow it")
    script = script.replace(KFP_COMMAND, f"python3 -m {__name__} {KFP_EXECUTOR}")
    component.component_spec.implementation.container.command = [shell, flag, script, *source]
    return component


def main() -> NoReturn:
    """The op's process: its step runs in a child of the fork server where one answers, else here."""
    server = os.environ.get(FORKSERVER)
    if server:
        code = request(server, sys.argv[1:])
        if code is not None:
            os._exit(code)
    execute(sys.argv[1:])


def request(address: str, argv: list[str]) -> int | None:
    """Runs `execute(argv)` in a child of the fork server at `address` (pipelines.targets.forkserver), as if in
    this process; its exit status, or None when no server answers there."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        try:
            conn.connect(address)
        except OSError:
            return None
        body = json.dumps({"argv": argv, "env": dict(os.environ), "cwd": os.getcwd()}).encode()
        socket.send_fds(conn, [len(body).to_bytes(8, "big")], list(STREAMS))
        conn.sendall(body)
        status = b"".join(iter(lambda: conn.recv(64), b""))
    if not status:
        print("the fork server stopped before the step ended", file=sys.stderr, flush=True)
        return 1
    return int(status)


def execute(argv: list[str]) -> NoReturn:
    """Runs module `argv[0]` as the main module with the arguments `argv[1:]`, then ends the process:
    with status 0 when it returned, else with the failure recorded."""
    module, *args = argv
    if not tf_config.is_chief():
        args = _outputs_elsewhere(args)
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else int(e.code is not None)
    except BaseException as e:  # noqa: BLE001 - any failure of the step is recorded and ends it
        traceback.print_exc()
        _record(args, e)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


def _outputs_elsewhere(args: list[str]) -> list[str]:
    """The executor's arguments with its output files moved to a temporary folder.

    Every replica of a multi-worker train step (a Vertex CustomJob's pools, `tfpipe run --package`) runs
    this same command; the chief alone writes the model, and so the step's outputs: the others writing
    the same files at once could leave them torn.
    """
    import tempfile

    at = args.index("--executor_input") + 1 if "--executor_input" in args else 0
    if not at:
        return args
    executor_input = json.loads(args[at])
    outputs = executor_input.get("outputs", {})
    elsewhere = tempfile.mkdtemp(prefix="tfpipe-replica-outputs-")
    if "outputFile" in outputs:
        outputs["outputFile"] = f"{elsewhere}/executor_output.json"
    for name, parameter in outputs.get("parameters", {}).items():
        parameter["outputFile"] = f"{elsewhere}/{name}"
    return [*args[:at], json.dumps(executor_input), *args[at + 1:]]


def _record(args: list[str], error: BaseException) -> None:
    """Writes the failure beside the step's outputs, where kfp's executor input says they go."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--executor_input")
    executor_input = parser.parse_known_args(args)[0].executor_input
    if executor_input:
        outputs = Path(json.loads(executor_input)["outputs"]["outputFile"]).parent
        StepFailure(f"{type(error).__module__}.{type(error).__qualname__}", str(error)).write(outputs)


if __name__ == "__main__":
    main()
