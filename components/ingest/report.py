"""stats.html: the statistics as a page people can read at a glance.

Histograms are drawn as plain SVG rather than through matplotlib
(`components.common.page.figure`): a page has one per numeric column, and
matplotlib would add seconds to every ingest run (its import and about 60 ms
a figure on 2 cores), where these cost microseconds. They keep what `figure`
demands of a plot: both axes drawn, numbered and labelled.
"""

from __future__ import annotations

from components.common.page import MISSING, escape as _e, page, section, shown
from components.common.schema import Feature, Schema

# Histogram geometry, in pixels: the whole drawing, and the margins that hold the axes' numbers and labels.
WIDTH, HEIGHT = 260, 120
LEFT, RIGHT, TOP, BOTTOM = 46, 12, 8, 32


def render(schema: Schema, summary: dict) -> str:
    return page("tfpipe ingest statistics", [
        "<h1>Ingest statistics</h1>",
        f"<p>{summary['rows']:,} rows written, "
        f"<span class='{'warn' if summary['rejected'] else ''}'>{summary['rejected']:,} rejected</span>, "
        f"in {summary['seconds']:.1f} s ({summary['rows_per_second']:,} rows/s). "
        f"Source: <code>{_e(schema.source.get('config_source', ''))}</code> "
        f"({schema.source.get('format')}, {schema.source.get('count')} files). Label: <b>{_e(schema.label)}</b>.</p>",
        _splits_table(summary),
        section("Numeric features", _numeric_table(schema), "The data has no int or float columns."),
        section("String features", _string_table(schema), "The data has no string or image columns."),
        *([section("Text features", _text_table(schema))] if any(f.type == "text" for f in schema.features)
          else []),
        *([section("List features", _list_table(schema))] if schema.has_lists else []),
    ])


def _splits_table(summary: dict) -> str:
    rows = "".join(
        f"<tr><td>{_e(split)}</td><td>{count:,}</td><td style='text-align:left'>"
        f"{_bars(sorted(summary['labels'].get(split, {}).items()), 240)}</td></tr>"
        for split, count in summary["splits"].items()
    )
    return f"<h2>Splits</h2><table><tr><th>split</th><th>rows</th><th>labels</th></tr>{rows}</table>"


def _numeric_table(schema: Schema) -> list[str]:
    rows = []
    for f in schema.features:
        if not f.is_numeric:
            continue
        s = f.stats
        if not s.get("count"):
            rows.append(f"<tr><td>{_e(f.name)}</td><td>{f.type}</td><td>0</td><td>{s['missing']:,}</td></tr>")
            continue
        rows.append(
            f"<tr><td>{_e(f.name)}</td><td>{f.type}</td><td>{s['count']:,}</td><td>{s['missing']:,}</td>"
            f"<td>{s['min']:.4g}</td><td>{s['max']:.4g}</td><td>{s['mean']:.4g}</td><td>{s['std']:.4g}</td>"
            f"<td>{_histogram(f, s['equal_width'])}</td></tr>"
        )
    head = "<tr><th>feature</th><th>type</th><th>count</th><th>missing</th><th>min</th><th>max</th>" \
           "<th>mean</th><th>std</th><th>histogram</th></tr>"
    return [f"<table>{head}{''.join(rows)}</table>"] if rows else []


def _string_table(schema: Schema) -> list[str]:
    rows = []
    for f in schema.features:
        if f.type not in ("string", "image"):
            continue
        s = f.stats
        top = _bars(_most_frequent(s), 300) if f.type == "string" \
            else f"{f.image.height}x{f.image.width}x{f.image.channels} PNG"
        rows.append(
            f"<tr><td>{_e(f.name)}</td><td>{f.type}</td><td>{s['count']:,}</td><td>{s['missing']:,}</td>"
            f"<td>{s.get('unique', '')}</td><td style='text-align:left'>{top}</td></tr>"
        )
    head = "<tr><th>feature</th><th>type</th><th>count</th><th>missing</th><th>unique</th><th>most frequent</th></tr>"
    return [f"<table>{head}{''.join(rows)}</table>"] if rows else []


def _text_table(schema: Schema) -> list[str]:
    """Per text column: bytes and tokens per value (mean and histogram) and the most frequent tokens."""
    rows = []
    for f in schema.features:
        if f.type != "text":
            continue
        s = f.stats
        shape = "".join(f"<td>{s[k]['mean']:.4g}</td><td>{_histogram(f, s[k]['equal_width'], axis)}</td>"
                        if s["count"] else "<td></td><td></td>"
                        for k, axis in (("length", "bytes per value"), ("token_count", "tokens per value")))
        rows.append(
            f"<tr><td>{_e(f.name)}</td><td>{s['count']:,}</td><td>{s['missing']:,}</td>{shape}"
            f"<td>{s.get('unique', '')}</td>"
            f"<td style='text-align:left;white-space:nowrap'>{_bars(s['top'][:10], 300)}</td></tr>"
        )
    head = "<tr><th>feature</th><th>count</th><th>missing</th><th>mean bytes</th><th>bytes per value</th>" \
           "<th>mean tokens</th><th>tokens per value</th><th>distinct tokens</th><th>most frequent tokens</th></tr>"
    return [f"<table>{head}{''.join(rows)}</table>"]


def _list_table(schema: Schema) -> list[str]:
    """Per list column: values per row (mean and histogram), and its values as a column of their type shows them."""
    rows = []
    for f in schema.features:
        if not f.is_list:
            continue
        s, length = f.stats, f.stats["length"]
        per_row = _histogram(f, length["equal_width"], "values per row", True) if length.get("count") else ""
        shape = f"<td>{length['mean']:.4g}</td><td>{per_row}</td>" if per_row else "<td></td><td></td>"
        values = "" if not s["values"] else _bars(s["top"][:10], 300) if f.element_type == "string" \
            else f"{s['min']:.4g} to {s['max']:.4g}, mean {s['mean']:.4g}<br>{_histogram(f, s['equal_width'], 'value')}"
        rows.append(
            f"<tr><td>{_e(f.name)}</td><td>{f.type}</td><td>{s['count']:,}</td><td>{s['missing']:,}</td>"
            f"<td>{s['values']:,}</td>{shape}<td style='text-align:left;white-space:nowrap'>{values}</td></tr>"
        )
    head = "<tr><th>feature</th><th>type</th><th>rows</th><th>missing</th><th>values</th><th>mean length</th>" \
           "<th>values per row</th><th>values</th></tr>"
    return [f"<table>{head}{''.join(rows)}</table>"]


def _most_frequent(stats: dict, count: int = 10) -> list[tuple[str, int]]:
    """The most frequent values; missing ones (absent, or the empty string the model reads them as) as one."""
    counts: dict[str, int] = {MISSING: stats["missing"]} if stats["missing"] else {}
    for value, n in stats.get("top", []):
        counts[shown(value)] = counts.get(shown(value), 0) + n
    return sorted(counts.items(), key=lambda item: -item[1])[:count]


def _histogram(feature: Feature, bins: dict, axis: str = "", integer: bool = False) -> str:
    """Bars of equal width, a bar's height the rows in its bin; value axis below (named `axis`, or the
    feature), row axis on the left. Integers' bins (and a text feature's, of bytes or tokens) count whole
    values."""
    edges, counts = bins["edges"], bins["counts"]
    if not counts:
        return ""
    integer = integer or feature.element_type in ("int", "text")
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    peak = max(counts)

    def x(value: float) -> float:
        return LEFT + (value - edges[0]) / (edges[-1] - edges[0]) * plot_w

    def y(count: float) -> float:
        return TOP + plot_h - count / peak * plot_h

    bars = "".join(
        f"<rect class='bar' x='{x(lo) + 0.5:.1f}' y='{y(c):.1f}' width='{max(x(hi) - x(lo) - 1, 1):.1f}' "
        f"height='{TOP + plot_h - y(c):.1f}'><title>{_bin_text(lo, hi, integer)}: {c:,} rows</title></rect>"
        for lo, hi, c in zip(edges[:-1], edges[1:], counts, strict=True)
    )
    # Ticks at values: for ints the first and last whole value of the range, not the half-way edges.
    first, last = (edges[0] + 0.5, edges[-1] - 0.5) if integer else (edges[0], edges[-1])
    middle = round((first + last) / 2) if integer else (first + last) / 2
    ticks = sorted({first, middle, last})
    bottom = TOP + plot_h
    x_ticks = "".join(
        f"<line x1='{x(v):.1f}' x2='{x(v):.1f}' y1='{bottom}' y2='{bottom + 3}' stroke='#444'/>"
        f"<text x='{x(v):.1f}' y='{bottom + 13}' text-anchor='{'end' if v == last else 'middle'}'>"
        f"{_number(v, integer)}</text>"
        for v in ticks
    )
    y_ticks = "".join(
        f"<line x1='{LEFT - 3}' x2='{LEFT}' y1='{y(c):.1f}' y2='{y(c):.1f}' stroke='#444'/>"
        f"<text x='{LEFT - 5}' y='{y(c) + 3:.1f}' text-anchor='end'>{c:,}</text>"
        for c in (0, peak)
    )
    axes = (f"<path d='M{LEFT},{TOP}V{bottom}H{WIDTH - RIGHT}' fill='none' stroke='#444'/>"
            f"<text x='{LEFT + plot_w / 2:.1f}' y='{HEIGHT - 3}' text-anchor='middle'>{_e(axis or feature.name)}</text>"
            f"<text transform='translate(10 {TOP + plot_h / 2:.1f}) rotate(-90)' text-anchor='middle'>rows</text>")
    return (f"<svg width='{WIDTH}' height='{HEIGHT}' role='img' font-size='9' "
            f"aria-label='histogram of {_e(feature.name)}'>{bars}{axes}{x_ticks}{y_ticks}</svg>")


def _bin_text(low: float, high: float, integer: bool) -> str:
    """A bin as its reader counts it: the whole values it holds for ints, [low, high) for floats."""
    if not integer:
        return f"[{low:.4g}, {high:.4g})"
    first, last = round(low + 0.5), round(high - 0.5)
    return f"{first:,}" if first == last else f"{first:,} to {last:,}"


def _number(value: float, integer: bool) -> str:
    return f"{round(value):,}" if integer else f"{value:.4g}"


def _bars(items, width: int) -> str:
    """Horizontal bars of (value, count) pairs; a missing value reads `MISSING`, never a blank."""
    if not items:
        return ""
    peak = max(c for _, c in items) or 1
    rows = "".join(
        f"<div><svg width='{width // 2}' height='10'><rect class='bar' width='{c / peak * width / 2:.1f}' "
        f"height='10'/></svg> {_e(shown(v))} <small>({c:,})</small></div>"
        for v, c in items
    )
    return rows
