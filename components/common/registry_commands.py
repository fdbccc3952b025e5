"""`tfpipe models list | promote | rollback`: the registry's commands, in words a person reads.

Promotion and rollback go through `components.common.vertex_registry` when a Vertex deployment is given
(it moves the alias in Vertex Model Registry first), else straight to the registry.
"""

from __future__ import annotations

import json

from components.common.registry import Registry
from components.common.registry_records import KEY_METRICS, Moved, RegistryRecord


def render_table(record: RegistryRecord, where: str = "", drift: str = "") -> str:
    """`tfpipe models list`: one row per version, newest first, with aliases, blessing, key metrics, lineage;
    `drift` says how the labels file disagrees with the record."""
    metrics = [m for m in KEY_METRICS if any(m in v.evaluation.metrics for v in record.versions)][:4]
    modules = any(v.lineage.model_module for v in record.versions)  # a team's model: which module built it
    header = ["version", "aliases", "blessing", *metrics, "data span", *(["model module"] if modules else []),
              "created (UTC)"]
    rows = []
    for v in reversed(record.versions):
        module = [v.lineage.model_module.rsplit("/", 1)[-1] or "-"] if modules else []
        rows.append([str(v.version), ",".join(record.aliases_of(v.version)) or "-", v.evaluation.verdict,
                     *(f"{v.evaluation.metrics[m]:.4f}" if m in v.evaluation.metrics else "-" for m in metrics),
                     v.lineage.data_span or "-", *module, v.created.replace("T", " ")[:16] or "-"])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"{record.name}{f'  ({where})' if where else ''}: {len(record.versions)} versions"]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    for alias in record.aliases:
        if alias.previous:
            lines.append(f"{alias.name}: version {alias.version}, rollback to {alias.previous[-1]} "
                         f"(then {', '.join(map(str, reversed(alias.previous[:-1]))) or 'none'})")
    if record.legacy_blessing is not None and not record.newest_blessed():
        lines.append(f"blessed.json: {record.legacy_blessing.model} (blessed {record.legacy_blessing.blessed_at}, "
                     "no version on record): the baseline until a blessed version is registered")
    if drift:
        lines.append(f"LABELS DISAGREE: {drift}; a server follows the labels file, and any promote or rollback "
                     "(one that changes nothing included) rewrites it from the registry")
    return "\n".join(lines)


def list_models(base: str, as_json: bool = False) -> str:
    """What `tfpipe models list --base <base>/<name> [--json]` prints: the table, or the registry's record."""
    registry = Registry(base)
    registry.check_home()
    record = registry.read()
    if as_json:
        return json.dumps(record.to_json(), indent=2)
    return render_table(record, registry.path, registry.disagreement(record))


def promote_model(base: str, version: int, alias: str, force: bool = False, vertex=None) -> str:
    """`tfpipe models promote --base ... --version N --alias production`; `vertex` (a DeployConfig) moves the
    alias in Vertex Model Registry too."""
    registry = Registry(base)
    if vertex is not None:
        from components.common.vertex_registry import VertexRegistry

        moved = VertexRegistry(registry, vertex).promote(version, alias, force)
    else:
        moved = registry.promote(version, alias, force)
    was = " (new alias)" if moved.was is None else " (already)" if moved.was == moved.version else \
        f" (was {moved.was})"
    return f"{registry.name}: {alias} -> version {moved.version}{was}; {_labels_written(registry, moved)}"


def rollback_model(base: str, alias: str, vertex=None) -> str:
    """`tfpipe models rollback --base ... --alias production`."""
    registry = Registry(base)
    if vertex is not None:
        from components.common.vertex_registry import VertexRegistry

        moved = VertexRegistry(registry, vertex).rollback(alias)
    else:
        moved = registry.rollback(alias)
    return f"{registry.name}: {alias} -> version {moved.version} (rolled back from {moved.was}); " \
           f"{_labels_written(registry, moved)}"


def _labels_written(registry: Registry, moved: Moved) -> str:
    repaired = f", repaired ({moved.repaired})" if moved.repaired else ""
    return f"labels in {registry.labels_file}{repaired}"
