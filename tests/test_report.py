"""The model report: every section filled, every image loading in a real (headless) Chromium."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.model.calibration import ks_statistic
from pipeline.reports.content import SECTION_IDS, gains_table, ks_curve
from pipeline.reports.page import (
    Section,
    chromium_binary,
    chromium_command,
    render_html,
    screenshot_html,
)

# Sections that must show at least one figure / one table (besides their text).
NEEDS_IMAGE = {"lift", "coefficients", "distribution", "roc", "gains", "calibration", "threshold",
               "quadrant"}
NEEDS_TABLE = {"summary", "lift", "data", "coefficients", "points", "gains", "calibration",
               "quadrant", "fidelity"}

_PROBE = """
<script>
window.addEventListener('load', function () {
  var sections = Array.prototype.map.call(document.querySelectorAll('section.section'),
    function (s) {
      var imgs = s.querySelectorAll('img');
      return {id: s.id,
              text: s.querySelectorAll('p').length ?
                    Array.prototype.map.call(s.querySelectorAll('p'),
                      function (p) { return p.textContent.trim(); }).join(' ').length : 0,
              images: imgs.length,
              loaded: Array.prototype.filter.call(imgs, function (i) {
                return i.complete && i.naturalWidth > 0 && i.naturalHeight > 0; }).length,
              rows: s.querySelectorAll('table tbody tr').length};
    });
  var all = document.images;
  var broken = Array.prototype.filter.call(all, function (i) {
    return !(i.complete && i.naturalWidth > 0); }).length;
  var out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify({images: all.length, broken: broken, sections: sections});
  document.body.appendChild(out);
  document.body.dataset.ok = broken === 0 ? '1' : '0';
});
</script>
"""


def chromium_probe(report: Path) -> dict:
    """Load the report in headless Chromium and return what the page itself saw."""
    binary = chromium_binary()
    if binary is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); .ci/run installs it")
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "probe.html"
        text = report.read_text(encoding="utf-8")
        assert text.rstrip().endswith("</body></html>")
        page.write_text(text.replace("</body></html>", _PROBE + "</body></html>"),
                        encoding="utf-8")
        cmd = chromium_command(binary, Path(tmp) / "profile", "--dump-dom",
                               "--virtual-time-budget=20000", page.as_uri())
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    match = re.search(r"<pre id=\"probe\">(.*?)</pre>", done.stdout, re.S)
    assert match, "the probe script did not run: " + done.stdout[-500:]
    return json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&")
                      .replace("&lt;", "<").replace("&gt;", ">"))


def assert_report_complete(probe: dict) -> None:
    by_id = {s["id"]: s for s in probe["sections"]}
    assert set(SECTION_IDS) <= set(by_id), f"missing sections: {set(SECTION_IDS) - set(by_id)}"
    assert probe["images"] > 0 and probe["broken"] == 0, probe
    for key, s in by_id.items():
        assert s["text"] > 0 or s["images"] or s["rows"], f"section {key} is empty"
        assert s["loaded"] == s["images"], f"section {key}: an image did not load"
    for key in NEEDS_IMAGE:
        assert by_id[key]["loaded"] >= 1, f"section {key} shows no figure"
    for key in NEEDS_TABLE:
        assert by_id[key]["rows"] >= 1, f"section {key} shows no table rows"


# --------------------------------------------------------------------------- unit tests


def test_render_html_stable_ids_and_escaping() -> None:
    page = render_html("t <1>", "sub", [
        Section("A & B", ["x < y"], tables=[("tab", pd.DataFrame({"a": [1.5], "b": ["<i>"]}))],
                key="alpha"),
        Section("Second", ["p"])])
    assert "<section id='alpha' class='section section-alpha'>" in page
    assert "<section id='s1' class='section section-s1'>" in page
    assert "<h2>A &amp; B</h2>" in page and "&lt;i&gt;" in page and "<i>" not in page
    assert "href='#alpha'" in page


@pytest.mark.parametrize("keys", [["a", "a"], ["Bad Key", "b"]])
def test_render_html_rejects_bad_keys(keys: list[str]) -> None:
    with pytest.raises(ValueError, match="section keys"):
        render_html("t", "s", [Section(k, ["x"], key=k) for k in keys])


def _holdout(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    points = rng.integers(-20, 80, n)
    prob = 1 / (1 + np.exp(-(points - 30) / 12))
    return pd.DataFrame({"points": points, "model_probability": prob + rng.normal(0, 1e-3, n),
                         "converted": (rng.random(n) < prob).astype(int)})


def test_gains_table_matches_naive_reference() -> None:
    holdout = _holdout(997, 1)
    gains = gains_table(holdout)
    ranked = holdout.sort_values(["points", "model_probability"], ascending=False)
    y = ranked["converted"].to_numpy()
    rate = y.mean()
    n = len(y)
    for d in range(1, 11):
        lo, hi = round(n * (d - 1) / 10), round(n * d / 10)
        row = gains.iloc[d - 1]
        assert row["leads"] == hi - lo
        assert row["won"] == y[lo:hi].sum()
        assert row["lift"] == pytest.approx(y[lo:hi].mean() / rate)
        assert row["cumulative_gain"] == pytest.approx(y[:hi].sum() / y.sum())
        assert row["cumulative_lift"] == pytest.approx(y[:hi].mean() / rate)
    assert gains["leads"].sum() == n
    assert gains["cumulative_gain"].iloc[-1] == pytest.approx(1.0)
    assert gains["cumulative_gain"].is_monotonic_increasing


def test_ks_curve_maximum_is_the_ks_statistic() -> None:
    holdout = _holdout(500, 2)
    curve = ks_curve(holdout)
    gap = (curve["won_share"] - curve["lost_share"]).abs().max()
    y, s = holdout["converted"].to_numpy(), holdout["points"].to_numpy()
    assert gap == pytest.approx(ks_statistic(y, s))
    assert curve["won_share"].iloc[-1] == pytest.approx(1.0)


def test_ks_curve_matches_naive_reference() -> None:
    holdout = _holdout(700, 3)
    curve = ks_curve(holdout)
    y, pts = holdout["converted"].to_numpy(), holdout["points"].to_numpy()
    scores = np.unique(pts)[::-1]
    assert curve["points"].tolist() == scores.tolist()
    assert curve["won_share"].tolist() == [((y == 1) & (pts >= v)).sum() / y.sum()
                                           for v in scores]
    assert curve["lost_share"].tolist() == [((y == 0) & (pts >= v)).sum() / (1 - y).sum()
                                            for v in scores]


@pytest.mark.slow
def test_report_is_the_same_bytes_each_time(demo_features) -> None:
    """The report is a function of the training result alone (no clock, no drawing order):
    the byte-identical outputs the workflow promises rest on it."""
    from pipeline.model.train import train
    from pipeline.reports.content import build_report

    cfg, features = demo_features
    result = train(features, cfg)
    assert build_report(result, features, cfg) == build_report(result, features, cfg)


def test_screenshot_returns_false_without_chromium(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    page = tmp_path / "r.html"
    page.write_text(render_html("t", "s", [Section("A", ["x"], key="a")]))
    monkeypatch.setattr("pipeline.reports.page.chromium_binary", lambda: None)
    assert screenshot_html(page, tmp_path / "r.png") is False
    assert not (tmp_path / "r.png").exists()


@pytest.mark.browser
def test_screenshot_writes_a_png(tmp_path: Path) -> None:
    if chromium_binary() is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    page = tmp_path / "r.html"
    page.write_text(render_html("t", "s", [Section("A", ["hello"], key="a")]))
    assert screenshot_html(page, tmp_path / "out" / "r.png", width=640, height=400)
    data = (tmp_path / "out" / "r.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (640, 400)


# --------------------------------------------------------------------------- end to end


@pytest.mark.slow
@pytest.mark.browser
def test_train_then_report_command_renders_in_chromium(demo_dir: Path, make_config,
                                                       tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pipeline.cli.main import app
    from pipeline.cli.report import register

    register(app)
    # one half-life per group keeps the decay search (not under test here) quick
    cfg = make_config("demo", data_dir=demo_dir, events={"half_life_grid": [7.0]})
    runner = CliRunner()
    trained = runner.invoke(app, ["train", "--config", str(cfg), "--no-score",
                                  "--out", str(tmp_path / "out")])
    assert trained.exit_code == 0, trained.output + repr(trained.exception)
    target = tmp_path / "again" / "report.html"
    made = runner.invoke(app, ["report", "--config", str(cfg), "--model", "lead-scoring/1",
                               "--output", str(target), "--screenshot",
                               str(tmp_path / "shot.png")])
    assert made.exit_code == 0, made.output + repr(made.exception)
    # the registered report is the one training wrote, byte for byte
    assert target.read_bytes() == (tmp_path / "out" / "report.html").read_bytes()
    assert_report_complete(chromium_probe(target))
    assert (tmp_path / "shot.png").read_bytes()[:4] == b"\x89PNG"
    bad = runner.invoke(app, ["report", "--config", str(cfg), "--model", "lead-scoring/1",
                              "--output", str(tmp_path / "r.pdf")])
    assert bad.exit_code != 0 and "give a .html file" in str(bad.exception)


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.filterwarnings("ignore:.*is constant.*dropped:UserWarning")  # Magazine et al.
def test_report_on_the_real_data(shared_data: Path, make_config, tmp_path: Path) -> None:
    from pipeline.config import load_config
    from pipeline.inputs.features import build_features
    from pipeline.inputs.reader import read_table
    from pipeline.inputs.validate import validate_leads
    from pipeline.model.train import train
    from pipeline.reports.content import build_report

    cfg = load_config(make_config("x_education", leads=shared_data))
    leads = validate_leads(read_table(cfg.data.leads).frame, cfg, source=str(shared_data),
                           training=True)
    features = build_features(leads, cfg, events=None)
    result = train(features, cfg)
    started = time.perf_counter()
    page = build_report(result, features, cfg)
    seconds = time.perf_counter() - started
    print(f"report on {len(features.frame):,} real leads built in {seconds:.1f}s")
    report = tmp_path / "report.html"
    report.write_text(page, encoding="utf-8")
    for key in SECTION_IDS:
        assert f"<section id='{key}'" in page
    assert "no lead creation dates" in page  # the real data has no dates: volume as a share
    assert_report_complete(chromium_probe(report))
    assert screenshot_html(report, tmp_path / "report.png")
    assert (tmp_path / "report.png").stat().st_size > 10_000
    assert_screenshot_shows_the_summary(report, tmp_path / "report.png", result, tmp_path)
    from pipeline.reports.forest import forest_rows

    drawn, _ = forest_rows(result.coefficients)
    assert f"The plot draws all {len(drawn)} non-reference levels of " \
        f"{len(result.analysis.kept)} factors" in page  # X Education: past the old cut at 60


# --------------------------------------------------------------------------- the decision on top


def test_factor_importance_matches_a_naive_reference() -> None:
    from pipeline.reports.decision import factor_importance

    rng = np.random.default_rng(5)
    rows = []
    for f in range(6):
        for level in range(int(rng.integers(2, 6))):
            rows.append({"factor": f"f{f}", "group": "FIT" if f % 2 else "PAIN",
                         "level": f"l{level}", "points": int(rng.integers(-30, 30)),
                         "leads": int(rng.integers(0, 3)) * 10})
        rows.append({"factor": f"f{f}", "group": "FIT" if f % 2 else "PAIN",
                     "level": "(unseen)", "points": 99, "leads": 0})
    table = pd.DataFrame(rows)
    got = factor_importance(table)
    for factor, levels in table.groupby("factor"):
        seen = levels[(levels["level"] != "(unseen)") & (levels["leads"] > 0)]
        if not len(seen):
            assert factor not in set(got["factor"])
            continue
        row = got[got["factor"] == factor].iloc[0]
        assert row["points_range"] == seen["points"].max() - seen["points"].min()
        assert row["best"].endswith(f"({seen['points'].max():+d})")
        assert row["worst"].endswith(f"({seen['points'].min():+d})")
    assert got["points_range"].is_monotonic_decreasing


def test_woe_iv_per_bin_is_the_woe_table_of_the_raw_leads() -> None:
    from pipeline.analysis.association_measures import woe_table
    from pipeline.reports.decision import woe_iv

    rng = np.random.default_rng(9)
    levels = rng.choice(["a", "b", "c", "d"], 2000, p=[0.4, 0.3, 0.2, 0.1])
    y = (rng.random(2000) < np.select([levels == "a", levels == "b", levels == "c"],
                                      [0.1, 0.2, 0.4], 0.0)).astype(int)  # d never wins
    frame = pd.DataFrame({"level": levels, "y": y})
    counts = frame.groupby("level")["y"].agg(["size", "sum"]).reset_index()
    lift = pd.DataFrame({"attribute": "x", "level": counts["level"], "leads": counts["size"],
                         "conversions": counts["sum"]})
    got = woe_iv(lift).set_index("level")
    want = woe_table(pd.Series(levels), pd.Series(y)).set_index("level")
    assert np.allclose(got.loc[want.index, "woe"], want["woe"], atol=1e-4)
    assert np.allclose(got.loc[want.index, "iv"], want["iv"], atol=1e-4)
    assert got["attribute_iv"].iloc[0] == pytest.approx(want["iv"].sum(), abs=1e-3)
    assert np.isfinite(got.loc["d", "woe"]) and got.loc["d", "woe"] < 0  # zero cell: 0.5


def test_forest_plot_draws_every_level_and_says_what_is_clipped() -> None:
    from pipeline.reports.forest import FOREST_LIMIT, forest_note, forest_rows

    rows = [{"factor": "(intercept)", "level": "", "reference": False, "coef": -1.0,
             "ci_low": -2.0, "ci_high": 0.0}]
    for i in range(80):  # more than the 60 the plot used to keep
        rows.append({"factor": f"f{i // 10}", "level": f"l{i}", "reference": i % 10 == 0,
                     "coef": 0.1 * i - 4, "ci_low": 0.1 * i - 4.5, "ci_high": 0.1 * i - 3.5})
    rows[5].update(ci_low=-12.0, ci_high=11.0)  # separation: 1e-5 .. 6e4
    rows[6].update(ci_low=float("nan"), ci_high=float("nan"))
    coefficients = pd.DataFrame(rows)
    drawn, left_out = forest_rows(coefficients)
    assert len(drawn) == 80 - 8 - 1 and list(left_out["level"]) == ["l5"]
    note = forest_note(coefficients)
    assert f"all {len(drawn)} non-reference levels" in note
    assert "1 intervals reach past the axis" in note and "f0 = l4" in note
    assert "Left out for want of a finite interval: f0 = l5" in note
    assert FOREST_LIMIT == 100


@pytest.mark.slow
def test_summary_section_figures(demo_features) -> None:
    from pipeline.model.train import train
    from pipeline.reports.decision import summary_section

    cfg, features = demo_features
    result = train(features, cfg)
    section = summary_section(result, features, cfg)
    t = result.threshold
    cards = {label: value for label, value, _ in section.cards}
    assert cards["SDR-ready threshold"] == f"{t.threshold} points"
    assert cards["SDR-ready volume"] == f"{t.sdr_ready_per_week:,.1f} / week"
    assert cards["Close rate when SDR-ready"] == f"{t.expected_close_rate:.1%}"
    top = section.tables[0][1]
    assert len(top) == 5 and set(top["factor"]) <= set(result.analysis.kept)
    assert any("outcome_at" in w for w in section.warnings)  # the demo's leaky column


def _summary_figures(result) -> list[str]:
    from pipeline.reports.decision import factor_importance

    t = result.threshold
    volume = (f"{t.sdr_ready_per_week:,.1f} / week" if t.sdr_ready_per_week is not None
              else f"{t.sdr_ready_share:.1%}")
    return [f"{t.threshold} points", volume, f"{t.expected_close_rate:.1%}",
            f"{result.metrics['holdout_auc']:.3f}",
            *factor_importance(result.points_table)["factor"].head(5)]


_LAYOUT = """
<script>
window.addEventListener('load', function () {
  var s = document.getElementById('summary');
  var out = document.createElement('pre');
  out.id = 'layout';
  out.textContent = JSON.stringify({bottom: s.getBoundingClientRect().bottom,
    width: window.innerWidth, height: window.innerHeight, text: s.innerText});
  document.body.appendChild(out);
});
</script>
"""


def summary_layout(report: Path, tmp: Path) -> dict:
    """Where the summary ends in a 1280 x 900 Chromium window (the screenshot's size) and
    the text it shows."""
    binary = chromium_binary()
    page = tmp / "layout.html"
    page.write_text(report.read_text(encoding="utf-8").replace("</body></html>",
                                                                _LAYOUT + "</body></html>"))
    cmd = chromium_command(binary, tmp / "profile-layout", "--dump-dom",
                           "--window-size=1280,900", "--hide-scrollbars", page.as_uri())
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    import html as html_lib

    match = re.search(r"<pre id=\"layout\">(.*?)</pre>", done.stdout, re.S)
    assert match, done.stdout[-500:]
    return json.loads(html_lib.unescape(match.group(1)))


def assert_screenshot_shows_the_summary(report: Path, shot: Path, result, tmp: Path) -> None:
    """The logged screenshot (1280 x 900) shows the whole summary: Chromium lays it out above
    900 px, its text holds the figures computed in Python, and the screenshot's pixels down to
    the summary's bottom are those of a page holding only the header and the summary."""
    from matplotlib.image import imread

    layout = summary_layout(report, tmp)
    assert layout["bottom"] <= 900, f"the summary ends at {layout['bottom']} px, below 900"
    for figure in _summary_figures(result):
        assert figure in layout["text"], (figure, layout["text"][:500])
    text = report.read_text(encoding="utf-8")
    end = text.index("</section>", text.index("<section id='summary'")) + len("</section>")
    alone = tmp / "summary_only.html"
    alone.write_text(text[:end] + "</body></html>", encoding="utf-8")
    assert screenshot_html(alone, tmp / "summary_only.png")
    full, only = imread(str(shot)), imread(str(tmp / "summary_only.png"))
    assert full.shape[:2] == (900, 1280)
    bottom = int(layout["bottom"])
    assert np.array_equal(full[:bottom], only[:bottom])
    assert only[:bottom].std() > 0.05  # not a blank page


@pytest.mark.slow
@pytest.mark.browser
def test_logged_screenshot_shows_the_summary(demo_features, tmp_path: Path) -> None:
    if chromium_binary() is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from pipeline.model.train import train
    from pipeline.reports.artifacts import write_training_artifacts

    cfg, features = demo_features
    result = train(features, cfg)
    out = tmp_path / "art"
    paths = write_training_artifacts(out, result, features, cfg)  # what a run logs
    assert out / "report_screenshot.png" in paths and (out / "woe_iv.csv").exists()
    assert_screenshot_shows_the_summary(out / "report.html", out / "report_screenshot.png",
                                        result, tmp_path)
