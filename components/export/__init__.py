"""Export: a SavedModel with serving signatures in TF Serving's `<base>/<name>/<version>/` layout, checked."""

from components.export.step import ExportError, ExportResult, run

__all__ = ["ExportError", "ExportResult", "run"]
