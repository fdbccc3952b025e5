"""Where a compiled pipeline runs: this machine (kfp.local), a KFP cluster, Vertex AI Pipelines."""
