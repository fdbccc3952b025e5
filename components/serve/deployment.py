"""What the serve step did, as `deploy.json` records it: a typed record, so that a renamed field fails where
the code is checked rather than where a dict is read by key. No TensorFlow here: the KFP layer reads it."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from components.common.errors import TfpipeError


@dataclass(frozen=True)
class Deployment:
    deployed: bool
    target: str  # local, kserve or vertex
    reason: str = ""  # why nothing was deployed
    path: str = ""  # local: the version folder in the serving base
    serve: str = ""  # local: the command that serves that base
    manifest: str = ""  # kserve: the InferenceService YAML written
    applied: bool = False  # kserve: created or replaced in the cluster
    model: str = ""  # vertex: the uploaded model's resource name
    endpoint: str = ""  # vertex: the endpoint's resource name
    monitoring_job: str = ""  # vertex, with monitor.vertex_job: the endpoint's Model Monitoring job

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Deployment:
        try:
            return cls(**json.loads(text))
        except (ValueError, TypeError) as e:
            raise TfpipeError(f"deploy.json: not a deployment record ({e})") from None
