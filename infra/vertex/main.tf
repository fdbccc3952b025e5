# Vertex AI resources tfpipe's pipelines need: a bucket (pipeline roots, serving bases), the
# service account pipelines and endpoints run as, an Artifact Registry repository for the
# component image, and a Vertex TensorBoard for training logs.

terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 5.0"
    }
  }
}

provider "google" {
  project = var.project
  region  = var.region
}

resource "google_project_service" "apis" {
  for_each = toset(["aiplatform.googleapis.com", "artifactregistry.googleapis.com", "storage.googleapis.com"])
  service  = each.key
}

resource "google_storage_bucket" "runs" {
  name                        = "${var.project}-tfpipe"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  versioning {
    enabled = true
  }
}

resource "google_service_account" "runner" {
  account_id   = "tfpipe-runner"
  display_name = "tfpipe pipelines and endpoints"
}

resource "google_project_iam_member" "runner" {
  for_each = toset(["roles/aiplatform.user", "roles/artifactregistry.reader", "roles/logging.logWriter"])
  project  = var.project
  role     = each.key
  member   = "serviceAccount:${google_service_account.runner.email}"
}

resource "google_storage_bucket_iam_member" "runner" {
  bucket = google_storage_bucket.runs.name
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${google_service_account.runner.email}"
}

resource "google_artifact_registry_repository" "images" {
  location      = var.region
  repository_id = "tfpipe"
  format        = "DOCKER"
  depends_on    = [google_project_service.apis]
}

resource "google_vertex_ai_tensorboard" "training" {
  display_name = "tfpipe"
  region       = var.region
  depends_on   = [google_project_service.apis]
}
