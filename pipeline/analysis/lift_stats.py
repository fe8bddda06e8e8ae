"""The statistics of the lift table, on conversions and leads per level: Wilson intervals,
the empirical-Bayes shrinkage prior and shrunk rates, level-vs-rest p-values with
Benjamini-Hochberg adjustment, and the per-attribute test of independence with Holm's
adjustment (factor selection)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import stats

#: Strength (a + b) of the fallback prior used when the moment fit is impossible.
WEAK_PRIOR_STRENGTH = 2.0


def wilson_interval(
    conversions: np.ndarray | float, leads: np.ndarray | float, *, alpha: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion (vectorised); NaN where leads == 0."""
    k = np.asarray(conversions, dtype=float)
    n = np.asarray(leads, dtype=float)
    z = stats.norm.ppf(1.0 - alpha / 2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        denom = 1.0 + z * z / n
        centre = (p + z * z / (2.0 * n)) / denom
        half = z * np.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / denom
        low = np.where(k == 0, 0.0, np.clip(centre - half, 0.0, 1.0))  # exact at the ends
        high = np.where(k == n, 1.0, np.clip(centre + half, 0.0, 1.0))
    low = np.where(n > 0, low, np.nan)
    high = np.where(n > 0, high, np.nan)
    return low, high


def _adjusted(p_values: np.ndarray | list[float],
              adjust_sorted: Callable[[np.ndarray, int], np.ndarray]) -> np.ndarray:
    """Multiple-testing adjustment: ``adjust_sorted`` maps the ``m`` ascending p-values to
    their adjusted values; the result is capped at 1, in input order, NaN staying NaN."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return out
    pv = p[ok]
    order = np.argsort(pv, kind="stable")
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(adjust_sorted(pv[order], m), 1.0)
    out[ok] = adjusted
    return out


def benjamini_hochberg(p_values: np.ndarray | list[float]) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (step-up, monotone, capped at 1); NaN stays NaN."""
    def step_up(ranked: np.ndarray, m: int) -> np.ndarray:
        return np.minimum.accumulate((ranked * m / np.arange(1, m + 1))[::-1])[::-1]

    return _adjusted(p_values, step_up)


def beta_prior(
    conversions: np.ndarray, leads: np.ndarray, *, overall_rate: float
) -> tuple[float, float, str]:
    """Beta(a, b) prior for the levels of one attribute, by the method of moments.

    Each level ``i`` has ``k_i`` conversions out of ``n_i`` leads, its true rate ``p_i``
    drawn from Beta(a, b) with mean ``mu`` and intra-class correlation
    ``rho = 1 / (a + b + 1)``, so ``Var(p_i) = rho * mu * (1 - mu)``. The observed rates
    ``r_i = k_i / n_i`` scatter by that between-level variance *plus* binomial sampling
    noise ``p_i (1 - p_i) / n_i``. With ``mu`` the pooled rate, the weighted sum of squares

        Q = sum_i n_i (r_i - mu)^2 / (mu (1 - mu))

    (the Pearson chi-square of levels vs conversion) has expectation
    ``(L - 1) + rho * (N - sum_i n_i^2 / N - (L - 1))``: ``L - 1`` is what sampling noise
    alone gives, the rest is the real spread. Solving for ``rho`` (the ANOVA estimator
    for unequal level sizes) subtracts the expected sampling variance from the observed
    one; the prior strength is ``a + b = 1 / rho - 1``.

    When ``Q <= L - 1`` the levels differ no more than chance does: the between-level
    variance is estimated as zero, so the prior is infinitely strong (``a = b = inf``,
    ``how == "pooled"``) and every shrunk rate is the pooled rate (see
    :func:`shrunk_rates`). The smaller the excess of ``Q`` over ``L - 1``, the stronger the
    prior: levels that differ by chance are pulled to the overall rate, levels with a
    real spread keep most of it.

    Returns ``(a, b, how)``; ``how`` is ``"moments"``, ``"pooled"`` or, when the attribute
    has fewer than two levels with leads, a pooled rate of 0 or 1 (every level's rate is
    the pooled one anyway), too few leads to estimate (``N - sum n_i^2 / N <= L - 1``) or a
    separation so extreme that ``rho >= 1``, the ``"weak"`` prior of strength
    :data:`WEAK_PRIOR_STRENGTH` centred on ``overall_rate``.
    """
    k = np.asarray(conversions, dtype=float)
    n = np.asarray(leads, dtype=float)
    keep = n > 0
    k, n = k[keep], n[keep]
    weak = (
        WEAK_PRIOR_STRENGTH * overall_rate,
        WEAK_PRIOR_STRENGTH * (1.0 - overall_rate),
        "weak",
    )
    n_levels = n.size
    if n_levels < 2:
        return weak
    total = n.sum()
    mu = k.sum() / total
    if not 0.0 < mu < 1.0:
        return weak
    rates = k / n
    between = float(np.sum(n * (rates - mu) ** 2)) / (mu * (1.0 - mu))
    denom = total - float(np.sum(n * n)) / total - (n_levels - 1)
    if denom <= 0:
        return weak
    rho = (between - (n_levels - 1)) / denom
    if np.isfinite(rho) and rho <= 0.0:
        return math.inf, math.inf, "pooled"
    if not (np.isfinite(rho) and rho < 1.0):
        return weak
    strength = 1.0 / rho - 1.0
    return strength * mu, strength * (1.0 - mu), "moments"


def shrunk_rates(
    conversions: np.ndarray, leads: np.ndarray, a: float, b: float, *, prior_mean: float
) -> np.ndarray:
    """Posterior mean rate ``(a + k) / (a + b + n)`` of each level under Beta(a, b).

    An infinitely strong prior (``a`` or ``b`` infinite: :func:`beta_prior` found no
    spread beyond chance) gives every level ``prior_mean``; a level without leads gets
    the prior mean too.
    """
    k = np.asarray(conversions, dtype=float)
    n = np.asarray(leads, dtype=float)
    if math.isinf(a) or math.isinf(b):
        return np.full(k.shape, float(prior_mean))
    return (a + k) / (a + b + n)


def level_vs_rest_p_values(
    conversions: np.ndarray, leads: np.ndarray, *, total_conversions: int, total_leads: int
) -> np.ndarray:
    """p-value of each level against all other leads (2x2 table).

    Pearson chi-square without continuity correction; Fisher's exact test (two-sided)
    when any expected count is below 5. A table with an empty row or column (a level
    holding every lead, or a target with one class) has nothing to test: p = 1.
    """
    a = np.asarray(conversions, dtype=float)  # level, converted
    n1 = np.asarray(leads, dtype=float)
    b = n1 - a  # level, not converted
    c = total_conversions - a  # rest, converted
    n2 = total_leads - n1
    d = n2 - c  # rest, not converted
    col1 = float(total_conversions)
    col2 = float(total_leads - total_conversions)
    big_n = float(total_leads)
    p = np.ones(a.shape)
    testable = (n1 > 0) & (n2 > 0) & (col1 > 0) & (col2 > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected_min = np.minimum.reduce([n1 * col1, n1 * col2, n2 * col1, n2 * col2]) / big_n
        chi2 = big_n * (a * d - b * c) ** 2 / (n1 * n2 * col1 * col2)
    chi_rows = testable & (expected_min >= 5)
    p[chi_rows] = stats.chi2.sf(chi2[chi_rows], df=1)
    for i in np.flatnonzero(testable & ~chi_rows):
        table = [[int(a[i]), int(b[i])], [int(c[i]), int(d[i])]]
        p[i] = stats.fisher_exact(table, alternative="two-sided").pvalue
    return np.clip(p, 0.0, 1.0)


def holm(p_values: np.ndarray | list[float]) -> np.ndarray:
    """Holm step-down adjusted p-values (monotone, capped at 1); NaN stays NaN.

    The ``i``-th smallest of ``m`` p-values is multiplied by ``m - i + 1`` and the running
    maximum taken: rejecting where the adjusted value is at most ``alpha`` keeps the chance
    of rejecting *any* true null at most ``alpha`` (family-wise error), whatever the
    dependence between the tests.
    """
    def step_down(ranked: np.ndarray, m: int) -> np.ndarray:
        return np.maximum.accumulate(ranked * (m - np.arange(m)))

    return _adjusted(p_values, step_down)


#: Smallest expected count per cell for the chi-square distribution of the test statistic
#: to be trusted (Cochran); below it the p-value is simulated.
MIN_EXPECTED = 5.0


def independence_test(
    conversions: np.ndarray, leads: np.ndarray, *, draws: int = 9999, seed: int = 0
) -> tuple[float, float, str]:
    """Pearson chi-square test of independence of an attribute's levels and conversion.

    The levels x (converted, not converted) table has ``L`` rows; the statistic is
    ``X2 = sum_i (k_i - n_i mu)^2 / (n_i mu (1 - mu))`` with ``mu`` the pooled rate, on
    ``L - 1`` degrees of freedom. When every expected cell (``n_i mu`` and
    ``n_i (1 - mu)``) is at least :data:`MIN_EXPECTED` the p-value is the chi-square tail
    (``how == "chi2"``). Otherwise (rare levels, a low base rate) the asymptotic tail is
    not trusted and the p-value is simulated: ``draws`` tables with the same margins
    drawn from the multivariate hypergeometric distribution (the exact null distribution
    given the margins, seeded by ``seed``), ``p = (1 + #{X2_sim >= X2}) / (draws + 1)``
    (``how == "simulated"``). Levels without leads are ignored; with fewer than two
    levels, or a single class, there is nothing to test: ``(0.0, 1.0, "none")``.
    Returns ``(X2, p, how)``.
    """
    k = np.asarray(conversions, dtype=np.int64)
    n = np.asarray(leads, dtype=np.int64)
    keep = n > 0
    k, n = k[keep], n[keep]
    total, wins = int(n.sum()), int(k.sum())
    if n.size < 2 or wins == 0 or wins == total:
        return 0.0, 1.0, "none"
    mu = wins / total
    statistic = _pearson_x2(k, n, mu)
    if float(n.min()) * min(mu, 1.0 - mu) >= MIN_EXPECTED:
        return statistic, float(stats.chi2.sf(statistic, df=n.size - 1)), "chi2"
    rng = np.random.default_rng(seed)
    simulated = rng.multivariate_hypergeometric(n, wins, size=draws, method="marginals")
    x2 = _pearson_x2(simulated, n, mu)
    exceed = int(np.count_nonzero(x2 >= statistic * (1.0 - 1e-9)))
    return statistic, (1.0 + exceed) / (draws + 1.0), "simulated"


def _pearson_x2(k: np.ndarray, n: np.ndarray, mu: float) -> np.ndarray | float:
    """Pearson chi-square of levels vs conversion, over the last axis of ``k``."""
    expected = n * mu
    return np.sum((k - expected) ** 2 / (expected * (1.0 - mu)), axis=-1)
