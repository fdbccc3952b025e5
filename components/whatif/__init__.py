"""What-If: slices, partial dependence, counterfactuals, thresholds and saliency, as a report."""

from components.whatif.document import WhatIfDocument
from components.whatif.step import WhatIfResult, run

__all__ = ["WhatIfDocument", "WhatIfResult", "run"]
