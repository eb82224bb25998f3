"""utils.stats: paired t over seeds, McNemar + bootstrap over items, paired bootstrap over groups, verdicts."""
import dataclasses
import math
import warnings

import numpy as np
import pytest
import scipy.stats as sps
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

from utils import stats as S

M = "\u2212"  # the minus sign verdicts print


def correct_pairs(n11, n10, n01, n00):
    """Boolean (correct_a, correct_b) with the given 2x2 counts (n10: A right and B wrong), in a shuffled order."""
    a = np.array([True] * n11 + [True] * n10 + [False] * n01 + [False] * n00)
    b = np.array([True] * n11 + [False] * n10 + [True] * n01 + [False] * n00)
    order = np.random.default_rng(0).permutation(a.size)
    return a[order], b[order]


# ---- paired_seeds --------------------------------------------------------------------------------------------

def test_paired_seeds_matches_scipy_ttest_rel():
    rng = np.random.default_rng(3)
    b = rng.normal(0.80, 0.02, 6)
    a = b + rng.normal(0.01, 0.01, 6)
    c = S.paired_seeds(a, b, level=0.9)
    ref = sps.ttest_rel(a, b)
    ci = ref.confidence_interval(0.9)
    assert c.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert c.extra["t"] == pytest.approx(ref.statistic, rel=1e-10)
    assert (c.low, c.high) == pytest.approx((ci.low, ci.high), rel=1e-10)
    assert c.difference == pytest.approx(np.mean(a - b))
    assert (c.n, c.level, c.method) == (6, 0.9, "paired t, 5 degrees of freedom")


def test_paired_seeds_hand_worked_example():
    # d = [1, 2, 3]: mean 2, s = sqrt((1 + 0 + 1) / 2) = 1, SE = 1 / sqrt(3) = 0.5774, t = 2 / 0.5774 = 3.464.
    # t_{0.975, 2} = 4.303, so the interval is 2 ± 4.303 * 0.5774 = 2 ± 2.484 = [-0.484, 4.484]: contains 0.
    # With 2 degrees of freedom the two-sided p is 1 - |t| / sqrt(2 + t^2) = 1 - 3.464 / sqrt(14) = 0.0742.
    c = S.paired_seeds([11, 12, 13], [10, 10, 10], names=("wide", "narrow"), measure="test accuracy")
    assert c.difference == pytest.approx(2)
    assert c.extra["se"] == pytest.approx(0.57735, abs=1e-5)
    assert c.extra["t_crit"] == pytest.approx(4.3027, abs=1e-4)
    assert (c.low, c.high) == pytest.approx((2 - 2.4841, 2 + 2.4841), abs=1e-4)
    assert c.p_value == pytest.approx(1 - 2 * math.sqrt(3) / math.sqrt(14), abs=1e-10)
    assert c.extra["a_ahead"] == 3
    assert str(c) == (f"no detectable difference at this budget: test accuracy wide {M} narrow = +2.00 "
                      f"(95% interval {M}0.484 to +4.48, paired t, 2 degrees of freedom, "
                      "over 3 training seeds on this test set)")


def test_two_standard_errors_is_noise_with_3_seeds_but_the_same_gap_is_decisive_with_30():
    # spread pattern with sample sd exactly 1 (mean 0), then shift it so the mean gap is 2 standard errors at n = 3
    def pattern(n):
        z = np.arange(n) - (n - 1) / 2
        return z / z.std(ddof=1)

    gap = 2 / math.sqrt(3)
    three = S.paired_seeds(gap + pattern(3), np.zeros(3))
    assert three.extra["t"] == pytest.approx(2.0)
    assert three.extra["t_crit"] == pytest.approx(4.30, abs=0.01)  # not 2, and not 1.96
    assert three.winner is None and str(three).startswith("no detectable difference at this budget:")
    thirty = S.paired_seeds(gap + pattern(30), np.zeros(30))
    assert thirty.extra["t"] == pytest.approx(2.0 * math.sqrt(10))
    assert thirty.winner == "A" and str(thirty).startswith("A better:")


def test_paired_seeds_identical_differences_need_no_division():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same = S.paired_seeds([3.0, 5.0, 4.0], [1.0, 3.0, 2.0])  # d = [2, 2, 2]
        tie = S.paired_seeds([3.0, 5.0, 4.0], [3.0, 5.0, 4.0])  # d = [0, 0, 0]
    assert same.difference == 2.0 and (same.low, same.high) == (-math.inf, math.inf) and same.p_value is None
    assert same.winner is None and "no spread to estimate" in same.method  # equal gaps: no t interval, no verdict
    with pytest.raises(AssertionError, match="not shown better"):
        S.require(same)
    assert tie.difference == 0.0 and tie.p_value is None and tie.winner is None


def test_equal_gaps_of_float32_accuracies_count_as_equal_and_the_method_verdict_still_weighs_the_items():
    right_b = np.zeros((3, 450), bool)
    right_b[:, :440] = True                                     # B: 440 of 450 on every seed
    right_a = right_b.copy()
    right_a[:, 440] = True                                      # A: the same plus one image, on every seed
    acc_a, acc_b = (np.float32(r.mean(1)).astype(np.float32) for r in (right_a, right_b))
    over_seeds = S.paired_seeds(100 * acc_a, 100 * acc_b)
    assert over_seeds.extra["se"] == 0.0 and over_seeds.winner is None  # ~1e-7 float noise is not a spread
    method = S.seeds_and_items(right_a, right_b)
    assert method.winner is None  # one image out of 450 is not a finding about the method
    with pytest.raises(AssertionError, match="not shown better"):
        S.require(method)


def test_paired_seeds_lower_is_better_counts_seeds_where_a_is_lower():
    c = S.paired_seeds([1.10, 1.20, 1.40], [1.30, 1.35, 1.30], measure="bits per byte", higher_is_better=False)
    assert c.extra["a_ahead"] == 2  # A is lower (better) on seeds 0 and 1
    assert S.paired_seeds([1, 2, 3], [0, 0, 5]).extra["a_ahead"] == 2
    assert S.paired_seeds([1, 2], [0, 0]).method == "paired t, 1 degree of freedom"


# ---- mcnemar -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("counts", [(300, 12, 4, 134), (40, 1, 9, 0), (200, 25, 25, 200), (10, 3, 0, 7)])
def test_mcnemar_p_value_matches_statsmodels_and_binomtest(counts):
    n11, n10, n01, n00 = counts
    ca, cb = correct_pairs(*counts)
    c = S.mcnemar(ca, cb, n_resamples=2000)
    table = np.array([[n11, n10], [n01, n00]])
    assert c.p_value == pytest.approx(sm_mcnemar(table, exact=True).pvalue, rel=1e-12)
    assert c.p_value == pytest.approx(sps.binomtest(n10, n10 + n01, 0.5).pvalue, rel=1e-12)
    assert c.difference == pytest.approx((n10 - n01) / sum(counts))
    assert c.extra == {"a_only": n10, "b_only": n01} and c.n == sum(counts)
    assert c.over == f"{sum(counts)} test items for these trained models"


def test_mcnemar_without_discordant_items():
    ca, cb = correct_pairs(30, 0, 0, 20)
    c = S.mcnemar(ca, cb)
    assert (c.p_value, c.difference, c.low, c.high) == (1.0, 0.0, 0.0, 0.0)
    assert str(c).startswith("no detectable difference at this budget: accuracy A − B = 0 (95% interval 0 to 0,")


def test_mcnemar_bootstrap_interval_is_reproducible_and_seeded():
    ca, cb = correct_pairs(330, 40, 20, 60)
    c = S.mcnemar(ca, cb, names=("CNN", "MLP"))
    assert c.low < c.difference < c.high
    assert (c.low, c.high) == (S.mcnemar(ca, cb, seed=0).low, S.mcnemar(ca, cb, seed=0).high)
    # the statistic lives on a grid of 1/450 steps, so 10,000 resamples of two seeds often land on the same
    # quantiles; with 1,000 the quantiles fall between grid points and show the seed
    small = [S.mcnemar(ca, cb, n_resamples=1000, seed=s) for s in (0, 0, 1)]
    assert (small[0].low, small[0].high) == (small[1].low, small[1].high) != (small[2].low, small[2].high)
    # the bootstrap sd of a mean of +1/0/−1 items is close to its normal-theory value sqrt(var(d) / N)
    d = ca.astype(float) - cb.astype(float)
    half = sps.norm.ppf(0.975) * d.std() / math.sqrt(d.size)
    assert (c.high - c.low) / 2 == pytest.approx(half, rel=0.1)
    assert c.winner == "CNN" and str(c).startswith("CNN better: accuracy CNN − MLP = +0.0444 (95% interval +")


def test_mcnemar_needs_the_exact_test_too_at_small_counts():
    # 5 discordant items, all won by A: bootstrap intervals exclude 0 (drawing none of the 5 has chance e^-5),
    # but the exact test says 5 heads in 5 fair tosses happens with p = 2 / 32 = 0.0625: no verdict.
    ca, cb = correct_pairs(400, 5, 0, 45)
    c = S.mcnemar(ca, cb)
    assert c.low > 0 and c.p_value == pytest.approx(0.0625)
    assert c.winner is None and "exact McNemar p = 0.0625" in str(c)


def test_bootstrap_chunks_draw_the_same_resamples_as_a_plain_loop():
    rng = np.random.default_rng(5)
    diff, weight = rng.normal(size=37), rng.uniform(1, 3, 37)
    loop_rng = np.random.default_rng(9)
    stats = []
    for _ in range(301):
        idx = loop_rng.integers(0, 37, size=37)
        stats.append(diff[idx].sum() / weight[idx].sum())
    expected = np.quantile(stats, [0.05, 0.95])
    for max_cells in (37 * 1000, 37 * 7, 1):  # one chunk, a ragged last chunk, one resample per chunk
        got = S._percentile_interval(diff, weight, 0.9, 301, 9, max_cells=max_cells)
        assert got == pytest.approx(tuple(expected), rel=1e-12)


# ---- paired_bootstrap ----------------------------------------------------------------------------------------

def test_paired_bootstrap_with_sizes_is_the_pooled_ratio_and_lower_bits_per_byte_wins():
    bytes_ = np.array([1000, 5000, 2000, 800, 3000, 1500, 2500, 4000, 1200])
    bits_a = bytes_ * np.array([1.1, 1.0, 1.2, 1.3, 1.05, 1.15, 1.1, 0.95, 1.25])
    bits_b = bits_a + bytes_ * np.array([0.3, 0.2, 0.35, 0.4, 0.25, 0.3, 0.28, 0.22, 0.33])
    c = S.paired_bootstrap(bits_a, bits_b, sizes=bytes_, names=("GPT", "5-gram"), measure="bits per byte",
                           higher_is_better=False, unit="test files")
    pooled = bits_a.sum() / bytes_.sum() - bits_b.sum() / bytes_.sum()
    assert c.difference == pytest.approx(pooled, rel=1e-12)
    assert c.difference != pytest.approx(np.mean(bits_a / bytes_ - bits_b / bytes_), rel=1e-3)  # not a mean of ratios
    assert c.high < 0 and c.winner == "GPT" and c.p_value is None
    assert str(c).startswith(f"GPT better: bits per byte (lower is better) GPT {M} 5-gram = {M}0.2")
    assert str(c).endswith(", paired bootstrap, pooled ratio, over 9 test files)")
    flipped = S.paired_bootstrap(bits_b, bits_a, sizes=bytes_, names=("5-gram", "GPT"), higher_is_better=False)
    assert flipped.low > 0 and flipped.winner == "GPT" and str(flipped).startswith(
        "GPT better: score (lower is better) 5-gram")


def test_paired_bootstrap_resamples_the_same_groups_for_a_and_b():
    # group scores vary a lot, but A is exactly 0.1 above B in every group: pairing leaves no spread at all
    b = np.array([0.2, 0.9, 0.5, 0.7, 0.3, 0.6])
    c = S.paired_bootstrap(b + 0.1, b, n_resamples=500)
    assert c.difference == pytest.approx(0.1)
    assert (c.low, c.high) == pytest.approx((0.1, 0.1), abs=1e-12)
    assert c.over == "6 groups" and c.winner == "A"


# ---- verdicts and require ------------------------------------------------------------------------------------

def made(difference, low, high, higher_is_better=True, p_value=None, level=0.95):
    return S.Comparison("dropout", "plain", "test accuracy", difference, low, high, level, higher_is_better,
                        "3 training seeds on this test set", "paired t, 2 degrees of freedom", 3, p_value)


def test_verdict_three_forms_signs_and_three_significant_figures():
    tail = "paired t, 2 degrees of freedom, over 3 training seeds on this test set)"
    assert S.verdict(made(0.021349, 0.0081234, 0.0345678)) == (
        f"dropout better: test accuracy dropout {M} plain = +0.0213 (95% interval +0.00812 to +0.0346, " + tail)
    assert S.verdict(made(-1.23456, -2.0, -0.5)) == (
        f"plain better: test accuracy dropout {M} plain = {M}1.23 (95% interval {M}2.00 to {M}0.500, " + tail)
    assert S.verdict(made(0.0017, -0.004, 0.0074, level=0.99)) == (
        f"no detectable difference at this budget: test accuracy dropout {M} plain = +0.00170 "
        f"(99% interval {M}0.00400 to +0.00740, " + tail)
    # lower is better: a negative difference favours A, a positive one B
    assert str(made(-0.3, -0.5, -0.1, higher_is_better=False)).startswith("dropout better:")
    assert str(made(0.3, 0.1, 0.5, higher_is_better=False)).startswith("plain better:")
    assert str(made(0.3, 0.0, 0.5)).startswith("no detectable")  # an interval touching 0 does not exclude it
    assert str(made(0.3, 0.1, 0.5, p_value=0.2)).startswith("no detectable")  # the test must agree


@pytest.mark.parametrize("x, text", [(0.021, "+0.0210"), (9.996, "+10.0"), (1234.5, "+1230"), (-0.5, f"{M}0.500"),
                                     (0.0, "0"), (123.456, "+123"), (-2.0 / 3, f"{M}0.667")])
def test_numbers_have_three_significant_figures_and_a_sign(x, text):
    assert S._fmt(x) == text


def test_require_passes_a_clear_effect_and_refuses_a_95_but_not_99_percent_one():
    clear = S.require(S.paired_seeds([0.90, 0.92, 0.91, 0.93], [0.80, 0.81, 0.80, 0.82]))
    assert clear.level == 0.99 and clear.winner == "A"
    # 5 seeds, t = 3.5 on 4 degrees of freedom: above t_{0.975} = 2.78, below t_{0.995} = 4.60
    z = np.array([-2, -1, 0, 1, 2]) / math.sqrt(2.5)  # sample sd 1, so SE = 1 / sqrt(5)
    a = 3.5 / math.sqrt(5) + z
    borderline = S.paired_seeds(a, np.zeros(5), names=("new", "old"))
    assert borderline.extra["t"] == pytest.approx(3.5) and borderline.winner == "new"
    with pytest.raises(AssertionError, match=r"new is not shown better than old at 99%: no detectable difference "
                                             r"at this budget: score new − old = \+1\.57 \(99% interval"):
        S.require(borderline)
    S.require(borderline, level=0.95)
    with pytest.raises(AssertionError, match="B better"):
        S.require(S.paired_seeds([0.0, 0.1, 0.0], [5.0, 5.2, 5.1]))
    with pytest.raises(TypeError, match="must come from paired_seeds"):
        S.require(made(0.3, 0.1, 0.5))


def test_comparison_is_frozen_and_its_repr_hides_the_recompute_hook():
    c = S.paired_seeds([1, 2, 3], [0, 0, 0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.difference = 0.0
    assert "_redo" not in repr(c) and "lambda" not in repr(c)
    assert c == S.paired_seeds([1, 2, 3], [0, 0, 0])


# ---- bad input -------------------------------------------------------------------------------------------------

ITEMS = np.array([True, False, True])


@pytest.mark.parametrize("call, error, words", [
    (lambda: S.paired_seeds([1, 2, 3], [1, 2]), ValueError, ["a and b", "same length", "a 3", "b 2"]),
    (lambda: S.paired_seeds([0.9], [0.8]), ValueError, ["at least 2 seeds", "got 1"]),
    (lambda: S.paired_seeds([0.9, math.nan], [0.8, 0.7]), ValueError, ["a must hold finite", "nan at index 1"]),
    (lambda: S.paired_seeds([1, 2], [1, math.inf]), ValueError, ["b must hold finite", "inf at index 1"]),
    (lambda: S.paired_seeds([1, 2], [1, 2], level=1.5), ValueError, ["level must lie in (0, 1)", "1.5"]),
    (lambda: S.paired_seeds([1, 2], [1, 2], level=0), ValueError, ["level must lie in (0, 1)", "got 0"]),
    (lambda: S.paired_seeds(["x", "y"], [1, 2]), TypeError, ["a must hold numbers", "<U1"]),
    (lambda: S.paired_seeds([[1, 2]], [[1, 2]]), ValueError, ["a must have shape (n,)", "(1, 2)"]),
    (lambda: S.paired_seeds([1, 2], [1, 2], names=("A",)), TypeError, ["names must be two strings", "('A',)"]),
    (lambda: S.paired_seeds([1, 2], [1, 2], higher_is_better="yes"), TypeError, ["higher_is_better", "'yes'"]),
    (lambda: S.mcnemar([1, 0, 1], ITEMS), TypeError, ["correct_a must be a bool array", "int64"]),
    (lambda: S.mcnemar(ITEMS, [0.9, 0.1, 0.8]), TypeError, ["correct_b must be a bool array", "float64"]),
    (lambda: S.mcnemar([], []), ValueError, ["correct_a must hold at least 1 test item", "empty"]),
    (lambda: S.mcnemar(ITEMS, ITEMS[:2]), ValueError, ["same length", "correct_a 3", "correct_b 2"]),
    (lambda: S.mcnemar(ITEMS, ITEMS, n_resamples=0), ValueError, ["n_resamples", "positive", "got 0"]),
    (lambda: S.paired_bootstrap([], []), ValueError, ["at least 2 groups", "got 0"]),
    (lambda: S.paired_bootstrap([1, 2], [1, 2], sizes=[3, 0]), ValueError, ["sizes must be > 0", "got 0"]),
    (lambda: S.paired_bootstrap([1, 2], [1, 2], sizes=[3]), ValueError, ["same length", "sizes 1"]),
    (lambda: S.paired_bootstrap([1, 2], [1, 2], unit=3), TypeError, ["unit must be a str", "got 3"]),
])
def test_bad_input_is_refused_with_the_value_and_what_is_accepted(call, error, words):
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_seeds_and_items_adds_the_two_variances_with_welch_satterthwaite_degrees_of_freedom():
    rng = np.random.default_rng(1)
    a = rng.random((3, 450)) < np.array([[0.98], [0.97], [0.985]])
    b = rng.random((3, 450)) < np.array([[0.95], [0.945], [0.955]])
    both = S.seeds_and_items(a, b, names=("MLP", "softmax"))
    d = 100 * (a.astype(float) - b.astype(float))
    se_seeds = d.mean(1).std(ddof=1) / np.sqrt(3)
    se_items = d.mean(0).std(ddof=1) / np.sqrt(450)
    assert both.extra["se"] == pytest.approx(np.hypot(se_seeds, se_items), rel=1e-12)
    assert both.difference == pytest.approx(d.mean(), rel=1e-12)
    half = both.high - both.difference
    se = np.hypot(se_seeds, se_items)
    df = se**4 / (se_seeds**4 / 2 + se_items**4 / 449)  # Welch–Satterthwaite
    assert both.extra["df"] == pytest.approx(df, rel=1e-12) and 2 < df < 449
    assert half == pytest.approx(sps.t.ppf(0.975, df) * se, rel=1e-9)
    seeds_only = S.paired_seeds(d.mean(1), np.zeros(3))
    assert both.extra["se"] > seeds_only.extra["se"]  # item noise adds to the seeds' standard error
    assert "3 training seeds and 450 test items" in str(both)
    with pytest.raises(ValueError, match="same shape"):
        S.seeds_and_items(a, b[:, :10])
    with pytest.raises(ValueError, match="at least 2 seeds"):
        S.seeds_and_items(a[:1], b[:1])
    with pytest.raises(TypeError, match="bool"):
        S.seeds_and_items(a.astype(int), b)
