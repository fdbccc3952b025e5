"""Each request's example keys, for the request log: what joins a logged prediction to its label later.

A key is the example's `ingest.key` value (the schema the version was
exported with names the column). It comes with the request in one of two
ways:

- inside each example: a REST predict instance's (or `inputs` column's)
  field of that name, a gRPC predict input tensor of that name, or a feature
  of that name in a classify, regress or `predict_examples` example. The
  model never sees it: tfpipe's models take every feature but the label and
  the key.
- beside the examples: the `X-Example-Key` header (gRPC: `x-example-key`
  metadata), the keys in the examples' order, comma-separated. When sent it
  gives the keys, whatever the examples carry.

The keys are logged as the examples carry them: a predict's as an input
tensor named by the key, an example's as its feature (components.serve.wire).
"""

from __future__ import annotations

import numpy as np

from components.common.config import EXAMPLE_KEY_HEADER
from components.serve.errors import RequestError

GRPC_METADATA = EXAMPLE_KEY_HEADER.lower()  # gRPC metadata keys are lower case


def split(body, key: str):
    """(the REST predict body without the key field, the keys it carried or None): the model gets the rest.
    Instances carry the field when the first one does (one without it has no key); a request without it
    costs one look."""
    if not key or not isinstance(body, dict):
        return body, None
    rows, columns = body.get("instances"), body.get("inputs")
    if isinstance(rows, list) and rows and isinstance(rows[0], dict) and key in rows[0]:
        if not all(isinstance(r, dict) for r in rows):
            raise RequestError(f"instances: expected objects with the inputs and {key!r} (the example key)")
        return {**body, "instances": [{k: v for k, v in r.items() if k != key} for r in rows]}, \
            [r.get(key) for r in rows]
    if isinstance(columns, dict) and key in columns:
        given = columns[key]
        return {**body, "inputs": {k: v for k, v in columns.items() if k != key}}, \
            given if isinstance(given, list) else [given]
    return body, None


def checked(key: str, given: list | None, header: str | None, rows: int, version: int) -> np.ndarray | None:
    """The request's keys as strings, one per example (the header's when sent), or None when it has none."""
    if header is not None:
        if not key:
            raise RequestError(f"{EXAMPLE_KEY_HEADER}: version {version} was exported from examples without "
                               "ingest.key, so there is no key to log these keys as")
        given = [k.strip() for k in header.split(",")]
    if given is None:
        return None
    if len(given) != rows:
        where = EXAMPLE_KEY_HEADER if header is not None else f"{key!r}"
        raise RequestError(f"{where}: {len(given)} example keys for {rows} examples; expected one key per example")
    if any(isinstance(k, (dict, list)) for k in given):
        raise RequestError(f"{key!r}: expected one key (a string or number) per example")
    return np.array(["" if k is None else str(k) for k in given], dtype=object)
