"""Logistic regression: the regularised production fit and the statsmodels inference table.

The production coefficients come from an L2 logistic regression whose ``C`` is chosen by
stratified K-fold log loss (:func:`fit_regularised`). :func:`coefficient_table` refits without
penalty in statsmodels (reference coding) for standard errors, z, p-values and 95% intervals,
and reports perfect or quasi separation per level instead of failing.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold

from pipeline.model.encoding import FactorEncoder
from pipeline.progress import track

QUASI_SEPARATION_COEF = 10.0  # |log odds ratio| beyond which a level is reported as separating
START_C = 1e4  # penalty of the statsmodels start: enough to keep separated levels finite
# the production fit's solver: Newton with a Cholesky solve, to max |gradient| <= 1e-8 (the
# points are the coefficients scaled and rounded, so the optimum must be reached, not neared)
SOLVER = "newton-cholesky"
TOLERANCE = 1e-8


@dataclass(frozen=True)
class RegularisedFit:
    """The scikit-learn fit: one coefficient per slot, the chosen ``C`` and the CV curve."""

    coef: np.ndarray
    intercept: float
    C: float
    cv_curve: pd.DataFrame  # columns: C, cv_log_loss, cv_auc (out-of-fold, pooled)
    n_iter: int  # solver iterations of the final fit


_SAMPLES: dict[tuple, np.ndarray] = {}  # the last few samples drawn, by labels + size + seed
_SAMPLES_KEPT = 8


def stratified_sample(y: np.ndarray, max_rows: int | None, seed: int) -> np.ndarray:
    """Row positions of a stratified sample of at most ``max_rows`` (all rows when fewer).

    A training run draws the same sample of its 800k training labels three times (the C
    search, the statsmodels inference, the benchmark): 0.2 s each. The draw is remembered
    by a digest of the labels, so the second and third are a lookup, the same positions."""
    y = np.asarray(y)
    n = len(y)
    if max_rows is None or n <= max_rows:
        return np.arange(n)
    labels = np.ascontiguousarray(y)
    key = (hashlib.blake2b(labels.view(np.uint8), digest_size=16).digest(), labels.dtype.str,
           n, int(max_rows), int(seed))
    drawn = _SAMPLES.get(key)
    if drawn is None:
        from sklearn.model_selection import train_test_split

        keep, _ = train_test_split(np.arange(n), train_size=max_rows, stratify=y,
                                   random_state=seed)
        drawn = np.sort(keep)
        if len(_SAMPLES) >= _SAMPLES_KEPT:
            _SAMPLES.pop(next(iter(_SAMPLES)))
        _SAMPLES[key] = drawn
    return drawn.copy()


def fit_regularised(design: sp.csr_matrix, y: np.ndarray, *, c_grid: list[float], folds: int,
                    seed: int, max_iter: int, max_cv_rows: int | None = None) -> RegularisedFit:
    """L2 logistic regression; ``C`` chosen by stratified K-fold log loss (on a stratified
    sample of at most ``max_cv_rows`` leads: the choice of C is stable long before 1M rows);
    the final fit uses every lead.

    Within a fold the grid is fitted from the strongest penalty to the weakest, each fit
    starting from the previous solution; the final fit starts from the folds' mean solution
    at the chosen ``C``. Newton's method then needs a step or two instead of five: the same
    optimum (the tolerance is 1e-8), reached in a fraction of the time on large data.
    """
    y_all = np.asarray(y, dtype=int)
    design_all = design
    sample = stratified_sample(y_all, max_cv_rows, seed)
    design, y = design_all[sample], y_all[sample]
    n_folds = max(2, min(folds, int(np.bincount(y).min())))
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    splits = list(splitter.split(np.zeros(len(y)), y))
    order = sorted(range(len(c_grid)), key=lambda i: c_grid[i])
    fold_losses = np.empty((len(c_grid), n_folds))
    oof = np.empty((len(c_grid), len(y)), dtype=float)
    solutions: list[list[LogisticRegression]] = [[] for _ in c_grid]
    for k, (train, test) in enumerate(track(splits, f"choosing C: {n_folds} CV folds")):
        previous = None
        fold_design, fold_y, test_design = design[train], y[train], design[test]  # once a fold
        for i in order:
            model = _logistic(c_grid[i], max_iter, start=previous).fit(fold_design, fold_y)
            oof[i, test] = model.predict_proba(test_design)[:, 1]
            fold_losses[i, k] = log_loss(y[test], oof[i, test], labels=[0, 1])
            solutions[i].append(model)
            previous = model
    losses = [float(v) for v in fold_losses.mean(axis=1)]
    aucs = [float(roc_auc_score(y, oof[i])) for i in range(len(c_grid))]
    chosen = int(np.argmin(losses))
    best = float(c_grid[chosen])
    model = _logistic(best, max_iter, start=_mean_solution(solutions[chosen])).fit(design_all,
                                                                                     y_all)
    curve = pd.DataFrame({"C": list(c_grid), "cv_log_loss": losses, "cv_auc": aucs})
    return RegularisedFit(model.coef_[0].copy(), float(model.intercept_[0]), best, curve,
                          int(model.n_iter_[0]))


def _mean_solution(models: list[LogisticRegression]) -> LogisticRegression:
    """A stand-in model holding the mean coefficients of ``models`` (a warm start)."""
    mean = LogisticRegression()
    mean.coef_ = np.mean([m.coef_ for m in models], axis=0)
    mean.intercept_ = np.mean([m.intercept_ for m in models], axis=0)
    return mean


def _logistic(C: float, max_iter: int, *, start: LogisticRegression | None = None
              ) -> LogisticRegression:
    """Newton-Cholesky L2 logistic regression, optionally starting from ``start``'s solution."""
    model = LogisticRegression(C=C, solver=SOLVER, max_iter=max_iter, tol=TOLERANCE,
                               warm_start=start is not None)
    if start is not None:
        model.coef_ = start.coef_.copy()
        model.intercept_ = start.intercept_.copy()
    return model


def reference_slots(encoder: FactorEncoder) -> list[int]:
    """Design column of each factor's reference level (its most common slot)."""
    refs = []
    for j, factor in enumerate(encoder.factors_):
        refs.append(int(encoder.offsets_[j] + int(np.argmax(factor.counts))))
    return refs


def _sample_start(design: sp.csr_matrix, y: np.ndarray) -> np.ndarray:
    """Start for statsmodels: a barely penalised fit of the same (reference-coded) sample.

    Newton in statsmodels is dense (one Hessian of the whole sample per step); from this
    start it needs a step or two. The sparse scikit-learn fit that gives it is much cheaper.
    """
    model = LogisticRegression(C=START_C, solver=SOLVER, tol=TOLERANCE, max_iter=100)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(design, y)
    except Warning:  # filters are process-wide: another thread's block can restore "error"
        return np.zeros(design.shape[1] + 1)  # a worse start, the same estimate
    return np.concatenate([model.intercept_, model.coef_[0]])


def _maximum_likelihood(logit: Any, start: np.ndarray) -> Any:
    """statsmodels' maximum likelihood from ``start`` (the sample's near-unpenalised fit).

    Newton needs a step or two from there. Where its Hessian is singular (quasi-separated
    levels), BFGS takes over from the same start.
    """
    # convergence is read from mle_retvals, not from a warning: warning filters are global
    # and training runs other threads, so a catch_warnings block here would not be safe alone
    quiet = {"disp": False, "start_params": start, "warn_convergence": False}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            result = logit.fit(method="newton", maxiter=25, **quiet)
            if result.mle_retvals.get("converged") and np.isfinite(result.params).all():
                return result
        except (np.linalg.LinAlgError, Warning):  # a Warning: raised by a filter, see above
            pass
        return logit.fit(method="bfgs", maxiter=100, **quiet)


def _information(logit: Any, result: Any) -> np.ndarray:
    """Fisher information at the estimate: Newton's last Hessian when it has one."""
    hessian = result.mle_retvals.get("Hessian")  # Newton's: -loglike Hessian / nobs
    if hessian is not None and hessian.shape == (len(result.params),) * 2:
        return np.asarray(hessian) * logit.endog.shape[0]
    return -logit.hessian(np.asarray(result.params))


def _identified_basis(gram: np.ndarray) -> np.ndarray | None:
    """Orthonormal basis of the directions the data pin down (the row space of the design,
    from its Gram matrix ``X'X``), or None when every direction is pinned down.

    Collinear levels (e.g. "no product event" in two factors) leave the likelihood flat along
    the other directions: many estimates fit equally well. Fitting in this basis gives the
    shortest of them, the same whatever the start, and keeps Newton's Hessian invertible.
    Numerically zero follows numpy's ``matrix_rank`` rule.
    """
    values, vectors = np.linalg.eigh(gram)
    tolerance = np.abs(values).max() * len(values) * np.finfo(float).eps
    pinned = values > tolerance
    return None if pinned.all() else vectors[:, pinned]


@dataclass(frozen=True)
class InferenceSample:
    """What the statsmodels fit needs, drawn from the training design: small enough to send
    to another process, so the inference can run there while the regularised fit runs here."""

    sampled: sp.csr_matrix  # intercept + the non-reference slots with a lead, sampled rows
    y: np.ndarray  # the sampled outcomes
    keep: list[int]  # design column of each non-reference slot (column k + 1 of the fit)
    present: np.ndarray  # positions (0 = intercept) of the columns that have a lead
    names: list[str]  # design column names
    separated: frozenset[int]  # design columns whose leads (all rows) all won or all lost
    notes: list[str]


@dataclass(frozen=True)
class Estimates:
    """statsmodels' estimates and standard errors (NaN where a column has no estimate)."""

    params: np.ndarray
    bse: np.ndarray
    notes: list[str]


def inference_sample(encoder: FactorEncoder, design: sp.csr_matrix, y: np.ndarray, *,
                     max_rows: int | None = None, seed: int = 0) -> InferenceSample:
    """Reference coding (each factor's most common level = 0) of a stratified sample of at
    most ``max_rows`` leads; separation is found on every lead, by level."""
    refs = set(reference_slots(encoder))
    names = [str(n) for n in encoder.get_feature_names_out()]
    keep = [i for i in range(design.shape[1]) if i not in refs]
    y = np.asarray(y, dtype=int)
    counts = np.asarray(design.sum(axis=0)).ravel()
    wins = np.asarray(design.T @ y).ravel()
    separated = [i for i in keep if counts[i] > 0 and (wins[i] == 0 or wins[i] == counts[i])]
    notes = [f"separation: every lead with {names[i]} ({int(counts[i])} leads) "
             f"{'won' if wins[i] == counts[i] else 'lost'}; its odds ratio is unbounded, the "
             "regularised fit keeps it finite" for i in separated]
    sample = stratified_sample(y, max_rows, seed)
    if len(sample) < len(y):
        notes.append(f"statsmodels inference on a stratified sample of {len(sample):,} of "
                     f"{len(y):,} leads (standard errors are conservative)")
    sampled = sp.hstack([np.ones((len(sample), 1)), design[sample][:, keep]], format="csc")
    n_columns = sampled.shape[1]
    # levels with no lead in the sample have no estimate (and would make the Hessian singular)
    present = np.flatnonzero(sampled.getnnz(axis=0) > 0)  # the intercept: always present
    if len(present) < n_columns:
        absent = [names[keep[k - 1]] for k in np.setdiff1d(np.arange(n_columns), present)]
        notes.append(f"{len(absent)} level(s) have no lead in the statsmodels sample, so no "
                     f"statsmodels estimate: {', '.join(absent[:5])}"
                     + (" ..." if len(absent) > 5 else ""))
        sampled = sampled[:, present]
    return InferenceSample(sampled.tocsr(), y[sample], keep, present, names,
                           frozenset(separated), notes)


def statsmodels_estimates(sample: InferenceSample) -> Estimates:
    """statsmodels Logit on the sample: estimates, standard errors and what to say of them
    (collinear levels, quasi-separation, no convergence, failure)."""
    from statsmodels.discrete.discrete_model import Logit  # not statsmodels.api: 0.5 s less

    sampled, y, keep, names = sample.sampled, sample.y, sample.keep, sample.names
    n_columns = len(keep) + 1
    params = np.full(n_columns, np.nan)
    bse = np.full(n_columns, np.nan)
    notes: list[str] = []
    start = _sample_start(sampled[:, 1:], y)
    basis = _identified_basis((sampled.T @ sampled).toarray())
    X = sampled.toarray()
    if basis is not None:  # collinear levels: fit the directions the data pin down
        X, start = X @ basis, basis.T @ start
        notes.append("collinear levels: the design is rank-deficient, so some statsmodels "
                     "estimates are not identified (the table shows the shortest of the "
                     "equally likely ones; the regularised fit is unaffected)")
    try:
        logit = Logit(y, X, check_rank=False)
        result = _maximum_likelihood(logit, start)
        estimate = np.asarray(result.params)
        # pseudo-inverse: quasi-separated levels can still make the information ill-conditioned
        cov = np.linalg.pinv(_information(logit, result))
        if basis is not None:
            estimate, cov = basis @ estimate, basis @ cov @ basis.T
        params[sample.present] = estimate
        bse[sample.present] = np.sqrt(np.clip(np.diag(cov), 0, None))
        for k, i in enumerate(keep):
            if i not in sample.separated and abs(params[k + 1]) > QUASI_SEPARATION_COEF:
                notes.append(f"quasi-separation: {names[i]} has coefficient {params[k + 1]:+.1f} "
                             "(the outcome is almost determined by it); its statsmodels estimate "
                             "is unreliable, the regularised fit keeps it finite")
        if not result.mle_retvals.get("converged", True):
            notes.append("statsmodels Logit did not converge; standard errors are approximate")
    except (np.linalg.LinAlgError, ValueError, Warning) as exc:
        notes.append(f"statsmodels Logit failed ({exc}); inference columns are empty")
    return Estimates(params, bse, notes)


def coefficient_table(encoder: FactorEncoder, design: sp.csr_matrix, y: np.ndarray,
                      sk_fit: RegularisedFit, groups: dict[str, str], *,
                      max_rows: int | None = None, seed: int = 0
                      ) -> tuple[pd.DataFrame, list[str]]:
    """statsmodels Logit (reference coding: each factor's most common level = 0) for inference.

    Returns the tidy table (one row per slot: factor, level, group, leads, coef, std_err, z,
    p_value, ci_low, ci_high, odds_ratio, sklearn_coef, reference) and the separation warnings.
    Perfect or quasi separation is detected per level (all leads won or all lost) and reported
    by name, not raised. With more than ``max_rows`` leads the statsmodels fit (a dense
    design) runs on a stratified sample of that size: its standard errors are then those of
    the sample, i.e. conservative. The three steps (:func:`inference_sample`,
    :func:`statsmodels_estimates`, :func:`tabulate_coefficients`) can also run apart.
    """
    sample = inference_sample(encoder, design, y, max_rows=max_rows, seed=seed)
    return tabulate_coefficients(encoder, sample, statsmodels_estimates(sample), sk_fit, groups)


def tabulate_coefficients(encoder: FactorEncoder, sample: InferenceSample, estimates: Estimates,
                          sk_fit: RegularisedFit, groups: dict[str, str]
                          ) -> tuple[pd.DataFrame, list[str]]:
    """The table of :func:`coefficient_table` from its sample and estimates, and the notes."""
    refs = set(reference_slots(encoder))
    params, bse = estimates.params, estimates.bse
    sk_coef_rel = sk_fit.coef.copy()
    for j, ref in enumerate(sorted(refs)):
        lo, hi = encoder.offsets_[j], encoder.offsets_[j + 1]
        sk_coef_rel[lo:hi] = sk_fit.coef[lo:hi] - sk_fit.coef[ref]
    rows = []
    position = {col: k + 1 for k, col in enumerate(sample.keep)}
    for j, factor in enumerate(encoder.factors_):
        for s, slot in enumerate(factor.slots):
            col = int(encoder.offsets_[j] + s)
            is_ref = col in refs
            coef = 0.0 if is_ref else params[position[col]]
            se = np.nan if is_ref else bse[position[col]]
            z = coef / se if se and np.isfinite(se) and se > 0 else np.nan
            rows.append({
                "factor": factor.name, "level": slot, "group": groups.get(factor.name, "FIT"),
                "leads": int(factor.counts[s]), "reference": is_ref, "coef": coef, "std_err": se,
                "z": z, "p_value": np.nan,  # below, for every row at once
                "ci_low": coef - 1.959964 * se if np.isfinite(se) else np.nan,
                "ci_high": coef + 1.959964 * se if np.isfinite(se) else np.nan,
                "odds_ratio": float(np.exp(np.clip(coef, -50, 50))),
                "sklearn_coef": float(sk_coef_rel[col]),
            })
    table = pd.DataFrame(rows)
    table["p_value"] = 2 * stats.norm.sf(table["z"].abs().to_numpy())  # NaN z: NaN p
    intercept_row = pd.DataFrame([{
        "factor": "(intercept)", "level": "", "group": "", "leads": int(len(sample.y)),
        "reference": False,
        "coef": params[0], "std_err": bse[0], "z": np.nan, "p_value": np.nan, "ci_low": np.nan,
        "ci_high": np.nan, "odds_ratio": float(np.exp(np.clip(params[0], -50, 50)))
        if np.isfinite(params[0]) else np.nan, "sklearn_coef": sk_fit.intercept,
    }])
    return pd.concat([intercept_row, table], ignore_index=True), [*sample.notes,
                                                                  *estimates.notes]
