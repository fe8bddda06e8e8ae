"""The content of the model report: what sales leaders and data scientists look at."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from pipeline.config import Config
from pipeline.inputs.features import FeatureSet
from pipeline.model.train import TrainResult
from pipeline.reports.decision import factor_section, summary_section
from pipeline.reports.forest import forest_note, forest_plot
from pipeline.reports.page import Section, figure_png, render_html

matplotlib.rcParams["text.parse_math"] = False  # level names are data, not TeX: "$$ budget"


def _fig(width: float = 7.0, height: float = 4.0) -> tuple[Figure, object]:
    fig = Figure(figsize=(width, height))
    return fig, fig.add_subplot(1, 1, 1)


def score_distribution(holdout: pd.DataFrame) -> bytes:
    fig, ax = _fig()
    won = holdout.loc[holdout["converted"] == 1, "points"]
    lost = holdout.loc[holdout["converted"] == 0, "points"]
    bins = np.histogram_bin_edges(holdout["points"], bins=30)
    ax.hist(lost, bins=bins, alpha=0.6, label=f"lost (n={len(lost):,})", color="#9fb3c8",
            density=True)
    ax.hist(won, bins=bins, alpha=0.6, label=f"won (n={len(won):,})", color="#2f6fab",
            density=True)
    ax.set_xlabel("points")
    ax.set_ylabel("share of leads (density)")
    ax.set_title("Score distribution, won vs lost (holdout)")
    ax.legend(loc="upper left")
    return figure_png(fig)


def roc_plot(holdout: pd.DataFrame) -> bytes:
    fig, ax = _fig(5, 5)
    fpr, tpr, _ = roc_curve(holdout["converted"], holdout["points"])
    ax.plot(fpr, tpr, color="#2f6fab", label="integer points")
    fpr2, tpr2, _ = roc_curve(holdout["converted"], holdout["model_probability"])
    ax.plot(fpr2, tpr2, color="#e67e22", linestyle=":", label="unrounded model")
    ax.plot([0, 1], [0, 1], color="#7b8794", linestyle="--", linewidth=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC curve (holdout)")
    ax.legend(loc="lower right")
    return figure_png(fig)


def gains_table(holdout: pd.DataFrame) -> pd.DataFrame:
    """Per decile of the score (best first): leads, won, the decile's own conversion rate and
    lift, and the cumulative gain (share of all won leads reached) and cumulative lift.

    Leads are ranked by points, ties broken by the unrounded model so deciles have equal size.
    """
    ranked = holdout.sort_values(["points", "model_probability"], ascending=False,
                                 kind="stable").reset_index(drop=True)
    n = len(ranked)
    y = ranked["converted"].to_numpy(dtype=int)
    total_won = max(int(y.sum()), 1)
    rate = float(y.mean()) if n else 0.0
    bounds = [int(round(n * d / 10)) for d in range(11)]
    rows = []
    for d in range(1, 11):
        lo, hi = bounds[d - 1], bounds[d]
        won, cum_won = int(y[lo:hi].sum()), int(y[:hi].sum())
        leads = hi - lo
        decile_rate = won / leads if leads else float("nan")
        rows.append({"decile": d, "leads": leads, "won": won, "conversion_rate": decile_rate,
                     "lift": decile_rate / rate if rate and leads else float("nan"),
                     "cumulative_gain": cum_won / total_won,
                     "cumulative_lift": (cum_won / hi) / rate if rate and hi else float("nan"),
                     "min_points": int(ranked["points"].iloc[hi - 1]) if hi else 0})
    return pd.DataFrame(rows)


def ks_curve(holdout: pd.DataFrame) -> pd.DataFrame:
    """Cumulative share of won and of lost leads at or above each score (best first)."""
    y = holdout["converted"].to_numpy(dtype=int)
    pts = holdout["points"].to_numpy()
    ascending, position = np.unique(pts, return_inverse=True)
    scores = ascending[::-1]
    # leads at or above each score: per-score counts, summed from the top score down
    won = np.cumsum(np.bincount(position, weights=y, minlength=len(ascending))[::-1])
    lost = np.cumsum(np.bincount(position, weights=1 - y, minlength=len(ascending))[::-1])
    return pd.DataFrame({"points": scores, "won_share": won / max(y.sum(), 1),
                         "lost_share": lost / max((1 - y).sum(), 1)})


def gains_plot(gains: pd.DataFrame, ks: pd.DataFrame) -> bytes:
    """Three panels: cumulative gains, lift per decile, KS separation of won vs lost."""
    fig = Figure(figsize=(12, 3.8))
    ax1, ax2, ax3 = (fig.add_subplot(1, 3, i) for i in (1, 2, 3))
    x = np.concatenate([[0], gains["decile"] * 10])
    ax1.plot(x, np.concatenate([[0], gains["cumulative_gain"] * 100]), marker="o",
             color="#2f6fab", label="points table")
    ax1.plot([0, 100], [0, 100], color="#7b8794", linestyle="--", label="random")
    ax1.set_xlabel("% of leads called (highest score first)")
    ax1.set_ylabel("% of won leads reached")
    ax1.set_title("Cumulative gains")
    ax1.legend(loc="lower right")
    ax2.bar(gains["decile"], gains["lift"], color="#2f6fab")
    ax2.axhline(1.0, color="#c0392b", linestyle="--", linewidth=1, label="overall rate")
    ax2.set_xticks(gains["decile"])
    ax2.set_xlabel("score decile (1 = highest)")
    ax2.set_ylabel("lift (decile rate / overall rate)")
    ax2.set_title("Lift by decile")
    ax2.legend(loc="upper right")
    gap = (ks["won_share"] - ks["lost_share"]).to_numpy()
    ax3.plot(ks["points"], ks["won_share"] * 100, color="#2f6fab", label="won")
    ax3.plot(ks["points"], ks["lost_share"] * 100, color="#9fb3c8", label="lost")
    if len(gap):
        i = int(np.argmax(np.abs(gap)))
        p = ks["points"].iloc[i]
        ax3.vlines(p, ks["lost_share"].iloc[i] * 100, ks["won_share"].iloc[i] * 100,
                   color="#c0392b", label=f"KS {abs(gap[i]):.3f} at {p} points")
    ax3.invert_xaxis()
    ax3.set_xlabel("points (at or above)")
    ax3.set_ylabel("% of the class at or above")
    ax3.set_title("KS: won vs lost")
    ax3.legend(loc="lower right")
    fig.subplots_adjust(wspace=0.35)
    return figure_png(fig)


def calibration_plot(calibration: pd.DataFrame) -> bytes:
    fig, ax = _fig(5.5, 5)
    ax.errorbar(calibration["predicted_rate"], calibration["observed_rate"],
                yerr=[calibration["observed_rate"] - calibration["ci_low"],
                      calibration["ci_high"] - calibration["observed_rate"]],
                fmt="o", color="#2f6fab", capsize=3, label="score band (95% Wilson)")
    ax.plot([0, 1], [0, 1], color="#7b8794", linestyle="--", label="perfect calibration")
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed conversion rate")
    ax.set_title("Calibration per score band (holdout)")
    ax.legend(loc="upper left")
    return figure_png(fig)


def threshold_plot(tradeoff: pd.DataFrame, threshold: int, per_week: bool) -> bytes:
    fig, ax = _fig()
    volume = tradeoff["per_week"] if per_week else tradeoff["share"] * 100
    ax.plot(tradeoff["points"], volume, color="#2f6fab", label="SDR-ready volume")
    ax.set_xlabel("SDR-ready threshold (points)")
    ax.set_ylabel("SDR-ready leads per week" if per_week else "% of leads SDR-ready")
    ax2 = ax.twinx()
    ax2.plot(tradeoff["points"], tradeoff["close_rate"] * 100, color="#e67e22",
             label="expected close rate")
    ax2.set_ylabel("close rate at or above (%)")
    ax.axvline(threshold, color="#c0392b", linestyle="--", label=f"chosen: {threshold}")
    ax.set_title("Threshold trade-off")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper center",
              bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)
    return figure_png(fig)


def quadrant_plot(table: pd.DataFrame) -> bytes:
    fig, ax = _fig(5.5, 4.5)
    fits, pains = ["good FIT", "bad FIT"], ["high PAIN", "low PAIN"]
    rates = np.zeros((2, 2))
    for i, f in enumerate(fits):
        for j, p in enumerate(pains):
            row = table[(table["fit"] == f) & (table["pain"] == p)].iloc[0]
            rates[i, j] = row["conversion_rate"] if row["leads"] else 0.0
            ax.text(j, i, f"{int(row['leads']):,} leads\n{rates[i, j]:.1%} won\n"
                          f"{int(row['sdr_ready']):,} SDR-ready", ha="center", va="center",
                    fontsize=9, color="black")
    image = ax.imshow(rates * 100, cmap="Blues", vmin=0, vmax=max(rates.max(), 1e-9) * 140)
    fig.colorbar(image, ax=ax, label="conversion rate (%)")
    ax.set_xticks([0, 1], pains)
    ax.set_yticks([0, 1], fits)
    ax.set_title("FIT x PAIN quadrant (training leads)")
    return figure_png(fig)


SECTION_IDS: tuple[str, ...] = (
    "summary", "data", "lift", "coefficients", "points", "trust", "distribution", "roc", "gains",
    "calibration", "threshold", "quadrant", "fidelity")
"""The stable ids of the report's sections, in page order (``notes`` may follow)."""


def _data_section(result: TrainResult, features: FeatureSet, config: Config) -> Section:
    frame = features.frame
    rate = float(frame["converted"].mean())
    lines = [f"{len(frame):,} leads, {int(frame['converted'].sum()):,} won "
             f"(conversion rate {rate:.1%}); split: {result.split.method} "
             f"({len(result.split.train):,} train / {len(result.split.holdout):,} holdout"
             + (f", holdout from {result.split.cutoff}" if result.split.cutoff else "") + ")."]
    if "created_at" in frame.columns and frame["created_at"].notna().any():
        lines.append(f"Date range: created between {frame['created_at'].min():%Y-%m-%d} and "
                     f"{frame['created_at'].max():%Y-%m-%d}.")
    else:
        lines.append("Date range: the data has no lead creation dates, so the holdout is a "
                     "stratified random sample and volumes are shares, not per week.")
    excluded = list(config.columns.exclude)
    lines.append("Excluded by the config: " + (", ".join(excluded) if excluded else "none") + ".")
    selection = result.analysis.selection
    leaky = selection[selection["reason"].str.startswith("leak")]
    declared = list(config.columns.declared_leaky)
    if len(leaky):
        lines.append("Leaky columns (excluded): " + "; ".join(
            f"{r.column} ({r.reason})" for r in leaky.itertuples()) + ".")
    else:
        lines.append("Leaky columns: none detected among the candidates"
                     + (f"; declared leaky and never used: {', '.join(declared)}" if declared
                        else "") + ".")
    kept = result.analysis.kept
    lines.append(f"Factor selection: {len(kept)} of {len(selection)} candidate columns kept"
                 + (f" ({', '.join(kept)})" if kept else "") + "; the table lists every "
                 "column and the reason it was kept or dropped.")
    if features.half_lives:
        from pipeline.inputs.decay import monthly_loss_percent

        lines.append("Learned decay half-lives: " + ", ".join(
            f"{g} {h:g} days (lose {monthly_loss_percent(h):.0f}% per month)"
            for g, h in sorted(features.half_lives.items())) + ".")
    lines += _behaviour_lines(features)
    return Section("Data", lines, [("Factor selection: every column, kept or not, and why",
                                    selection)], key="data")


def _behaviour_lines(features: FeatureSet) -> list[str]:
    """The behaviour representation: the event rules a CRM runs, and both CV AUCs."""
    lines = []
    if features.event_rules:
        lines.append("Behaviour as CRM event rules (events.representation: crm; window, cap "
                     "and velocity span chosen by CV): " + "; ".join(
                         f"{r.factor} = {r.describe()}" for r in features.event_rules) + ".")
    m = features.representation_metrics
    if "cv_auc_crm" in m and "cv_auc_decayed" in m:
        lines.append("Behaviour representations compared by CV (profile offset + "
                     f"event features, same folds): CRM rules AUC {m['cv_auc_crm']:.4f}, "
                     f"decayed counts AUC {m['cv_auc_decayed']:.4f}, profile alone "
                     f"{m.get('cv_auc_profile', float('nan')):.4f}.")
    return lines


def _trust_section(result: TrainResult, config: Config) -> Section:
    """Trust: how many rules a person reads per export, the 0 rules left out, the longest
    threshold, direction changes of the points against the lift table, and the largest
    points on a level under ``analysis.min_leads`` (the ``trust_rules.csv`` artifact)."""
    from pipeline.reports.trust_rules import trust_table

    table = trust_table(result.rules, lift=result.analysis.lift,
                        points_table=result.points_table, min_leads=config.analysis.min_leads)
    value = dict(zip(table["figure"], table["value"], strict=False))
    text = [
        f"The CRM sheet lists {value['rules_crm_sheet']} rules "
        f"({value['zero_rules_omitted']} rules worth 0 points left out: levels not listed "
        f"score 0); the HubSpot body {value['rules_hubspot']}, the full table "
        f"{value['rules_table']}. Numeric thresholds are snapped to numbers people type "
        f"(the longest has {value['longest_threshold_digits']} significant digits) and "
        "adjacent bins worth the same points are one bin.",
        "Direction changes: how often the points of a numeric factor's adjacent bins turn "
        "from rising to falling or back, against the same count for the lift table's shrunk "
        "conversion rates; more turns in the points than in the rates is the fit's zig-zag, "
        "not the leads'."]
    return Section("Trust", text, tables=[("Trust figures", table)], key="trust")


def build_report(result: TrainResult, features: FeatureSet, config: Config, *,
                 lift_pngs: Mapping[str, bytes] | None = None) -> str:
    """The full HTML report for one trained version: one section per id in SECTION_IDS.

    ``lift_pngs`` (attribute -> PNG bytes) reuses lift charts already rendered to files."""
    frame = features.frame
    m = result.metrics
    rate = float(frame["converted"].mean())
    kept = result.analysis.kept
    sections = [summary_section(result, features, config),
                _data_section(result, features, config),
                factor_section(result, rate, lift_pngs)]
    if result.no_signal:
        why = [n for n in result.notes if n.startswith("no signal")]
        sections.append(Section("Result", [
            *(why or ["no signal"]),
            "The points table is empty, no lead is SDR-ready and this version is not promoted."],
            key="result"))
        return render_html(f"{config.model_name}: model report", config.name, sections)
    holdout = result.holdout_scores
    t, q = result.threshold, result.quadrant
    per_week = t.sdr_ready_per_week is not None
    gains = gains_table(holdout)
    ks = ks_curve(holdout)
    sections.append(Section("Coefficients", [
        "statsmodels logistic regression (reference coding: each factor's most common level); "
        "odds ratios with 95% confidence intervals. "
        f"The production fit is scikit-learn's L2 logistic regression with C = {m['C']:g} chosen "
        "by cross-validation.", forest_note(result.coefficients)],
        images=[("Odds ratios (95% CI)", forest_plot(result.coefficients))],
        tables=[("Coefficient table", result.coefficients)], key="coefficients"))
    pt = result.points_table
    columns = [c for c in ("factor", "level", "points", "leads") if c in pt.columns]
    sections.append(Section("Points table", [
        f"Scaling: {config.points.scaling}. Total = FIT + PAIN. Unseen levels get the listed "
        "(unseen) points; missing values the (missing) points."],
        tables=[(f"{g} points", pt[pt["group"] == g][columns])
                for g in ("FIT", "PAIN") if (pt["group"] == g).any()], key="points"))
    sections.append(_trust_section(result, config))
    won = holdout["converted"].to_numpy(dtype=int)
    med_won, med_lost = (float(holdout.loc[won == k, "points"].median()) for k in (1, 0))
    sections.append(Section("Score distribution", [
        f"Holdout leads: {int(won.sum()):,} won, {int(len(won) - won.sum()):,} lost; median "
        f"points {med_won:g} (won) vs {med_lost:g} (lost)."],
        images=[("Score distribution, won vs lost", score_distribution(holdout))],
        key="distribution"))
    sections.append(Section("ROC curve", [
        f"Holdout ROC AUC {m['holdout_auc']:.4f} with the integer points, "
        f"{m['holdout_auc_model']:.4f} with the unrounded model."],
        images=[("ROC", roc_plot(holdout))], key="roc"))
    top = gains.iloc[0]
    sections.append(Section("Cumulative gains, lift and KS", [
        f"KS {m['holdout_ks']:.3f}. The top decile ({int(top['leads']):,} leads from "
        f"{int(top['min_points'])} points up) converts at {top['conversion_rate']:.1%}, "
        f"{top['lift']:.2f} times the overall rate, and holds {top['cumulative_gain']:.1%} of "
        "the won leads."],
        images=[("Cumulative gains, lift by decile and KS", gains_plot(gains, ks))],
        tables=[("Gains and lift by decile", gains)], key="gains"))
    sections.append(Section("Calibration", [
        "Observed conversion per score band (95% Wilson) against the probability the points "
        f"predict. Brier score {m['holdout_brier']:.4f} (points table) vs "
        f"{m['holdout_brier_model']:.4f} (unrounded model)."],
        images=[("Calibration", calibration_plot(result.calibration))],
        tables=[("Points-to-probability per score band", result.calibration)],
        key="calibration"))
    sections.append(Section("SDR-ready threshold", [
        f"SDR-ready at {t.threshold} points ({t.note}): {t.sdr_ready_share:.1%} of leads, "
        f"expected close rate {t.expected_close_rate:.1%}"
        + (f", {t.sdr_ready_per_week:.1f} per week" if per_week else
           " (no creation dates: volume shown as a share of leads)") + ".",
        f"Share of leads reaching SDR-ready on FIT points alone: {t.fit_only_share:.1%} "
        "(the seed's guide: about 5%)."],
        images=[("Threshold trade-off", threshold_plot(t.tradeoff, t.threshold, per_week))],
        key="threshold"))
    sections.append(Section("FIT x PAIN quadrant", [
        f"Good FIT = FIT points >= {q.fit_cut}; high PAIN = PAIN points >= {q.pain_cut}. "
        f"Bad FIT + low PAIN among SDR-ready: {q.bad_fit_low_pain_sdr_share:.1%}"
        + (f" - {q.warning}" if q.warning else " (below the 5% alarm).")],
        images=[("Quadrant: leads and conversion per cell", quadrant_plot(q.table))],
        tables=[("Quadrant", q.table)], key="quadrant"))
    fid = result.fidelity
    comparison = pd.DataFrame([
        {"model": "integer points table", "holdout_auc": m["holdout_auc"],
         "brier": m["holdout_brier"]},
        {"model": "unrounded logistic regression", "holdout_auc": m["holdout_auc_model"],
         "brier": m["holdout_brier_model"]},
        {"model": "gradient boosting benchmark", "holdout_auc": m["holdout_auc_benchmark"],
         "brier": m["holdout_brier_benchmark"]}])
    sections.append(Section("Rounding fidelity and benchmark", [
        f"Rounding cost {fid['rounding_auc_loss']:+.4f} AUC, Spearman {fid['spearman']:.4f}, "
        f"largest per-lead change {fid['max_abs_diff_points']:.2f} points, "
        f"{fid['threshold_crossings']} leads cross the threshold because of rounding.",
        f"Gradient boosting on the same columns reaches holdout AUC "
        f"{m['holdout_auc_benchmark']:.4f} against {m['holdout_auc']:.4f} for the additive "
        f"points table (difference {m['holdout_auc_benchmark'] - m['holdout_auc']:+.4f})."],
        tables=[("Additive points vs the benchmark", comparison),
                ("Fidelity", pd.DataFrame([fid]))], key="fidelity"))
    if result.notes:
        sections.append(Section("Notes", list(result.notes), key="notes"))
    return render_html(f"{config.model_name}: model report",
                       f"dataset {config.name}; {len(kept)} factors", sections)
