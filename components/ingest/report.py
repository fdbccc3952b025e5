"""stats.html: the statistics as a page people can read at a glance."""

from __future__ import annotations

from components.common.page import escape as _e, page
from components.common.schema import Schema


def render(schema: Schema, summary: dict) -> str:
    return page("tfpipe ingest statistics", [
        "<h1>Ingest statistics</h1>",
        f"<p>{summary['rows']:,} rows written, "
        f"<span class='{'warn' if summary['rejected'] else ''}'>{summary['rejected']:,} rejected</span>, "
        f"in {summary['seconds']:.1f} s ({summary['rows_per_second']:,} rows/s). "
        f"Source: <code>{_e(schema.source.get('config_source', ''))}</code> "
        f"({schema.source.get('format')}, {schema.source.get('count')} files). Label: <b>{_e(schema.label)}</b>.</p>",
        _splits_table(summary),
        "<h2>Numeric features</h2>",
        _numeric_table(schema),
        "<h2>String features</h2>",
        _string_table(schema),
    ])


def _splits_table(summary: dict) -> str:
    rows = "".join(
        f"<tr><td>{_e(split)}</td><td>{count:,}</td><td style='text-align:left'>"
        f"{_bars(sorted(summary['labels'].get(split, {}).items()), 240)}</td></tr>"
        for split, count in summary["splits"].items()
    )
    return f"<h2>Splits</h2><table><tr><th>split</th><th>rows</th><th>labels</th></tr>{rows}</table>"


def _numeric_table(schema: Schema) -> str:
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
            f"<td>{_histogram(s['histogram']['counts'])}</td></tr>"
        )
    head = "<tr><th>feature</th><th>type</th><th>count</th><th>missing</th><th>min</th><th>max</th>" \
           "<th>mean</th><th>std</th><th>histogram</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>" if rows else "<p>none</p>"


def _string_table(schema: Schema) -> str:
    rows = []
    for f in schema.features:
        if f.type not in ("string", "image"):
            continue
        s = f.stats
        top = _bars(s.get("top", [])[:10], 300) if f.type == "string" else f"{f.image.height}x{f.image.width}x{f.image.channels} PNG"
        rows.append(
            f"<tr><td>{_e(f.name)}</td><td>{f.type}</td><td>{s['count']:,}</td><td>{s['missing']:,}</td>"
            f"<td>{s.get('unique', '')}</td><td style='text-align:left'>{top}</td></tr>"
        )
    head = "<tr><th>feature</th><th>type</th><th>count</th><th>missing</th><th>unique</th><th>most frequent</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>" if rows else "<p>none</p>"


def _histogram(counts: list[int], width: int = 160, height: int = 32) -> str:
    peak = max(counts) or 1
    step = width / len(counts)
    bars = "".join(
        f"<rect class='bar' x='{i * step:.1f}' y='{height - c / peak * height:.1f}' "
        f"width='{max(step - 1, 1):.1f}' height='{c / peak * height:.1f}'><title>{c:,}</title></rect>"
        for i, c in enumerate(counts)
    )
    return f"<svg width='{width}' height='{height}' role='img'>{bars}</svg>"


def _bars(items, width: int) -> str:
    """Horizontal bars of (value, count) pairs."""
    if not items:
        return ""
    peak = max(c for _, c in items) or 1
    rows = "".join(
        f"<div><svg width='{width // 2}' height='10'><rect class='bar' width='{c / peak * width / 2:.1f}' "
        f"height='10'/></svg> {_e(v)} <small>({c:,})</small></div>"
        for v, c in items
    )
    return rows
