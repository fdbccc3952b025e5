"""Serve: a TF-Serving-compatible model server (REST and gRPC), its client, the infra check and deploy targets."""
