"""infra/ parsed with PyYAML and python-hcl2 (kubectl and terraform are not on these machines) and checked
against what the code creates."""

from pathlib import Path

import hcl2
import yaml

from components.common.config import DeployConfig
from components.serve import deploy
from tests.conftest import ROOT

KUBEFLOW = ROOT / "infra" / "kubeflow"


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_kustomization_resources_exist_and_parse():
    kustomization = documents(KUBEFLOW / "kustomization.yaml")[0]
    kinds = {}
    for resource in kustomization["resources"]:
        for document in documents(KUBEFLOW / resource):
            assert document["apiVersion"], resource
            assert document["metadata"]["name"], resource
            kinds.setdefault(document["kind"], []).append(document)
    assert set(kinds) == {"Namespace", "ServiceAccount", "Role", "RoleBinding", "PersistentVolumeClaim"}
    assert kinds["Namespace"][0]["metadata"]["name"] == kustomization["namespace"]


def test_rbac_allows_what_the_steps_create():
    role, binding = documents(KUBEFLOW / "rbac.yaml")
    granted = {(group, resource): set(rule["verbs"]) for rule in role["rules"]
               for group in rule["apiGroups"] for resource in rule["resources"]}
    assert {"create", "get", "update"} <= granted[(deploy.KSERVE["group"], deploy.KSERVE["plural"])]
    assert {"create", "get", "watch", "delete"} <= granted[("kubeflow.org", "tfjobs")]
    assert binding["subjects"][0]["name"] == documents(KUBEFLOW / "serviceaccount.yaml")[0]["metadata"]["name"]


def test_inference_service_template_is_what_deploy_creates():
    template = documents(KUBEFLOW / "templates" / "inferenceservice.yaml")[0]
    made = deploy.kserve_manifest(DeployConfig(target="kserve", storage_uri="gs://BUCKET/serving/MODEL_NAME",
                                               namespace="tfpipe"), "MODEL_NAME")
    assert made == template


def test_tfjob_template_runs_the_train_step_as_non_root():
    tfjob = documents(KUBEFLOW / "templates" / "tfjob.yaml")[0]
    specs = tfjob["spec"]["tfReplicaSpecs"]
    assert set(specs) == {"Chief", "Worker"}
    container = specs["Worker"]["template"]["spec"]["containers"][0]
    assert container["command"][:4] == ["python", "-m", "components", "train"]
    assert specs["Chief"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_terraform_declares_what_vertex_runs_need():
    parsed = {}
    for name in ("main.tf", "variables.tf", "outputs.tf"):
        with open(ROOT / "infra" / "vertex" / name) as f:
            for key, blocks in hcl2.load(f).items():
                parsed.setdefault(key, []).extend(blocks)
    def names(key):  # python-hcl2 keeps the quotes of quoted labels
        return {name.strip('"') for block in parsed[key] for name in block}

    resources = names("resource")
    assert {"google_storage_bucket", "google_service_account", "google_project_iam_member",
            "google_artifact_registry_repository", "google_vertex_ai_tensorboard"} <= resources
    assert names("variable") == {"project", "region"}
    assert {"pipeline_root", "storage_uri", "image_repository"} <= names("output")
