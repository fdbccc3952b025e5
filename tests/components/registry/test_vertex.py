"""The registry on Vertex Model Registry: the real GAPIC client's requests (REST transport), as a stand-in Vertex
API on 127.0.0.1 receives them; the stand-in keeps versions and aliases as Vertex does (an alias is on one version)."""

import json
import re

import pytest
from aiohttp import web
from google.auth.credentials import AnonymousCredentials
from google.cloud import aiplatform_v1 as v1

from components.common.config import DeployConfig
from components.common.registry import Evaluation, Registry, RegistryError
from components.common.vertex_registry import VertexRegistry
from tests.components.registry.conftest import LINEAGE, blessed
from tests.conftest import http_server

PARENT = "projects/acme/locations/europe-west4"
MODEL = f"{PARENT}/models/penguins"
CFG = DeployConfig(target="vertex", project="acme", region="europe-west4", storage_uri="gs://m/serving/penguins")


class Vertex:
    """One model's versions and their aliases; every request recorded as (method, path, body)."""

    def __init__(self):
        self.versions: dict[str, set[str]] = {}  # version id -> aliases
        self.seen: list[tuple[str, str, dict]] = []
        self.refuse = ""  # a path suffix answered with 403

    async def handle(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read() or b"{}")
        path = request.path
        self.seen.append((request.method, path, body))
        if self.refuse and path.endswith(self.refuse):
            return _error(403, "PERMISSION_DENIED")
        if path == f"/v1/{PARENT}/models:upload":
            version = str(len(self.versions) + 1)
            self.versions[version] = set(body["model"]["versionAliases"]) | ({"default"} if version == "1" else set())
            return web.json_response({"name": f"{PARENT}/operations/{version}", "done": True, "response": {
                "@type": "type.googleapis.com/google.cloud.aiplatform.v1.UploadModelResponse",
                "model": MODEL, "modelVersionId": version}})
        match = re.fullmatch(rf"/v1/{MODEL}(?:@(?P<ref>[^/:]+))?(?P<rest>.*)", path)
        if match is None:
            return _error(404, "NOT_FOUND")
        version = self.find(match["ref"]) if match["ref"] else "1" if self.versions else None
        if version is None:
            return _error(404, "NOT_FOUND")
        if match["rest"] == "/evaluations:import":
            return web.json_response({"name": f"{MODEL}/evaluations/{version}", **body["modelEvaluation"]})
        if match["rest"] == ":mergeVersionAliases":
            for alias in body["versionAliases"]:
                for aliases in self.versions.values():
                    aliases.discard(alias.lstrip("-"))
                if not alias.startswith("-"):
                    self.versions[version].add(alias)
        return web.json_response({"name": MODEL, "versionId": version,
                                  "versionAliases": sorted(self.versions[version])})

    def find(self, ref: str) -> str | None:
        if ref in self.versions:
            return ref
        return next((v for v, aliases in self.versions.items() if ref in aliases), None)

    def alias_of(self, alias: str) -> str | None:
        return self.find(alias)

    def calls(self) -> list[tuple[str, str]]:
        return [(method, path.removeprefix(f"/v1/{PARENT}/")) for method, path, _ in self.seen]


def _error(code: int, status: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": f"stand-in {status}", "status": status}},
                             status=code)


@pytest.fixture
def vertex():
    stand_in = Vertex()
    with http_server(stand_in.handle) as url:
        stand_in.client = v1.ModelServiceClient(transport="rest", credentials=AnonymousCredentials(),
                                                client_options={"api_endpoint": url})
        yield stand_in


def registry_on(home, vertex: Vertex) -> VertexRegistry:
    registry = Registry(str(home))
    registry.register(1, blessed(0.9), LINEAGE)
    registry.register(2, blessed(0.95))
    registry.register(3, Evaluation("blessed", {"rmse": 0.5, "r2": 0.8}, "/runs/3/model.keras", "regression"))
    return VertexRegistry(registry, CFG, client=vertex.client)


def test_the_first_upload_creates_the_model_and_later_ones_add_versions_with_their_evaluations(home, vertex):
    registry = registry_on(home, vertex)
    assert registry.upload(1) == f"{MODEL}@1"
    assert vertex.calls() == [("GET", "models/penguins"), ("POST", "models:upload"),
                              ("POST", "models/penguins@1/evaluations:import")]
    upload = vertex.seen[1][2]
    assert upload["modelId"] == "penguins"
    assert "parentModel" not in upload
    assert upload["model"]["artifactUri"] == "gs://m/serving/penguins/1"
    assert upload["model"]["versionAliases"] == ["v1"]
    assert upload["model"]["containerSpec"]["imageUri"] == CFG.serving_image
    assert upload["model"]["labels"] == {"managed-by": "tfpipe", "version": "1"}
    assert upload["model"]["versionDescription"] == "tfpipe version 1: blessed, data data/span-3, run run-7"
    evaluation = vertex.seen[2][2]["modelEvaluation"]
    assert evaluation["metricsSchemaUri"].endswith("/classification_metrics_1.0.0.yaml")
    assert evaluation["metrics"] == {"logLoss": pytest.approx(0.1)}
    assert evaluation["metadata"]["tfpipe_metrics"] == {"accuracy": 0.9, "loss": pytest.approx(0.1)}
    assert evaluation["metadata"]["verdict"] == "blessed"
    assert evaluation["metadata"]["run_id"] == "run-7"

    vertex.seen.clear()
    assert registry.upload(3) == f"{MODEL}@2"
    assert vertex.calls() == [("GET", "models/penguins@v3"), ("POST", "models:upload"),
                              ("POST", "models/penguins@2/evaluations:import")]
    upload = vertex.seen[1][2]
    assert upload["parentModel"] == MODEL
    assert "modelId" not in upload
    assert upload["model"]["artifactUri"] == "gs://m/serving/penguins/3"
    evaluation = vertex.seen[2][2]["modelEvaluation"]
    assert evaluation["metricsSchemaUri"].endswith("/regression_metrics_1.0.0.yaml")
    assert evaluation["metrics"] == {"rootMeanSquaredError": 0.5, "rSquared": 0.8}
    assert registry.registry.get(3).vertex_model == f"{MODEL}@2"

    vertex.seen.clear()
    assert registry.upload(3) == f"{MODEL}@2"  # already uploaded: nothing sent
    assert vertex.seen == []


def test_promote_and_rollback_move_the_alias_on_vertex_and_record_its_history(home, vertex):
    registry = registry_on(home, vertex)
    registry.upload(1)
    registry.upload(2, aliases=("candidate",))
    assert vertex.seen[-1][1:] == (f"/v1/{MODEL}@2:mergeVersionAliases", {"versionAliases": ["candidate"]})
    vertex.seen.clear()
    registry.promote(1, "production")
    registry.promote(2, "production")
    assert [(path, body) for _, path, body in vertex.seen] == [
        (f"/v1/{MODEL}@1:mergeVersionAliases", {"versionAliases": ["production", "default"]}),
        (f"/v1/{MODEL}@2:mergeVersionAliases", {"versionAliases": ["production", "default"]})]
    assert (vertex.alias_of("production"), vertex.alias_of("default")) == ("2", "2")
    assert registry.rollback("production").version == 1
    assert vertex.seen[-1][1] == f"/v1/{MODEL}@1:mergeVersionAliases"
    assert (vertex.alias_of("production"), vertex.alias_of("default"), vertex.alias_of("candidate")) == ("1", "1", "2")
    assert registry.resolve("production") == 1
    assert json.loads((home / "labels.json").read_text()) == {"candidate": 2, "production": 1}


def test_what_vertex_refuses_or_does_not_have_changes_nothing(home, vertex):
    registry = registry_on(home, vertex)
    registry.upload(1)
    registry.upload(2)
    registry.promote(1, "production")
    before = (home / "registry.json").read_bytes(), (home / "labels.json").read_bytes()
    vertex.seen.clear()
    with pytest.raises(RegistryError, match="version 3 of penguins is not in Vertex Model Registry yet: upload it"):
        registry.promote(3, "production")
    assert vertex.seen == []
    vertex.refuse = ":mergeVersionAliases"
    with pytest.raises(RegistryError, match="refused to point alias 'production' at version 2 .*@2.*: 403 POST"):
        registry.promote(2, "production")
    assert ((home / "registry.json").read_bytes(), (home / "labels.json").read_bytes()) == before
    assert registry.resolve("production") == 1
    assert vertex.alias_of("production") == "1"


def test_an_upload_tried_again_finds_the_first_one_by_its_version_alias(home, vertex):
    registry = registry_on(home, vertex)
    registry.upload(1)
    vertex.versions["2"] = {"v2"}  # uploaded before, but the registry's write did not happen
    vertex.seen.clear()
    assert registry.upload(2) == f"{MODEL}@2"
    assert vertex.calls() == [("GET", "models/penguins@v2")]
    assert registry.registry.get(2).vertex_model == f"{MODEL}@2"


def test_vertex_needs_a_project_and_a_gcs_model_base(home):
    with pytest.raises(RegistryError, match="needs deploy.project and a gs:// deploy.storage_uri"):
        VertexRegistry(Registry(str(home)), DeployConfig(target="vertex", storage_uri="/local"))
