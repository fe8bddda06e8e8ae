"""The content of the model report: what sales leaders and data scientists look at."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from pipeline.config import Config
from pipeline.features import FeatureSet
from pipeline.plots_lift import lift_chart
from pipeline.report import Section, figure_png, render_html
from pipeline.train import TrainResult


def _fig(width: float = 7.0, height: float = 4.0) -> tuple[Figure, object]:
    fig = Figure(figsize=(width, height))
    return fig, fig.add_subplot(1, 1, 1)


def forest_plot(coefficients: pd.DataFrame) -> bytes:
    """Odds ratios with 95% intervals per encoded level (reference levels omitted)."""
    rows = coefficients[(coefficients["factor"] != "(intercept)") & ~coefficients["reference"]]
    rows = rows[np.isfinite(rows["ci_low"]) & np.isfinite(rows["ci_high"])].head(60)
    fig, ax = _fig(7.5, max(3.0, 0.22 * len(rows) + 1))
    y = np.arange(len(rows))
    ax.errorbar(np.exp(rows["coef"].clip(-8, 8)), y,
                xerr=[np.exp(rows["coef"].clip(-8, 8)) - np.exp(rows["ci_low"].clip(-8, 8)),
                      np.exp(rows["ci_high"].clip(-8, 8)) - np.exp(rows["coef"].clip(-8, 8))],
                fmt="o", color="#2f6fab", ecolor="#9fb3c8", capsize=2)
    ax.axvline(1.0, color="#c0392b", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_yticks(y, [f"{f} = {lvl}"[:60] for f, lvl in zip(rows["factor"], rows["level"],
                                                               strict=True)], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("odds ratio vs the factor's most common level (95% CI, statsmodels)")
    ax.set_title("Coefficient forest plot")
    return figure_png(fig)


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
    ax.legend()
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
    """Cumulative gains and lift by decile of the score (best decile first)."""
    ranked = holdout.sort_values(["points", "model_probability"], ascending=False
                                 ).reset_index(drop=True)
    n = len(ranked)
    total_won = max(int(ranked["converted"].sum()), 1)
    rate = ranked["converted"].mean() if n else 0.0
    rows = []
    for d in range(1, 11):
        top = ranked.iloc[: int(round(n * d / 10))]
        won = int(top["converted"].sum())
        rows.append({"decile": d, "leads": len(top), "won": won,
                     "cumulative_gain": won / total_won,
                     "lift": (won / max(len(top), 1)) / rate if rate else np.nan,
                     "min_points": int(top["points"].min()) if len(top) else 0})
    return pd.DataFrame(rows)


def gains_plot(gains: pd.DataFrame) -> bytes:
    fig, ax = _fig()
    x = np.concatenate([[0], gains["decile"] * 10])
    ax.plot(x, np.concatenate([[0], gains["cumulative_gain"] * 100]), marker="o",
            color="#2f6fab", label="points table")
    ax.plot([0, 100], [0, 100], color="#7b8794", linestyle="--", label="random")
    ax.set_xlabel("% of leads called (highest score first)")
    ax.set_ylabel("% of won leads reached")
    ax.set_title("Cumulative gains (holdout)")
    ax.legend()
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
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper right")
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
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=max(rates.max(), 1e-9) * 1.4)
    ax.set_xticks([0, 1], pains)
    ax.set_yticks([0, 1], fits)
    ax.set_title("FIT x PAIN quadrant (training leads)")
    return figure_png(fig)


def build_report(result: TrainResult, features: FeatureSet, config: Config) -> str:
    """The full HTML report for one trained version."""
    frame = features.frame
    m = result.metrics
    rate = float(frame["converted"].mean())
    data_lines = [f"{len(frame):,} leads, {int(frame['converted'].sum()):,} won "
                  f"({rate:.1%}); split: {result.split.method} "
                  f"({len(result.split.train):,} train / {len(result.split.holdout):,} holdout)."]
    if "created_at" in frame.columns:
        data_lines.append(f"Created between {frame['created_at'].min():%Y-%m-%d} and "
                          f"{frame['created_at'].max():%Y-%m-%d}.")
    excluded = list(config.columns.exclude)
    if excluded:
        data_lines.append(f"Excluded by the config: {', '.join(excluded)}.")
    leaky = result.analysis.selection[result.analysis.selection["reason"].str.startswith("leak")]
    if len(leaky):
        data_lines.append("Leaky columns (excluded): " + "; ".join(
            f"{r.column} ({r.reason})" for r in leaky.itertuples()) + ".")
    if features.half_lives:
        from pipeline.decay import monthly_loss_percent

        data_lines.append("Learned decay half-lives: " + ", ".join(
            f"{g} {h:g} days (lose {monthly_loss_percent(h):.0f}% per month)"
            for g, h in sorted(features.half_lives.items())) + ".")
    sections = [Section("Data", data_lines, [("Factor selection: every column, kept or not, "
                                              "and why", result.analysis.selection)])]
    lift = result.analysis.lift
    kept = result.analysis.kept
    sections.append(Section(
        "Lift per kept factor",
        [f"Conversion rate per level with 95% Wilson intervals; the dashed line is the overall "
         f"rate ({rate:.1%})."] if kept else ["No factor was kept."],
        images=[(f"Lift: {a}", figure_png(lift_chart(lift[lift["attribute"] == a], rate)))
                for a in kept if (lift["attribute"] == a).any()]))
    if result.no_signal:
        sections.append(Section("Result", ["no signal: no factor passed selection; the points "
                                           "table is empty and this version is not promoted."]))
        return render_html(f"{config.model_name}: model report", config.name, sections)
    holdout = result.holdout_scores
    sections.append(Section("Coefficients", [
        "statsmodels logistic regression (reference coding: each factor's most common level). "
        f"The production fit is scikit-learn's L2 logistic regression with C = {m['C']:g} chosen "
        "by cross-validation."], images=[("Odds ratios", forest_plot(result.coefficients))],
        tables=[("Coefficient table", result.coefficients)]))
    pt = result.points_table
    sections.append(Section("Points table", [
        f"Scaling: {config.points.scaling}. Total = FIT + PAIN. Unseen levels get the listed "
        "(unseen) points."],
        tables=[(f"{g} points", pt[pt["group"] == g][["factor", "level", "points", "leads"]])
                for g in ("FIT", "PAIN") if (pt["group"] == g).any()]))
    gains = gains_table(holdout)
    sections.append(Section("Ranking quality", [
        f"Holdout ROC AUC {m['holdout_auc']:.4f} (integer points), KS {m['holdout_ks']:.3f}."],
        images=[("Score distribution", score_distribution(holdout)), ("ROC", roc_plot(holdout)),
                ("Cumulative gains", gains_plot(gains))],
        tables=[("Gains and lift by decile", gains)]))
    sections.append(Section("Calibration", [
        f"Brier score {m['holdout_brier']:.4f} (points table) vs {m['holdout_brier_model']:.4f} "
        "(unrounded model)."], images=[("Calibration", calibration_plot(result.calibration))],
        tables=[("Points-to-probability per score band", result.calibration)]))
    t = result.threshold
    per_week = t.sdr_ready_per_week is not None
    sections.append(Section("SDR-ready threshold", [
        f"SDR-ready at {t.threshold} points ({t.note}): {t.sdr_ready_share:.1%} of leads, "
        f"expected close rate {t.expected_close_rate:.1%}"
        + (f", {t.sdr_ready_per_week:.1f} per week" if per_week else "") + ".",
        f"Share of leads reaching SDR-ready on FIT points alone: {t.fit_only_share:.1%} "
        "(the seed's guide: about 5%)."],
        images=[("Threshold trade-off", threshold_plot(t.tradeoff, t.threshold, per_week))]))
    q = result.quadrant
    sections.append(Section("FIT x PAIN quadrant", [
        f"Good FIT = FIT points >= {q.fit_cut}; high PAIN = PAIN points >= {q.pain_cut}. "
        f"Bad FIT + low PAIN among SDR-ready: {q.bad_fit_low_pain_sdr_share:.1%}"
        + (f" - {q.warning}" if q.warning else " (below the 5% alarm).")],
        images=[("Quadrant", quadrant_plot(q.table))], tables=[("Quadrant", q.table)]))
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
        f"{fid['threshold_crossings']} leads cross the threshold because of rounding."],
        tables=[("Additive points vs the benchmark", comparison),
                ("Fidelity", pd.DataFrame([fid]))]))
    if result.notes:
        sections.append(Section("Notes", list(result.notes)))
    return render_html(f"{config.model_name}: model report",
                       f"dataset {config.name}; {len(kept)} factors", sections)
