output "pipeline_root" {
  description = "tfpipe submit --vertex --pipeline-root"
  value       = "gs://${google_storage_bucket.runs.name}/runs"
}

output "storage_uri" {
  description = "deploy.storage_uri for the serving base"
  value       = "gs://${google_storage_bucket.runs.name}/serving"
}

output "service_account" {
  value = google_service_account.runner.email
}

output "image_repository" {
  description = "pipeline.base_image prefix"
  value       = "${var.region}-docker.pkg.dev/${var.project}/${google_artifact_registry_repository.images.repository_id}"
}

output "tensorboard" {
  value = google_vertex_ai_tensorboard.training.id
}
