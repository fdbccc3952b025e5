"""Monitor: the model server's request logs against the training statistics (skew) and window against window
(drift), per feature and for the predictions; a findings record, a report, and whether to retrain."""

from components.monitor.errors import MonitorError
from components.monitor.findings import Anomaly, DamagedFile, Findings, Measurement, UnfinishedFile, Window
from components.monitor.step import MonitorResult, production_examples, recent, run, scheduled

__all__ = ["Anomaly", "DamagedFile", "Findings", "Measurement", "MonitorError", "MonitorResult", "UnfinishedFile",
           "Window", "production_examples", "recent", "run", "scheduled"]
