"""Self-contained HTML pages (inline CSS and SVG, no scripts or external URLs).

The KFP UI, a browser opened on a bucket, or an e-mail attachment all show
them the same way.
"""

from __future__ import annotations

import html
import io

STYLE = """
body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}.bar{fill:#4a7fc1}.warn{color:#b00}
.ok{color:#070}figure{display:inline-block;margin:0 1em 1em 0}
"""


def escape(value) -> str:
    return html.escape(str(value))


def page(title: str, parts: list[str]) -> str:
    return "\n".join([f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
                      f"<style>{STYLE}</style></head><body>", *parts, "</body></html>"])


def table(header: list[str], rows: list[list]) -> str:
    """A table of escaped cells; floats shown with 4 significant digits."""
    def cell(v) -> str:
        return "" if v is None else f"{v:.4g}" if isinstance(v, float) else escape(v)

    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def figure(draw, *args, size: tuple[float, float] = (4.2, 3.6)) -> str:
    """`draw(axes, *args)` on a new matplotlib figure, returned as an inline SVG `<figure>`."""
    from matplotlib.figure import Figure

    plot = Figure(figsize=size, dpi=72)
    draw(plot.add_subplot(), *args)
    plot.tight_layout()
    buffer = io.StringIO()
    plot.savefig(buffer, format="svg")
    svg = buffer.getvalue()
    return f"<figure>{svg[svg.index('<svg'):]}</figure>"
