"""Ingest: CSV, Parquet, JSON lines or image folders -> sharded TFRecords, schema.json, statistics."""

from components.ingest.step import IngestError, IngestResult, run

__all__ = ["IngestError", "IngestResult", "run"]
