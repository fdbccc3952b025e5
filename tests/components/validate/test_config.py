"""The `validation` section: thresholds and verdicts from YAML or --set, checked when loaded."""

import pytest

from components.common import config
from components.common.config import ConfigError


def test_overrides_set_thresholds_and_which_kinds_fail():
    cfg = config.load(None, ["ingest.source=x.csv", "validation.drift.default=0.2",
                             "validation.drift.features.income=0.5", "validation.fail=[drift, out_of_domain]"])
    assert cfg.validation.drift.default == 0.2
    assert cfg.validation.drift.features == {"income": 0.5}
    assert cfg.validation.fail == ("drift", "out_of_domain")
    assert config.RunConfig.from_json(cfg.to_json()) == cfg


@pytest.mark.parametrize(("override", "message"), [
    ("validation.drift.default=1.5", r"validation.drift.default: expected a distance in \[0, 1\], got 1.5"),
    ("validation.drift.features.age=-0.1", r"validation.drift.features.age: expected a distance in \[0, 1\]"),
    ("validation.missing_tolerance=-1", r"validation.missing_tolerance: expected a number >= 0"),
    ("validation.fail=[drift, skew]", r"validation.fail\[1\]: expected one of missing_feature, .*got 'skew'"),
    ("validation.drift.typo=1", r"validation.drift.typo: unknown key; expected one of default, features"),
])
def test_bad_values_are_named(override, message):
    with pytest.raises(ConfigError, match=message):
        config.load(None, ["ingest.source=x.csv", override])
