"""Slices group examples by numbers and categories; a text is a value of its own."""

import pytest

from components.common.config import EvaluateConfig
from components.common.schema import Feature, Schema
from components.evaluate import slices
from components.evaluate.gate import EvaluateError


def schema(*features: Feature) -> Schema:
    return Schema(features=(*features, Feature("label", "string", {"top": [["a", 1], ["b", 1]]})), label="label")


def test_text_is_not_sliced_and_a_text_only_model_says_why():
    reviews = schema(Feature("review", "text"), Feature("product", "string"))
    assert slices.features_to_slice(reviews, EvaluateConfig()) == ["product"]
    with pytest.raises(EvaluateError, match=r"'review' is not a feature that can be sliced"):
        slices.features_to_slice(reviews, EvaluateConfig(slices=("review",)))
    only_text = schema(Feature("review", "text"))
    assert slices.features_to_slice(only_text, EvaluateConfig()) == []
    assert slices.why_none(only_text) == ("Not sliced: the model reads only text (review), and slices group "
                                          "examples by the values of tabular features.")
