"""What-If: slices, partial dependence, counterfactuals, thresholds and saliency, as a report; two models compared."""

from components.whatif.document import WhatIfDocument
from components.whatif.step import Compared, WhatIfResult, registry_baseline, run

__all__ = ["Compared", "WhatIfDocument", "WhatIfResult", "registry_baseline", "run"]
