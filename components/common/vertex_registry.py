"""The registry's operations on Vertex Model Registry, sent with the google-cloud-aiplatform GAPIC client.

- upload: each exported version becomes a new version of one Vertex model
  (`UploadModelRequest.parent_model`; the first upload creates the model with
  `model_id` = the model's name), tagged with the version alias `v<version>`,
  with Vertex's prebuilt TF Serving image and `artifact_uri` = `<storage_uri>/<version>`.
  Its evaluation goes with it (`ImportModelEvaluation`): the metrics Vertex's
  classification or regression schema names, and all of tfpipe's in `metadata`.
  An upload that is tried again finds the first one by its `v<version>` alias
  instead of uploading twice.
- promote and rollback: `MergeVersionAliases` on the version the alias moves
  to; Vertex takes the alias off whichever version had it. `production` takes
  Vertex's `default` alias with it, so that callers that name no version
  follow production too.

Vertex keeps no history of aliases, so the history (and where a rollback goes)
stays in the registry beside the versions (`<base>/<name>/registry.json`, gs://
for Vertex runs). Vertex is changed first, inside the registry's write: if it
refuses, the registry does not change; if the registry's write then fails, the
change is tried again, which Vertex accepts as a no-op.

The tests check the requests as sent, against a stand-in API on 127.0.0.1;
nothing here has been run against a live Vertex project.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from components.common.config import DeployConfig
from components.common.registry import (
    PRODUCTION,
    Alias,
    Registry,
    RegistryError,
    VersionRecord,
    check_alias_name,
)

SCHEMAS = {
    "classification": "gs://google-cloud-aiplatform/schema/modelevaluation/classification_metrics_1.0.0.yaml",
    "regression": "gs://google-cloud-aiplatform/schema/modelevaluation/regression_metrics_1.0.0.yaml",
}
# tfpipe's metric names -> the fields of Vertex's evaluation schemas.
SCHEMA_FIELDS = {
    "classification": {"auc": "auRoc", "pr_auc": "auPrc", "loss": "logLoss"},
    "regression": {"rmse": "rootMeanSquaredError", "mae": "meanAbsoluteError", "r2": "rSquared"},
}
VERTEX_DEFAULT = "default"


@contextlib.contextmanager
def _asking(what: str) -> Iterator[None]:
    """Vertex's refusals (permissions, quota, a bad request) as one clear error that says what was asked."""
    from google.api_core import exceptions

    try:
        yield
    except exceptions.NotFound:
        raise
    except exceptions.GoogleAPICallError as e:
        raise RegistryError(f"Vertex Model Registry refused to {what}: {e}") from e


class VertexRegistry:
    """The registry of `registry.home`, mirrored in Vertex Model Registry in `cfg.project` / `cfg.region`."""

    def __init__(self, registry: Registry, cfg: DeployConfig, client=None, default_follows: str = PRODUCTION):
        if not cfg.project or not cfg.storage_uri.startswith("gs://"):
            raise RegistryError("Vertex Model Registry needs deploy.project and a gs:// deploy.storage_uri (the "
                                "folder of numbered versions Vertex reads)")
        self.registry, self.cfg, self.default_follows = registry, cfg, default_follows
        self.parent = f"projects/{cfg.project}/locations/{cfg.region}"
        name = registry.name.lower()
        # Vertex model IDs: [a-z0-9_-], not starting with a digit or '-'; otherwise Vertex picks one.
        self.model_id = name if re.fullmatch(r"[a-z_][a-z0-9_-]{0,62}", name) else ""
        self._client = client

    @property
    def client(self):
        if self._client is None:
            from google.cloud import aiplatform_v1 as v1

            self._client = v1.ModelServiceClient(
                client_options={"api_endpoint": f"{self.cfg.region}-aiplatform.googleapis.com"})
        return self._client

    # requests

    def upload_request(self, record: VersionRecord, parent_model: str):
        from google.cloud import aiplatform_v1 as v1

        lineage = record.lineage
        model = v1.Model(
            display_name=self.registry.name, artifact_uri=f"{self.cfg.storage_uri.rstrip('/')}/{record.version}",
            container_spec=v1.ModelContainerSpec(image_uri=self.cfg.serving_image),
            version_aliases=[f"v{record.version}"],
            version_description=f"tfpipe version {record.version}: {record.evaluation.verdict}"
                                f"{f', data {lineage.data_span}' if lineage.data_span else ''}"
                                f"{f', run {lineage.run_id}' if lineage.run_id else ''}",
            labels={"managed-by": "tfpipe", "version": str(record.version)})
        if parent_model:
            return v1.UploadModelRequest(parent=self.parent, parent_model=parent_model, model=model)
        return v1.UploadModelRequest(parent=self.parent, model_id=self.model_id, model=model)

    def evaluation_request(self, record: VersionRecord, resource: str):
        """The version's evaluation for `ImportModelEvaluation`, or None when it has no metrics."""
        from google.cloud import aiplatform_v1 as v1

        evaluation = record.evaluation
        if not evaluation.metrics:
            return None
        task = evaluation.task if evaluation.task in SCHEMAS else \
            "classification" if "accuracy" in evaluation.metrics else "regression"
        metrics = {field: evaluation.metrics[ours] for ours, field in SCHEMA_FIELDS[task].items()
                   if ours in evaluation.metrics}
        metadata = {"tfpipe_metrics": dict(evaluation.metrics), "verdict": evaluation.verdict,
                    "evaluation_folder": evaluation.folder, **record.lineage.to_json()}
        return v1.ImportModelEvaluationRequest(parent=resource, model_evaluation=v1.ModelEvaluation(
            display_name=f"tfpipe-v{record.version}", metrics_schema_uri=SCHEMAS[task], metrics=metrics,
            metadata=metadata))

    def merge_request(self, record: VersionRecord, alias: str):
        from google.cloud import aiplatform_v1 as v1

        if not record.vertex_model:
            raise RegistryError(f"version {record.version} of {self.registry.name} is not in Vertex Model Registry "
                                "yet: upload it first")
        aliases = [alias] + ([VERTEX_DEFAULT] if alias == self.default_follows else [])
        return v1.MergeVersionAliasesRequest(name=record.vertex_model, version_aliases=aliases)

    # operations

    def upload(self, version: int, aliases: tuple[str, ...] = ()) -> str:
        """Uploads a registered version (once), attaches its evaluation, then points `aliases` at it; returns
        its Vertex resource name, `projects/.../models/<id>@<version id>`."""
        for alias in aliases:
            check_alias_name(alias)
        record = self.registry.get(version)
        resource = record.vertex_model
        if not resource:
            parent_model = self._parent_model()
            resource = self._uploaded(parent_model, version) if parent_model else ""
            if not resource:
                with _asking(f"upload version {version} of {self.registry.name}"):
                    response = self.client.upload_model(request=self.upload_request(record, parent_model)).result()
                resource = f"{response.model}@{response.model_version_id}"
                request = self.evaluation_request(record, resource)
                if request is not None:
                    with _asking(f"attach the evaluation of version {version} to {resource}"):
                        self.client.import_model_evaluation(request=request)
            self.registry.set_vertex_model(version, resource)
        for alias in aliases:
            self.promote(version, alias)
        return resource

    def promote(self, version: int, alias: str, force: bool = False) -> Alias:
        return self.registry.promote(version, alias, force, before_commit=self._merge)

    def rollback(self, alias: str) -> Alias:
        return self.registry.rollback(alias, before_commit=self._merge)

    def resolve(self, alias: str) -> int:
        return self.registry.resolve(alias)

    # inside

    def _merge(self, record: VersionRecord, alias: Alias) -> None:
        request = self.merge_request(record, alias.name)
        with _asking(f"point alias {alias.name!r} at version {record.version} ({record.vertex_model})"):
            self.client.merge_version_aliases(request=request)

    def _parent_model(self) -> str:
        """The Vertex model earlier versions went to: from the registry, else looked up by ID; "" for none."""
        from google.api_core import exceptions

        for record in self.registry.read().versions:
            if record.vertex_model:
                return record.vertex_model.split("@", 1)[0]
        if not self.model_id:
            return ""
        try:
            return self.client.get_model(name=f"{self.parent}/models/{self.model_id}").name
        except exceptions.NotFound:
            return ""

    def _uploaded(self, parent_model: str, version: int) -> str:
        """The resource name of an earlier upload of `version` (its `v<version>` alias), or ""."""
        from google.api_core import exceptions

        try:
            model = self.client.get_model(name=f"{parent_model}@v{version}")
        except exceptions.NotFound:
            return ""
        return f"{model.name}@{model.version_id}"
