variable "project" {
  type        = string
  description = "The Google Cloud project to create tfpipe's resources in."
}

variable "region" {
  type        = string
  default     = "us-central1"
  description = "The region of the bucket, repository, TensorBoard and Vertex jobs."
}
