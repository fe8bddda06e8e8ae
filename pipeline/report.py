"""The model report: one self-contained HTML page per version (images embedded as base64)."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd


@dataclass(frozen=True)
class Section:
    """One titled block of the report: paragraphs, tables and figures (PNG bytes)."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    images: list[tuple[str, bytes]] = field(default_factory=list)


def figure_png(fig) -> bytes:  # noqa: ANN001 - a matplotlib Figure
    """Render a matplotlib figure to PNG bytes (Agg canvas, no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def _table_html(caption: str, frame: pd.DataFrame, max_rows: int = 200) -> str:
    shown = frame.head(max_rows)
    body = shown.to_html(index=False, border=0, classes="tbl", float_format=lambda x: f"{x:.4g}",
                         na_rep="", escape=True)
    more = f"<p class='note'>{len(frame) - max_rows} more rows in the CSV artifact.</p>" \
        if len(frame) > max_rows else ""
    return f"<figure><figcaption>{html.escape(caption)}</figcaption>{body}{more}</figure>"


def _image_html(caption: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}'/>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1100px;color:#1f2933;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;border-bottom:2px solid #e4e7eb;
padding-bottom:.25rem;margin-top:2.2rem}
.tbl{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
.tbl th,.tbl td{padding:.25rem .6rem;border-bottom:1px solid #e4e7eb;text-align:right}
.tbl th{background:#f5f7fa}.tbl td:first-child,.tbl th:first-child{text-align:left}
figure{margin:1rem 0}figcaption{font-size:.85rem;color:#52606d;margin:.25rem 0}
img{max-width:100%;border:1px solid #e4e7eb}.note{color:#7b8794;font-size:.85rem}
nav a{margin-right:.8rem;font-size:.9rem}
"""


def render_html(title: str, subtitle: str, sections: Iterable[Section]) -> str:
    """A complete HTML document; every table and image is inline (no external files)."""
    sections = list(sections)
    nav = " ".join(f"<a href='#s{i}'>{html.escape(s.title)}</a>" for i, s in enumerate(sections))
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1><p class='note'>{html.escape(subtitle)}</p>",
             f"<nav>{nav}</nav>"]
    for i, section in enumerate(sections):
        parts.append(f"<section id='s{i}' class='section'><h2>{html.escape(section.title)}</h2>")
        parts.extend(f"<p>{html.escape(p)}</p>" for p in section.paragraphs)
        parts.extend(_image_html(c, png) for c, png in section.images)
        parts.extend(_table_html(c, t) for c, t in section.tables)
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)
