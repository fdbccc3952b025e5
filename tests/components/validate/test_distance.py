"""The drift distances against values worked out by hand."""

import math

import numpy as np
import pytest

from components.common.metadata import Histogram
from components.validate.distance import Distance, common_bins, histogram_jensen_shannon, jensen_shannon, l_infinity


def histogram(*buckets: tuple[float, float, float]) -> Histogram:
    return Histogram(buckets=[Histogram.Bucket(low_value=lo, high_value=hi, sample_count=c) for lo, hi, c in buckets])


def test_l_infinity_is_the_largest_gap_in_fractions():
    # a: 3/4 vs 1/4, b: 1/4 vs 1/4, c: 0 vs 2/4; a and c tie at 1/2, the first in order is named
    assert l_infinity({"a": 3, "b": 1}, {"a": 1, "b": 1, "c": 2}) == Distance(0.5, "a")
    assert l_infinity({"x": 2, "y": 2}, {"x": 20, "y": 20}) == Distance(0.0)
    assert l_infinity({"x": 1}, {"y": 1}).value == 1.0
    assert l_infinity({}, {"x": 1}) == Distance(0.0)


def test_jensen_shannon_in_bits():
    assert jensen_shannon([1, 0], [0, 1]) == 1.0
    assert jensen_shannon([3, 5, 2], [30, 50, 20]) == 0.0
    # P = (1/2, 1/2), Q = (1, 0), M = (3/4, 1/4):
    # KL(P||M) = 1/2 log2(2/3) + 1/2 log2(2); KL(Q||M) = log2(4/3)
    expected = (0.5 * math.log2(2 / 3) + 0.5 + math.log2(4 / 3)) / 2
    assert jensen_shannon([1, 1], [2, 0]) == pytest.approx(expected)
    assert expected == pytest.approx(0.311278, abs=1e-6)


def test_histograms_are_compared_over_the_baselines_bins_with_open_outer_bins():
    baseline = histogram((0, 1, 10), (1, 2, 10), (2, 3, 10))
    new = histogram((0, 2, 20))
    edges, p, q = common_bins(baseline, new)
    # boundaries 0, 1, 2, 3 -> inner 1, 2 -> bins (-inf, 1), [1, 2], (2, inf)
    np.testing.assert_allclose(edges, [1, 2])
    np.testing.assert_allclose(p, [10, 10, 10])
    np.testing.assert_allclose(q, [10, 10, 0])
    # P = (1/3, 1/3, 1/3), Q = (1/2, 1/2, 0), M = (5/12, 5/12, 1/6)
    kl_p = 2 / 3 * math.log2(0.8) + 1 / 3 * math.log2(2)
    kl_q = math.log2(1.2)
    assert histogram_jensen_shannon(baseline, new) == pytest.approx((kl_p + kl_q) / 2)
    assert histogram_jensen_shannon(baseline, baseline) == 0.0


def test_values_far_beyond_the_range_stay_in_the_outer_bin():
    baseline = histogram((0, 1, 10), (1, 2, 10), (2, 3, 10))
    wider = histogram((0, 1, 10), (1, 2, 10), (2, 300, 10))  # same mass above 2, a far maximum
    assert histogram_jensen_shannon(baseline, wider) == 0.0


def test_a_point_mass_is_its_own_bin():
    constant = histogram((5, 5, 8))
    edges, p, q = common_bins(constant, histogram((4, 6, 8)))
    np.testing.assert_allclose(edges, [5])
    np.testing.assert_allclose(p, [0, 8, 0])
    np.testing.assert_allclose(q, [4, 0, 4])
