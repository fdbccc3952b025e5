"""Readers that turn each source format into Arrow batches of raw rows.

Every reader yields `RawBatch`es: an Arrow table of the rows it could read
(text formats as strings, Parquet as its own types), the line or item number
of each row, and the rows it could not read at all, each with the reason.
Typing and validation happen later, the same way for every format
(`components.ingest.conform`).
"""

from __future__ import annotations

import glob
import io as stdio
import json
import os
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from components.common import io
from components.common.config import IngestConfig
from components.common.errors import TfpipeError
from components.ingest import spans
from components.ingest.raw import RawBatch, Source, rejection  # noqa: F401 (what every reader yields: this module's API)

EXTENSIONS = {
    ".csv": "csv", ".tsv": "csv", ".txt": "csv",
    ".parquet": "parquet", ".pq": "parquet",
    ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl",
}
IMAGE_LABEL_SOURCE = "path"


class SourceError(TfpipeError):
    """The source cannot be found, listed or read."""


def resolve(cfg: IngestConfig) -> Source:
    """Finds the files a source names: a file, a folder, or a glob pattern, local or remote; or a BigQuery table."""
    from components.ingest import bigquery

    if bigquery.is_source(cfg):
        return bigquery.resolve(cfg)
    resolved = spans.resolve(cfg.source, cfg.source_date)
    source = _files(cfg, resolved.rstrip("/") if resolved not in ("/",) else resolved)
    return replace(source, path=resolved)


class _LocalFiles:
    """The calls `resolve` makes of tf.io.gfile, answered by the standard library for local paths.

    A wrong local source or column is then reported in about a second, not
    after TensorFlow has taken seconds to load only to say so.
    """

    exists = staticmethod(os.path.exists)
    isdir = staticmethod(os.path.isdir)
    listdir = staticmethod(os.listdir)
    glob = staticmethod(glob.glob)


def _listing(path: str):
    return io.gfile() if io.is_remote(path) else _LocalFiles


def _files(cfg: IngestConfig, path: str) -> Source:
    g = _listing(path)
    if any(ch in path for ch in "*?["):
        files = sorted(g.glob(path))
        if not files:
            raise SourceError(f"ingest.source: pattern {path} matched no files")
        return Source(_format_of(cfg.format, files[0]), tuple(files))
    if not g.exists(path):
        raise SourceError(f"ingest.source: {path} does not exist")
    if not g.isdir(path):
        return Source(_format_of(cfg.format, path), (path,))
    entries = sorted(g.listdir(path))
    subdirs = [e.rstrip("/") for e in entries if g.isdir(f"{path}/{e}")]
    if cfg.format == "images" or (cfg.format == "auto" and subdirs):
        return _image_source(path, subdirs, cfg)
    files = [f"{path}/{e}" for e in entries if os.path.splitext(e)[1].lower() in EXTENSIONS]
    if not files:
        raise SourceError(f"ingest.source: folder {path} holds no data files ({', '.join(sorted(EXTENSIONS))})")
    return Source(_format_of(cfg.format, files[0]), tuple(files))


def _format_of(configured: str, path: str) -> str:
    if configured != "auto":
        return configured
    ext = os.path.splitext(path.removesuffix(".gz"))[1].lower()
    if ext not in EXTENSIONS:
        raise SourceError(f"ingest.source: cannot tell the format of {path}; set ingest.format to csv, parquet "
                          "or jsonl")
    return EXTENSIONS[ext]


def _image_source(root: str, classes: list[str], cfg: IngestConfig) -> Source:
    if not classes:
        raise SourceError(f"ingest.source: image folder {root} has no class sub-folders "
                          f"(expected {root}/<class>/<image>)")
    g = _listing(root)
    files = [
        f"{root}/{cls}/{name}"
        for cls in classes
        for name in sorted(g.listdir(f"{root}/{cls}"))
        if os.path.splitext(name)[1].lower() in cfg.image.extensions
    ]
    if not files:
        raise SourceError(f"ingest.source: no {'/'.join(cfg.image.extensions)} files under {root}/<class>/")
    return Source("images", tuple(files), root)


def read(source: Source, cfg: IngestConfig) -> Iterator[RawBatch]:
    from components.ingest import bigquery

    readers = {"csv": _read_csv, "parquet": _read_parquet, "jsonl": _read_jsonl}
    whole_source_readers = {"images": _read_images, bigquery.FORMAT: bigquery.read}
    if source.format in whole_source_readers:
        yield from whole_source_readers[source.format](source, cfg)
        return
    for path in source.files:
        yield from readers[source.format](path, cfg)


def _open(path: str):
    """A Python file, for readers that read in the calling thread (JSON lines, images)."""
    try:
        return io.open_binary(path)
    except io.file_errors(path) as e:  # the file's fault, in one clear line; a bug keeps its traceback
        raise SourceError(f"{path}: cannot open: {e}") from e


def _open_native(path: str) -> pa.NativeFile:
    """A file Arrow reads in its own threads: natively, never through a Python file object.

    Arrow reads ahead on its I/O threads. Over a Python file each read takes
    the GIL, and whichever thread lets go of the file last takes it again to
    free the Python object; when that is an Arrow thread while the interpreter
    is finalizing (a user error ended the run a moment before), Python makes
    the thread exit inside a C++ destructor and the process aborts with
    "terminate called without an active exception". A native file keeps
    Python out of Arrow's threads altogether. Remote paths go through Arrow's
    own file systems (gs://, s3://, hdfs://) for the same reason.
    """
    try:
        if io.is_remote(path):
            filesystem, inner = io.arrow_filesystem(path)
            return filesystem.open_input_file(inner)
        return pa.OSFile(path)
    except (OSError, pa.ArrowException) as e:
        raise SourceError(f"{path}: cannot open: {e}") from None


def _read_csv(path: str, cfg: IngestConfig) -> Iterator[RawBatch]:
    """Streams a CSV as binary columns, so that bad UTF-8 and bad numbers reach `conform` row by row."""
    opts = cfg.csv
    invalid: list[pacsv.InvalidRow] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        invalid.append(row)
        return "skip"

    names = list(opts.column_names) if not opts.header else _csv_header(path, cfg)
    read_opts = pacsv.ReadOptions(
        use_threads=False,
        block_size=1 << 22,
        column_names=names,
        skip_rows=1 if opts.header else 0,
        encoding=opts.encoding,
    )
    parse_opts = pacsv.ParseOptions(
        delimiter=opts.delimiter, quote_char=opts.quote_char or False, invalid_row_handler=on_invalid
    )
    convert_opts = pacsv.ConvertOptions(
        column_types={n: pa.binary() for n in names},
        null_values=list(opts.null_values),
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )
    with _open_native(path) as f:
        try:
            reader = pacsv.open_csv(f, read_options=read_opts, parse_options=parse_opts, convert_options=convert_opts)
        except (pa.ArrowInvalid, StopIteration) as e:
            raise SourceError(f"{path}: cannot read as CSV: {e}") from None
        with reader:
            first_line = 2 if opts.header else 1
            seen = 0
            invalid_lines: list[int] = []
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                except pa.ArrowInvalid as e:
                    raise SourceError(f"{path}: CSV parse error after data row {seen}: {e}") from None
                rejected = _field_count_rejections(path, invalid)
                invalid_lines.extend(r.number for r in invalid if r.number is not None)
                invalid.clear()
                lines = np.arange(seen, seen + batch.num_rows, dtype=np.int64) + first_line
                for bad in sorted(invalid_lines):
                    lines[lines >= bad] += 1
                seen += batch.num_rows
                yield RawBatch(path, lines, pa.Table.from_batches([batch]), rejected)
            if invalid:
                yield RawBatch(path, np.zeros(0, np.int64), _empty_binary_table(names),
                               _field_count_rejections(path, invalid))


def _field_count_rejections(path: str, rows: list[pacsv.InvalidRow]) -> list[dict]:
    return [rejection(path, r.number, r.text, f"expected {r.expected_columns} fields, found {r.actual_columns}")
            for r in rows]


def _csv_header(path: str, cfg: IngestConfig) -> list[str]:
    opts = cfg.csv
    with _open(path) as f:
        head = f.read(1 << 20)
    if not head:
        raise SourceError(f"{path}: file is empty; expected a CSV header line")
    try:
        table = pacsv.read_csv(
            pa.BufferReader(head.split(b"\n", 1)[0] + b"\n"),
            read_options=pacsv.ReadOptions(encoding=opts.encoding),
            parse_options=pacsv.ParseOptions(delimiter=opts.delimiter, quote_char=opts.quote_char or False),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as e:
        raise SourceError(f"{path}: line 1: cannot read the CSV header: {e}") from None
    names = table.column_names
    if len(set(names)) != len(names):
        raise SourceError(f"{path}: line 1: duplicate column names in header {names}")
    return names


def _empty_binary_table(names: list[str]) -> pa.Table:
    return pa.table({n: pa.array([], pa.binary()) for n in names})


def _read_parquet(path: str, cfg: IngestConfig) -> Iterator[RawBatch]:
    with _open_native(path) as f:
        try:
            pf = pq.ParquetFile(f)
        except (pa.ArrowInvalid, OSError) as e:
            raise SourceError(f"{path}: cannot read as Parquet: {e}") from None
        with pf:
            seen = 0
            for batch in pf.iter_batches(batch_size=cfg.batch_rows):
                lines = np.arange(seen, seen + batch.num_rows, dtype=np.int64) + 1
                seen += batch.num_rows
                yield RawBatch(path, lines, pa.Table.from_batches([batch]))


def _read_jsonl(path: str, cfg: IngestConfig) -> Iterator[RawBatch]:
    """JSON lines, one object per line; values become text so that typing is the same as for CSV.

    A column holds lists or single values as its first non-null value in the file does; a row with the other
    is rejected here, naming the column and the line that set it.
    """
    names: list[str] | None = None
    columns: dict[str, list] = {}
    shapes: dict[str, tuple[bool, int]] = {}  # column -> (holds lists, the line that said so)
    lines: list[int] = []
    rejected: list[dict] = []

    def flush() -> RawBatch:
        table = pa.table({n: pa.array(columns[n], pa.list_(pa.binary()) if shapes.get(n, (False,))[0]
                                      else pa.binary()) for n in names or []})
        out = RawBatch(path, np.asarray(lines, np.int64), table, list(rejected))
        for values in columns.values():
            values.clear()
        lines.clear()
        rejected.clear()
        return out

    with _open(path) as f:
        for number, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            row, reason = _json_row(raw, names)
            if not reason:
                reason = _shape_mismatch(row, shapes, number)
            if reason:
                rejected.append(rejection(path, number, raw.decode("utf8", "replace").rstrip("\n"), reason))
                continue
            if names is None:
                names = list(row)
                columns = {n: [] for n in names}
            for n in names:
                columns[n].append(row.get(n))
            lines.append(number)
            if len(lines) >= cfg.batch_rows:
                yield flush()
    if lines or rejected:
        yield flush()


def _shape_mismatch(row: dict, shapes: dict[str, tuple[bool, int]], number: int) -> str:
    """Why `row` cannot join its columns (a list where they hold single values, or the reverse), or ""."""
    for key, value in row.items():
        if value is None:
            continue
        is_list = isinstance(value, list)
        holds_lists, since = shapes.setdefault(key, (is_list, number))
        if is_list != holds_lists:
            shapes_ = ("a single value", "a list")
            return f"column {key!r}: expected {shapes_[holds_lists]} (as from line {since}), found {shapes_[is_list]}"
    return ""


def _json_row(raw: bytes, names: list[str] | None) -> tuple[dict, str]:
    """One line's object, numbers kept as the text they were written as; a list as a list of such values.

    Typing then reads them as it reads CSV text, and a number no type can
    hold (`1e999999`, `NaN`, an integer beyond int64) is named as written.
    """
    try:
        obj = json.loads(raw.decode("utf8"), parse_float=str, parse_int=str, parse_constant=str)
    except UnicodeDecodeError as e:
        return {}, f"not valid UTF-8 ({e.reason} at byte {e.start})"
    except json.JSONDecodeError as e:
        return {}, f"not valid JSON: {e.msg} at column {e.colno}"
    if not isinstance(obj, dict):
        return {}, f"expected a JSON object, found {type(obj).__name__}"
    if names is not None:
        extra = sorted(set(obj) - set(names))
        if extra:
            return {}, f"unexpected keys {extra}; the first row has {names}"
    row = {}
    for key, value in obj.items():
        nested = next((v for v in value if isinstance(v, (dict, list))), None) if isinstance(value, list) else None
        if isinstance(value, dict) or nested is not None:
            found = f"a JSON {type(nested).__name__} in a list" if nested is not None else "a JSON dict"
            return {}, f"column {key!r}: expected a single value or a list of them, found {found}"
        row[key] = [_json_text(v) for v in value] if isinstance(value, list) else _json_text(value)
    return row, ""


def _json_text(value) -> bytes | None:
    if value is None:
        return None
    return value.encode() if isinstance(value, str) else json.dumps(value).encode()


def _read_images(source: Source, cfg: IngestConfig) -> Iterator[RawBatch]:
    """Image files in class folders, checked and re-encoded as PNG of one size and channel count."""
    from PIL import Image, UnidentifiedImageError

    target_size = tuple(cfg.image.size) or None  # (height, width)
    mode = "L" if cfg.image.grayscale else None
    prefix = len(source.root) + 1
    for start in range(0, len(source.files), cfg.batch_rows):
        images, labels, paths, numbers, rejected = [], [], [], [], []
        for number, path in enumerate(source.files[start:start + cfg.batch_rows], start + 1):
            rel = path[prefix:]
            try:
                with _open(path) as f:
                    img = Image.open(stdio.BytesIO(f.read()))
                    img.load()
            except (UnidentifiedImageError, OSError, SourceError) as e:
                rejected.append(rejection(path, number, rel, f"unreadable image: {e}"))
                continue
            if mode is None:
                mode = "L" if img.mode in ("1", "L", "LA", "I", "I;16", "F") else "RGB"
            img = img.convert(mode)
            if target_size is None:
                target_size = (img.height, img.width)
            if (img.height, img.width) != target_size:
                if not cfg.image.size:
                    rejected.append(rejection(
                        path, number, rel,
                        f"image is {img.height}x{img.width}, expected {target_size[0]}x{target_size[1]} "
                        "(set ingest.image.size to resize every image)"))
                    continue
                img = img.resize((target_size[1], target_size[0]), Image.Resampling.BILINEAR)
            buf = stdio.BytesIO()
            img.save(buf, format="PNG")
            images.append(buf.getvalue())
            labels.append(rel.split("/", 1)[0].encode())
            paths.append(rel.encode())
            numbers.append(number)
        table = pa.table({
            "image": pa.array(images, pa.binary()),
            cfg.label: pa.array(labels, pa.binary()),
            IMAGE_LABEL_SOURCE: pa.array(paths, pa.binary()),
        })
        yield RawBatch(source.root, np.asarray(numbers, np.int64), table, rejected)
