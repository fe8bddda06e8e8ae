"""The model report: one self-contained HTML page per version (images embedded as base64),
and a headless-Chromium screenshot of it."""

from __future__ import annotations

import base64
import html
import io
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Section:
    """One titled block of the report: paragraphs, tables and figures (PNG bytes).

    ``key`` is the stable HTML id (and ``section-<key>`` class) a test or a link can rely on;
    without it the section is numbered by position. ``cards`` (label, value, detail) are big
    figures shown first, ``warnings`` a highlighted list after the paragraphs, ``pairs`` two
    figures side by side (e.g. a factor's lift beside its points).
    """

    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    images: list[tuple[str, bytes]] = field(default_factory=list)
    key: str = ""
    cards: list[tuple[str, str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    pairs: list[tuple[tuple[str, bytes], tuple[str, bytes]]] = field(default_factory=list)


def figure_png(fig) -> bytes:  # noqa: ANN001 - a matplotlib Figure
    """Render a matplotlib figure to PNG bytes (Agg canvas, no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    # a figure with a layout engine already fits its labels; "tight" would lay it out twice
    tight = None if fig.get_layout_engine() is not None else "tight"
    fig.savefig(buffer, format="png", dpi=110, bbox_inches=tight)
    return buffer.getvalue()


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}" if abs(int(value)) >= 10_000 else str(int(value))
    return str(value)


def _table_html(caption: str, frame: pd.DataFrame, max_rows: int = 200) -> str:
    """A plain HTML table: numeric columns right-aligned, text left-aligned, values escaped."""
    shown = frame.head(max_rows)
    numeric = [pd.api.types.is_numeric_dtype(shown[c]) and not pd.api.types.is_bool_dtype(shown[c])
               for c in shown.columns]
    head = "".join(f"<th class='{'num' if n else 'txt'}'>{html.escape(str(c))}</th>"
                   for c, n in zip(shown.columns, numeric, strict=True))
    rows = []
    for values in shown.itertuples(index=False, name=None):
        cells = "".join(f"<td class='{'num' if n else 'txt'}'>{html.escape(_cell(v))}</td>"
                        for v, n in zip(values, numeric, strict=True))
        rows.append(f"<tr>{cells}</tr>")
    more = (f"<p class='note'>{len(frame) - max_rows} more rows in the CSV artifact.</p>"
            if len(frame) > max_rows else "")
    return (f"<figure class='table'><figcaption>{html.escape(caption)}</figcaption>"
            f"<div class='scroll'><table class='tbl'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>{more}</figure>")


def _image_html(caption: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f"<figure class='chart'><img alt='{html.escape(caption)}' "
            f"src='data:image/png;base64,{data}'/>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1100px;color:#1f2933;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;border-bottom:2px solid #e4e7eb;
padding-bottom:.25rem;margin-top:2.2rem}
.scroll{overflow-x:auto;max-width:100%}
.tbl{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
.tbl th,.tbl td{padding:.25rem .6rem;border-bottom:1px solid #e4e7eb}
.tbl th{background:#f5f7fa}.tbl .num{text-align:right}.tbl .txt{text-align:left}
figure{margin:1rem 0;max-width:100%}figcaption{font-size:.85rem;color:#52606d;margin:.25rem 0}
img{max-width:100%;height:auto;border:1px solid #e4e7eb}.note{color:#7b8794;font-size:.85rem}
nav a{margin-right:.8rem;font-size:.9rem}
.cards{display:flex;flex-wrap:wrap;gap:.7rem;margin:.6rem 0}
.card{flex:1 1 10rem;border:1px solid #d9e2ec;border-radius:6px;padding:.5rem .8rem;
background:#f8fafc}.card .label{font-size:.8rem;color:#52606d}
.card .value{font-size:1.6rem;font-weight:600;color:#1f2933}
.card .detail{font-size:.78rem;color:#7b8794}
ul.warnings{background:#fff8e1;border-left:4px solid #f0b429;padding:.4rem .4rem .4rem 1.6rem;
margin:.5rem 0;font-size:.88rem}ul.warnings.none{background:#effcf6;border-color:#3ebd93}
.pair{display:flex;gap:.8rem;align-items:flex-start}.pair figure{flex:1 1 0;min-width:0}
.section-summary h2{margin-top:1rem}.section-summary .tbl{font-size:.82rem}
"""

_KEY = re.compile(r"^[a-z][a-z0-9-]*$")


def render_html(title: str, subtitle: str, sections: Iterable[Section]) -> str:
    """A complete HTML document; every table and image is inline (no external files).

    Each section is ``<section id=KEY class='section section-KEY'>`` (``s<i>`` without a key).
    """
    sections = list(sections)
    ids = [s.key or f"s{i}" for i, s in enumerate(sections)]
    bad = [k for k in ids if not _KEY.match(k)]
    if bad or len(set(ids)) != len(ids):
        raise ValueError(f"section keys must be unique lowercase slugs, got {ids}")
    nav = " ".join(f"<a href='#{k}'>{html.escape(s.title)}</a>"
                   for k, s in zip(ids, sections, strict=True))
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1><p class='note'>{html.escape(subtitle)}</p>",
             f"<nav>{nav}</nav>"]
    for key, section in zip(ids, sections, strict=True):
        parts.append(f"<section id='{key}' class='section section-{key}'>"
                     f"<h2>{html.escape(section.title)}</h2>")
        if section.cards:
            parts.append("<div class='cards'>" + "".join(
                f"<div class='card'><div class='label'>{html.escape(label)}</div>"
                f"<div class='value'>{html.escape(value)}</div>"
                f"<div class='detail'>{html.escape(detail)}</div></div>"
                for label, value, detail in section.cards) + "</div>")
        parts.extend(f"<p>{html.escape(p)}</p>" for p in section.paragraphs)
        if section.warnings:
            parts.append("<ul class='warnings'>" + "".join(
                f"<li>{html.escape(w)}</li>" for w in section.warnings) + "</ul>")
        parts.extend(_image_html(c, png) for c, png in section.images)
        parts.extend(f"<div class='pair'>{_image_html(*left)}{_image_html(*right)}</div>"
                     for left, right in section.pairs)
        parts.extend(_table_html(c, t) for c, t in section.tables)
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


# --------------------------------------------------------------------------- headless Chromium


def chromium_binary() -> str | None:
    """Path of a Chromium (or Chrome) executable, or None when none is installed."""
    for candidate in ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(candidate)
        if found:
            return found
    return None


def chromium_command(binary: str, user_data_dir: Path, *extra: str) -> list[str]:
    """Headless Chromium with everything that would reach the network or a GPU turned off."""
    return [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={user_data_dir}",
            *extra]


def screenshot_html(html_path: Path, png_path: Path, *, width: int = 1280, height: int = 900,
                    timeout: float = 60.0) -> bool:
    """Render ``html_path`` in headless Chromium and write a ``width`` x ``height`` PNG.

    Returns False (and writes nothing) when Chromium is not installed, so training still
    works on a machine without a browser; raises RuntimeError when Chromium is there but
    fails, because then the screenshot is expected and something is wrong.
    """
    binary = chromium_binary()
    if binary is None:
        return False
    html_path, png_path = Path(html_path).resolve(), Path(png_path)
    if not html_path.is_file():
        raise FileNotFoundError(f"{html_path}: no such report")
    png_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        tmp_png = Path(profile) / "shot.png"
        cmd = chromium_command(binary, Path(profile) / "profile", f"--screenshot={tmp_png}",
                               f"--window-size={int(width)},{int(height)}",
                               "--hide-scrollbars", html_path.as_uri())
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  check=False, env=_chromium_env())
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"chromium did not finish the screenshot of {html_path} "
                               f"within {timeout:g} s") from exc
        if done.returncode != 0 or not tmp_png.exists() or tmp_png.stat().st_size == 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-5:])
            raise RuntimeError(f"chromium failed to screenshot {html_path} "
                               f"(exit {done.returncode}): {tail}")
        from pipeline.inputs.reader import write_bytes_atomic

        write_bytes_atomic(png_path, tmp_png.read_bytes())
    return True


def _chromium_env() -> dict[str, str]:
    """The environment minus a D-Bus address Chromium cannot use (it only adds log noise)."""
    env = dict(os.environ)
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    return env
