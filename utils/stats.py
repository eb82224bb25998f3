"""Is A better than B, or is it noise? The course's one way to compare two models.

Every score we report is noisy twice over. Training is random (initialisation, data order, dropout), so a second
seed gives a different model; and a test set is a sample, so a second test set gives a different score: on 450
items one item is 1/450 = 0.22 points of accuracy, and at 90% accuracy a score's standard error is about
sqrt(0.9 · 0.1 / 450) = 1.4 points (two test sets' scores differ by about sqrt(2) times that). A gain of a point or
two can come from either.

Pair what can be paired. Score A and B on the same items, and where you can, train them with the same seed *and*
let that seed fix what they share (the data order, the initial weights where the shapes allow); then look at the
differences d_i = a_i - b_i. Var(a − b) = Var(a) + Var(b) − 2 Cov(a, b): luck that both share (an easy data order,
an easy test item) makes the covariance positive and cancels in d_i. Two runs that merely carry the same seed
number but share nothing are still validly paired, but then the pairing cancels nothing and costs degrees of
freedom (n − 1 instead of up to 2n − 2).

An interval, not a yes/no. ``paired_seeds`` gives d_mean ± t · SE with SE = s / sqrt(n). The multiplier t is not 2:
it is Student's t with n - 1 degrees of freedom, because s itself is guessed from n points. For 95% it is 12.7 with
2 seeds, 4.30 with 3, 2.78 with 5, 2.26 with 10 and reaches 1.96 only for many seeds. So with 3 seeds a gap of
2 standard errors is nowhere near enough. Over repeated experiments, 95% of such intervals cover the true difference.

Three verdicts, read off the interval: "A better" or "B better" when it excludes 0, otherwise "no detectable
difference at this budget". The last is *not* evidence that A and B are equal: the interval may be wide enough to
hold a large gain, and more seeds or more test items may reveal one. Report it as "not detected", never "the same".

What a verdict generalises over is part of it:
- over seeds (``paired_seeds``): training randomness, on this one test set;
- over test items (``mcnemar``, ``paired_bootstrap``): other test items like these, for these trained models only;
- a claim about a *method* ("dropout helps") needs both in one interval: ``seeds_and_items`` adds the two
  variances (several seeds, each scored on the same test items).

``require`` is the strict form for ``assert``-style use: it asks for a 99% interval. Of comparisons with no real
difference, a 95% interval flags one in twenty and a 99% one one in a hundred; that is not family-wise control
(thirty such comparisons at 99% still give about a one-in-four chance of some false finding), but it keeps a
borderline verdict, which can flip on another machine, out of the asserts.
"""
import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as sps

from . import _validate as check

MINUS = "\u2212"  # the typographic minus, so "−0.5" and "A − B" read as maths in printed verdicts


@dataclass(frozen=True)
class Comparison:
    """The result of comparing A with B on one measure: the point estimate of A − B, an interval for it at
    ``level``, and what that interval generalises ``over``. ``str(c)`` is the verdict sentence."""
    a: str
    b: str
    measure: str
    difference: float
    low: float
    high: float
    level: float
    higher_is_better: bool
    over: str
    method: str
    n: int
    p_value: float | None
    extra: dict = field(default_factory=dict)
    _redo: object = field(default=None, repr=False, compare=False)  # level -> Comparison, for ``require``

    @property
    def winner(self) -> str | None:
        """The name of the better one, or None when the interval contains 0 (or the test's p is not below 1 − level,
        which for McNemar's exact test can happen at small counts where the bootstrap interval is too narrow)."""
        if self.p_value is not None and not self.p_value < 1 - self.level:
            return None
        if self.low > 0 or self.high < 0:
            a_higher = self.low > 0
            return self.a if a_higher == self.higher_is_better else self.b
        return None

    def verdict(self) -> str:
        head = f"{self.winner} better" if self.winner else "no detectable difference at this budget"
        measure = self.measure if self.higher_is_better else f"{self.measure} (lower is better)"
        return (f"{head}: {measure} {self.a} {MINUS} {self.b} = {_fmt(self.difference)} "
                f"({100 * self.level:.4g}% interval {_fmt(self.low)} to {_fmt(self.high)}, {self.method}, "
                f"over {self.over})")

    __str__ = verdict


def verdict(comparison: Comparison) -> str:
    """The one sentence the chapters print and quote: "<A> better: ...", "<B> better: ..." or
    "no detectable difference at this budget: <measure> <A> − <B> = +x (95% interval lo to hi, method, over ...)"."""
    return comparison.verdict()


def paired_seeds(a, b, *, names=("A", "B"), measure="score", higher_is_better=True, level=0.95) -> Comparison:
    """Paired t interval over training seeds. a, b: (n,) scores of A and B both trained with seed i, n >= 2.
    Pairing cancels luck only if the seed really fixes something both runs share (e.g. a DataLoader given its own
    ``generator=torch.Generator().manual_seed(seed)``, the same initial weights); a seed set once before two runs
    that draw from the global stream at different points pairs them validly but shares nothing.

    d_i = a_i − b_i,  d̄ = mean(d),  s = sqrt(Σ (d_i − d̄)² / (n − 1)),  SE = s / √n
    interval  d̄ ± t_{1−α/2, n−1} · SE  (α = 1 − level),   p = 2 · P(T_{n−1} > |d̄ / SE|)
    Generalises over training randomness, on this test set, and nothing else: whether a gap of a few test items is
    more than the test set's own noise is the question of ``mcnemar`` and ``seeds_and_items``. All d_i equal (to
    rounding; easy on accuracy's 1/N grid, e.g. one extra image on every seed): s = 0 leaves the spread unknown,
    so there is no t interval and no verdict (the interval printed is −inf to +inf); use ``seeds_and_items``.
    """
    a, b = _vectors(("a", "b"), a, b, minimum=2, what="seeds")
    names, level = _names(names, measure, higher_is_better), _level(level)
    d, n = a - b, a.size
    mean, df = float(d.mean()), n - 1
    equal = np.ptp(d) <= 1e-9 * max(1.0, float(np.abs(d).max()))  # float32 accuracies: equal gaps differ by ~1e-7
    se = 0.0 if equal else float(d.std(ddof=1)) / math.sqrt(n)
    t_crit = float(sps.t.ppf(0.5 + level / 2, df))
    t = mean / se if se else math.nan  # s = 0: no estimate of the spread, so no t
    p = float(2 * sps.t.sf(abs(t), df)) if se else None
    half = t_crit * se if se else math.inf
    ahead = int(np.sum(d > 0 if higher_is_better else d < 0))
    return Comparison(*names, measure, mean, mean - half, mean + half, level, higher_is_better,
                      over=f"{n} training seeds on this test set",
                      method=(f"paired t, {df} degree{'s' if df > 1 else ''} of freedom" if se else
                              f"all {n} gaps equal: no spread to estimate, no verdict"), n=n, p_value=p,
                      extra={"se": se, "t": t, "t_crit": t_crit, "a_ahead": ahead},
                      _redo=lambda lv: paired_seeds(a, b, names=names, measure=measure,
                                                    higher_is_better=higher_is_better, level=lv))


def mcnemar(correct_a, correct_b, *, names=("A", "B"), measure="accuracy", level=0.95, n_resamples=10_000,
            seed=0, scale=1.0) -> Comparison:
    """Two classifiers on the same test items. correct_a, correct_b: (N,) bool, True where that model is right.

    Only discordant items carry evidence: n10 = #(A right, B wrong), n01 = #(A wrong, B right). If A and B were
    equally good each discordant item would be a fair coin, so p = two-sided binomial test of n10 out of n10 + n01
    at 1/2 (exact McNemar; p = 1 when there are none). Difference acc_A − acc_B = (n10 − n01) / N; its interval is a
    paired bootstrap over items (the same resampled items for A and B); ``scale=100`` reports it in points.
    Generalises over test items, for these trained models. A verdict needs both the interval to exclude 0 and
    p < 1 − level.
    """
    ca, cb = (_correct(nm, x) for nm, x in (("correct_a", correct_a), ("correct_b", correct_b)))
    n = check.same_length(("correct_a", "correct_b"), ca, cb)
    names, level = _names(names, measure, True), _level(level)
    n10, n01 = int(np.sum(ca & ~cb)), int(np.sum(~ca & cb))
    p = float(sps.binomtest(n10, n10 + n01, 0.5).pvalue) if n10 + n01 else 1.0
    scale = check.number("scale", scale, 0.0, low_open=True)
    d = scale * (ca.astype(np.float64) - cb.astype(np.float64))  # ±scale or 0 per item; mean = scale·(acc_A − acc_B)
    low, high = _percentile_interval(d, np.ones(n), level, n_resamples, seed)
    return Comparison(*names, measure, float(d.mean()), low, high, level, True,
                      over=f"{n} test items for these trained models",
                      method=f"exact McNemar p = {p:.3g}, paired bootstrap", n=n, p_value=p,
                      extra={"a_only": n10, "b_only": n01},
                      _redo=lambda lv: mcnemar(ca, cb, names=names, measure=measure, level=lv,
                                               n_resamples=n_resamples, seed=seed, scale=scale))


def paired_bootstrap(a, b, *, sizes=None, names=("A", "B"), measure="score", higher_is_better=True, level=0.95,
                     n_resamples=10_000, seed=0, unit="groups") -> Comparison:
    """Paired bootstrap over G >= 2 groups (test files, year blocks, ...). a, b, sizes: (G,).

    Without sizes, a_g, b_g are per-group scores and the statistic is mean(a) − mean(b).
    With sizes (e.g. bytes per file), a_g, b_g are per-group totals (e.g. bits) and the statistic is the pooled
    ratio Σa / Σsizes − Σb / Σsizes, as bits per byte is computed. Resample groups with replacement, the same groups
    for A and B; the interval is the percentile interval of the resampled statistic. p_value is None: read the
    interval. Generalises over groups like these, for these trained models.
    """
    if not isinstance(unit, str):
        raise TypeError(f"unit must be a str naming the groups (e.g. 'test files'), got {unit!r}")
    names, level = _names(names, measure, higher_is_better), _level(level)
    if sizes is None:
        a, b = _vectors(("a", "b"), a, b, minimum=2, what=unit)
        w = np.ones(a.size)  # Σ(a − b) / Σ1 is the difference of the means
    else:
        a, b, w = _vectors(("a", "b", "sizes"), a, b, sizes, minimum=2, what=unit)
        if np.any(w <= 0):
            i = int(np.flatnonzero(w <= 0)[0])
            raise ValueError(f"sizes must be > 0 (e.g. bytes per group), got {w[i]:g} at index {i}")
    low, high = _percentile_interval(a - b, w, level, n_resamples, seed)
    return Comparison(*names, measure, float((a - b).sum() / w.sum()), low, high, level, higher_is_better,
                      over=f"{a.size} {unit}", n=a.size, p_value=None,
                      method=f"paired bootstrap{', pooled ratio' if sizes is not None else ''}",
                      extra={"n_resamples": n_resamples, "seed": seed},
                      _redo=lambda lv: paired_bootstrap(a, b, sizes=sizes, names=names, measure=measure,
                                                        higher_is_better=higher_is_better, level=lv,
                                                        n_resamples=n_resamples, seed=seed, unit=unit))


def seeds_and_items(correct_a, correct_b, *, names=("A", "B"), measure="test accuracy in points", scale=100.0,
                    level=0.95) -> Comparison:
    """A claim about a *method*: training noise and test-set noise in one interval. correct_a, correct_b: (n, N)
    bool, row s = which of the N test items A (B) gets right after training with seed s; n >= 2.

    d_si = scale · (1[A right] − 1[B right]),  d̄ = mean over seeds s and items i
    seeds: g_s = mean_i d_si (the per-seed gaps), SE²_seeds = var_s(g) / n    (var with n − 1)
    items: e_i = mean_s d_si (each item's gap, averaged over seeds), SE²_items = var_i(e) / N
    SE² = SE²_seeds + SE²_items (two independent samplings; the seed-by-item part is counted in both, which errs
    on the cautious side); interval d̄ ± t_{1−α/2, ν} · SE with Welch–Satterthwaite's degrees of freedom
    ν = SE⁴ / (SE⁴_seeds / (n − 1) + SE⁴_items / (N − 1)): near n − 1 when the seeds dominate the noise, large when
    the test items do. Generalises over training seeds *and* test items like these.
    """
    ca, cb = (_correct(nm, x, ndim=2) for nm, x in (("correct_a", correct_a), ("correct_b", correct_b)))
    if ca.shape != cb.shape:
        raise ValueError(f"correct_a and correct_b must have the same shape (seeds, items), got {ca.shape} and "
                         f"{cb.shape}")
    n, items = ca.shape
    if n < 2:
        raise ValueError(f"correct_a and correct_b must hold at least 2 seeds (rows) each, got {n}")
    names, level = _names(names, measure, True), _level(level)
    scale = check.number("scale", scale, 0.0, low_open=True)
    d = scale * (ca.astype(np.float64) - cb.astype(np.float64))  # (n, N)
    se_seeds, se_items = d.mean(1).std(ddof=1) / math.sqrt(n), d.mean(0).std(ddof=1) / math.sqrt(items)
    se, mean = math.hypot(se_seeds, se_items), float(d.mean())
    df = se**4 / (se_seeds**4 / (n - 1) + se_items**4 / (items - 1)) if se else n - 1  # Welch–Satterthwaite
    t_crit = float(sps.t.ppf(0.5 + level / 2, df))
    p = float(2 * sps.t.sf(abs(mean) / se, df)) if se else 1.0
    return Comparison(*names, measure, mean, mean - t_crit * se, mean + t_crit * se, level, True,
                      over=f"{n} training seeds and {items} test items", n=n, p_value=p,
                      method=f"t over seeds and items, {df:.0f} degrees of freedom (Welch–Satterthwaite)",
                      extra={"se": se, "se_seeds": float(se_seeds), "se_items": float(se_items), "t_crit": t_crit,
                             "df": df},
                      _redo=lambda lv: seeds_and_items(ca, cb, names=names, measure=measure, scale=scale, level=lv))


def require(comparison: Comparison, level: float = 0.99) -> Comparison:
    """Assert that A is better at the stricter ``level``; returns the comparison redone at that level.

    Raises AssertionError carrying the verdict otherwise. Why 99%: a borderline verdict can flip on another
    machine, and the course makes many comparisons (see the module docstring). For a claim about a method, require
    ``seeds_and_items``, not ``paired_seeds`` alone.
    """
    if not isinstance(comparison, Comparison) or comparison._redo is None:
        raise TypeError("comparison must come from paired_seeds, mcnemar, paired_bootstrap or seeds_and_items, "
                        f"got {type(comparison).__name__}")
    strict = comparison._redo(_level(level))
    if strict.winner != strict.a:
        raise AssertionError(f"{strict.a} is not shown better than {strict.b} at {100 * strict.level:.4g}%: "
                             f"{strict.verdict()}")
    return strict


# ---- helpers ------------------------------------------------------------------------------------------------

def _percentile_interval(diff, weight, level, n_resamples, seed, max_cells=4_000_000):
    """Percentile interval of Σ diff[idx] / Σ weight[idx] over resampled index sets idx, in chunks of rows so
    that the (rows, N) index array stays near ``max_cells`` entries whatever N is."""
    n_resamples, seed = check.positive_int("n_resamples", n_resamples), check.non_negative_int("seed", seed)
    rng, n, out = np.random.default_rng(seed), diff.size, []
    rows = max(1, max_cells // n)
    for start in range(0, n_resamples, rows):
        idx = rng.integers(0, n, size=(min(rows, n_resamples - start), n))
        out.append(diff[idx].sum(axis=1) / weight[idx].sum(axis=1))
    low, high = np.quantile(np.concatenate(out), [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def _vectors(names, *xs, minimum, what):
    """Each x as a finite float (n,) array, all the same length n >= minimum."""
    out = []
    for name, x in zip(names, xs, strict=True):
        x = check.array(name, x, 1, "(n,)")
        if x.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold numbers, one per {what.rstrip('s')}, got dtype {x.dtype}")
        x = x.astype(np.float64)
        if not np.all(np.isfinite(x)):
            i = int(np.flatnonzero(~np.isfinite(x))[0])
            raise ValueError(f"{name} must hold finite numbers, got {x[i]} at index {i}")
        out.append(x)
    n = check.same_length(names, *out)
    if n < minimum:
        raise ValueError(f"{' and '.join(names)} must hold at least {minimum} {what} each (a spread needs two), "
                         f"got {n}")
    return out


def _correct(name, x, ndim=1):
    x = check.array(name, x, ndim, "(N,)" if ndim == 1 else "(seeds, N)")
    if x.size == 0:
        raise ValueError(f"{name} must hold at least 1 test item (one bool per item), got an empty array")
    if x.dtype.kind != "b":
        raise TypeError(f"{name} must be a bool array, one entry per test item (True where the model is right, "
                        f"e.g. pred == label), got dtype {x.dtype}")
    return x


def _names(names, measure, higher_is_better):
    if not (isinstance(names, tuple | list) and len(names) == 2 and all(isinstance(s, str) for s in names)):
        raise TypeError(f"names must be two strings (A's name, B's name), got {names!r}")
    if not isinstance(measure, str) or not isinstance(higher_is_better, bool):
        raise TypeError(f"measure must be a str (e.g. 'test accuracy') and higher_is_better True or False, got "
                        f"{measure!r} and {higher_is_better!r}")
    return tuple(names)


def _level(level):
    return check.number("level", level, 0.0, 1.0, low_open=True, high_open=True)


def _fmt(x: float) -> str:
    """3 significant figures with a sign, fixed-point (trailing zeros kept: they are significant)."""
    if x == 0:
        return "0"
    if not math.isfinite(x) or abs(x) < 1e-4:
        return f"{x:+.2e}".replace("-", MINUS)
    x = float(f"{x:.3g}")  # round first, so 9.996 becomes 10.0, not 10.00
    return f"{x:+.{max(2 - math.floor(math.log10(abs(x))), 0)}f}".replace("-", MINUS)
