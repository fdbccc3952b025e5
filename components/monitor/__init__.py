"""Monitor: the model server's request logs against the training statistics (skew) and window against window
(drift), per feature and for the predictions, and against the labels that arrive later (quality); a findings
record, a report, and whether to retrain."""

from components.monitor.errors import MonitorError
from components.monitor.findings import (
    Anomaly,
    DamagedFile,
    Findings,
    LabelCounts,
    LabelsRead,
    Measurement,
    Quality,
    UnfinishedFile,
    Window,
)
from components.monitor.step import MonitorResult, batch, blessed, production, recent, run, scheduled

__all__ = ["Anomaly", "DamagedFile", "Findings", "LabelCounts", "LabelsRead", "Measurement", "MonitorError",
           "MonitorResult", "Quality", "batch", "blessed", "UnfinishedFile", "Window", "production", "recent", "run",
           "scheduled"]
