"""Self-contained HTML pages (inline CSS and SVG, no scripts or external URLs).

The KFP UI, a browser opened on a bucket, or an e-mail attachment all show
them the same way. Every report draws its plots through `figure`, which
refuses a plot a reader could misread: axes without labels, lines without a
legend, colours without a colour bar.
"""

from __future__ import annotations

import html
import io
import threading
from dataclasses import dataclass

# How every report and page shows a value that was missing in the data (a string feature reads as "").
MISSING = "(missing)"

STYLE = """
body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}.bar{fill:#4a7fc1}.warn{color:#b00}
.ok{color:#070}figure{display:inline-block;margin:0 1em 1em 0}.empty{color:#666;font-style:italic}
td.marked{background:#ffe58a;font-weight:bold}
"""

# matplotlib is not thread-safe, and the What-If page draws from worker threads.
_DRAWING = threading.Lock()


@dataclass(frozen=True)
class Marked:
    """A table cell to highlight (e.g. the features in which a counterfactual differs)."""

    value: object


def escape(value) -> str:
    return html.escape(str(value))


def shown(value) -> str:
    """A feature value as text for people: `MISSING` for an empty or absent value, never a blank."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return MISSING if value is None or value == "" else str(value)


def page(title: str, parts: list[str]) -> str:
    return "\n".join([f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
                      f"<style>{STYLE}</style></head><body>", *parts, "</body></html>"])


def section(title: str, parts: list[str], why_empty: str = "") -> str:
    """A titled section; with nothing to show, it says why instead of showing an empty table or nothing."""
    body = parts if parts else [f"<p class='empty'>{escape(why_empty or 'Nothing to show.')}</p>"]
    return "\n".join([f"<h2>{escape(title)}</h2>", *body])


def table(header: list[str], rows: list[list]) -> str:
    """A table of escaped cells; floats shown with 4 significant digits, `Marked` cells highlighted."""
    def cell(v) -> str:
        if isinstance(v, Marked):
            return f"<td class='marked'>{text(v.value)}</td>"
        return f"<td>{text(v)}</td>"

    def text(v) -> str:
        return "" if v is None else f"{v:.4g}" if isinstance(v, float) else escape(v)

    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def figure(draw, *args, size: tuple[float, float] = (4.2, 3.6), panels: int = 1) -> str:
    """`draw(axes, *args)` on a new matplotlib figure, returned as an inline SVG `<figure>`.

    With `panels` > 1, `draw` gets that many axes side by side. Text stays text in
    the SVG (find-in-page and screen readers see it). A plot without axis labels,
    a legend for its lines, or a colour bar for its colours is an error, not a page.
    """
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    with _DRAWING, rc_context({"svg.fonttype": "none", "svg.hashsalt": "tfpipe"}):
        plot = Figure(figsize=size, dpi=72)
        axes = plot.subplots(1, panels, squeeze=False)[0]
        draw(axes[0] if panels == 1 else tuple(axes), *args)
        problems = unreadable(plot)
        if problems:
            raise ValueError(f"{getattr(draw, '__name__', 'figure')}: {'; '.join(problems)}")
        plot.tight_layout()
        buffer = io.StringIO()
        plot.savefig(buffer, format="svg")
    svg = buffer.getvalue()
    return f"<figure>{svg[svg.index('<svg'):]}</figure>"


def legend(ax, **options) -> None:
    """The legend every plot with labelled lines gets, in one style."""
    ax.legend(fontsize=7, **options).set_gid("legend")


def colour_bar(ax, image, label: str) -> None:
    """A labelled colour bar beside `image`: what its colours mean, in numbers."""
    bar = ax.figure.colorbar(image, ax=ax, shrink=0.85)
    bar.set_label(label, fontsize=8)
    bar.ax.tick_params(labelsize=7)
    bar.ax.set_gid("colour-bar")


def unreadable(plot) -> list[str]:
    """What a figure lacks for a reader: axis labels, a legend, colour bars."""
    images = [image for ax in plot.axes for image in ax.get_images()]
    bars = {image.colorbar.ax for image in images if image.colorbar is not None}
    problems = [f"a colour-mapped image in {_name(image.axes)} has no colour bar" for image in images
                if image.get_array().ndim == 2 and image.colorbar is None]
    for ax in (ax for ax in plot.axes if ax not in bars):
        if ax.axison and not (ax.get_xlabel() and ax.get_ylabel()):
            problems.append(f"{_name(ax)} needs both axis labels")
        labelled = bool(ax.get_legend_handles_labels()[1])
        if ax.get_legend() is None and (labelled or len(ax.get_lines()) > 1):
            problems.append(f"{_name(ax)} has several or labelled lines and no legend")
    return problems


def _name(ax) -> str:
    return f"plot {ax.get_title()!r}" if ax.get_title() else "a plot"
