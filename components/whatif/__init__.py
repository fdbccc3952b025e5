"""What-If: slices, partial dependence, counterfactuals, thresholds and saliency, as a report."""

from components.whatif.step import WhatIfResult, run

__all__ = ["WhatIfResult", "run"]
