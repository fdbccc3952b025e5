"""A compiled pipeline file (what `tfpipe compile`, `submit` and `schedule` send) run on this machine.

`tfpipe run --package FILE` runs the file itself, not the Python DAG, so what a cluster would run is what
runs here: the same components, commands, conditions, caching and parameter defaults. kfp.local runs
every lightweight step as it is. What only a cluster has is rehearsed:

- A Vertex file's train step is a Google Cloud Pipeline Components CustomJob, whose launcher asks the
  Vertex API to start the worker pools. Here its executor becomes the pools themselves: the train
  component's own container command once per replica (`components.train.replicas`), with the
  `CLUSTER_SPEC` and `TF_CONFIG` Vertex sets, in the step's process or container. The job's
  `gcp_resources` output (the CustomJob's resource name on Vertex) is left unset: there is no job.
- A KFP file whose config asks for `runtime.launcher: tfjob` has a train step that, on a cluster, creates a
  Kubeflow TFJob through the Kubernetes API (`components.train.tfjob`) and awaits it. Here the step's
  container gets one more environment variable, `TFPIPE_TFJOB_OPERATOR=local`, which the rehearsed file
  shows: the step writes the config beside its output and makes the same TFJob (`tfjob.manifest`), and the
  local operator (`components.train.launcher.run_tfjob`) runs it: one child process of the step per replica
  of each replica spec (Chief, Worker), in the step's container with `docker`, each running the manifest's
  container command with the `TF_CONFIG` the training operator sets (the replicas' service addresses
  mapped to free 127.0.0.1 ports), supervised as `--workers` is; a failed replica fails the step with a
  TrainError naming it, as the awaited job's failure would.
- With `docker`, the config's local paths are made absolute (the run folder and the data are mounted at
  their own paths), as `tfpipe run --docker` does; the parameters carry that config, nothing else changes.

What it cannot show is what only a live project or cluster has: IAM and service accounts, quotas,
machine types and accelerators, Vertex's control plane and KFP's API server; for a TFJob, the Kubernetes
API and the training operator themselves (the job's creation, its pods, their services' DNS names and
the image's `tfpipe-runner` service account), and pods that reach only gs://, where the local replicas
share this machine's files.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from components.common.config import RunConfig
from components.common.errors import TfpipeError
from components.train import tfjob

CUSTOM_JOB_LAUNCHER = "google_cloud_pipeline_components.container.v1.custom_job.launcher"
REPLICAS = "components.train.replicas"
TRAIN_STEP = ("--function_to_execute", "train")  # the train op's executor arguments


class PackageError(TfpipeError):
    """The file is not a pipeline that tfpipe compiled."""


@dataclass(frozen=True)
class Package:
    """A compiled pipeline: its IR, the name kfp.local names its run folders by, and the config it carries."""

    path: Path
    ir: dict
    name: str
    config: RunConfig

    @classmethod
    def read(cls, path: str | Path) -> Package:
        path = Path(path)
        try:
            ir = yaml.safe_load(path.read_text())
            parameters = ir["root"]["inputDefinitions"]["parameters"]
            config = RunConfig.from_json(parameters["config"]["defaultValue"])
            name = ir["pipelineInfo"]["name"]
        except FileNotFoundError:
            raise PackageError(f"{path}: no such file; expected a pipeline file from `tfpipe compile`") from None
        except (yaml.YAMLError, KeyError, TypeError, ValueError) as e:
            raise PackageError(f"{path}: not a pipeline tfpipe compiled (a KFP IR YAML whose `config` parameter "
                               f"holds a tfpipe config): {type(e).__name__}: {e}") from None
        return cls(path, ir, name, config)

    @property
    def parameters(self) -> set[str]:
        return set(self.ir["root"]["inputDefinitions"]["parameters"])

    def rehearsed(self) -> dict:
        """The IR with each CustomJob's executor replaced by its worker pools, launched here; with
        `runtime.launcher: tfjob`, the train step's container told that the local operator runs its TFJob."""
        ir = json.loads(json.dumps(self.ir))
        executors = ir["deploymentSpec"]["executors"]
        for component in ir["components"].values():
            container = executors.get(component.get("executorLabel", ""), {}).get("container", {})
            args = container.get("args", [])
            if CUSTOM_JOB_LAUNCHER in " ".join(container.get("command", [])):
                executors[component["executorLabel"]] = {"container": _worker_pools(component)}
            elif self.config.runtime.launcher == "tfjob" and TRAIN_STEP in zip(args, args[1:]):
                container.setdefault("env", []).append({"name": tfjob.OPERATOR, "value": tfjob.LOCAL})
        return ir

    def component(self):
        """The rehearsed pipeline, loaded as kfp loads a compiled file."""
        from kfp import components

        with tempfile.TemporaryDirectory(prefix="tfpipe-package-") as folder:
            path = Path(folder) / self.path.name
            path.write_text(yaml.safe_dump(self.rehearsed(), sort_keys=False))
            return components.load_component_from_file(str(path))


def _worker_pools(component: dict) -> dict:
    """The container that runs a CustomJob's worker pools here: every replica runs the first pool's command
    (tfpipe's pools all run the train component), with the KFP placeholder the Vertex launcher would fill."""
    inputs = component["inputDefinitions"]["parameters"]
    pools = inputs["worker_pool_specs"]["defaultValue"]
    # Out of the inputs: what Vertex fills in at run time (the project, the location, the pools' placeholders),
    # which kfp.local would try to resolve; the train component reads none of them.
    for name in [name for name, spec in inputs.items() if "{{$" in json.dumps(spec.get("defaultValue", ""))]:
        del inputs[name]
    replicas = [int(pool.get("replica_count", 1)) for pool in pools]
    spec = pools[0]["container_spec"]
    args = [arg.replace("{{$.json_escape[1]}}", "{{$}}") for arg in spec.get("args", [])]
    return {"image": spec["image_uri"], "command": ["python3", "-m", REPLICAS, "--replicas",
                                                   ",".join(map(str, replicas)), "--", *spec["command"]],
            "args": args}
