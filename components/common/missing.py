"""What a missing value reads as, in every step that reads one.

Ingest writes no value for a missing cell; the examples reader's parse spec
(`Schema.parse_spec`) fills it with `default_value`, and so does the
SavedModel's own example parsing, since export builds it from the same spec.
The model server fills a JSON `null`, or an input left out, with the same
value, so that a served request with a gap means what a training example
with that cell empty meant.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from components.common.schema import Feature, Schema


def default_value(feature: Feature) -> Any:
    """The training mean for numbers (rounded for integers; 0 without one), "" for strings and images."""
    mean = feature.stats.get("mean")
    known = mean is not None and math.isfinite(mean)
    if feature.type == "float":
        return float(mean) if known else 0.0
    if feature.type == "int":
        return int(round(mean)) if known else 0
    return ""


def serving_defaults(schema: Schema) -> dict[str, Any]:
    """The inputs a request may leave out, with what they read as. Not images: "" decodes to no image."""
    return {f.name: default_value(f) for f in schema.inputs if f.type != "image"}
