"""TF Serving's model config file (`--model_config_file`, a `ModelServerConfig` in text format) for one model
of the registry: where its versions are, which to load, and the registry's aliases as version labels.

The registry writes it beside `labels.json` once a deployment asks for it (`Registry.follow_in_tf_serving`)
and renders it again on every promotion and rollback, so that a TF Serving that polls it
(`--model_config_file_poll_wait_seconds`, as the KServe deployment's does) follows the registry as
`tfpipe serve` follows `labels.json`. Every version an alias names is loaded (TF Serving assigns a label only
to a loaded version); with no alias yet, the newest version is served. Written by hand, not with the
`tensorflow_serving` protos, so that `tfpipe models` never imports TensorFlow; the tests parse it with them.
"""

from __future__ import annotations

import json
import re

FILE = "models.config"
BASE_PATH = re.compile(r'^\s*base_path: ("(?:[^"\\]|\\.)*")$', re.MULTILINE)


def render(name: str, base_path: str, labels: dict[str, int]) -> bytes:
    """The config serving `name` from `base_path` (as the server sees it: a gs:// URI) with `labels`."""
    if labels:
        versions = " ".join(f"versions: {v}" for v in sorted(set(labels.values())))
        policy = f"model_version_policy {{ specific {{ {versions} }} }}"
    else:
        policy = "model_version_policy { latest { num_versions: 1 } }"
    lines = ["model_config_list {", "  config {", f"    name: {json.dumps(name)}",
             f"    base_path: {json.dumps(base_path)}", '    model_platform: "tensorflow"', f"    {policy}",
             *(f"    version_labels {{ key: {json.dumps(label)} value: {version} }}"
               for label, version in sorted(labels.items())),
             "  }", "}"]
    return ("\n".join(lines) + "\n").encode()


def base_path_of(config: bytes) -> str | None:
    """The base path a config written by `render` names; None when it names none."""
    found = BASE_PATH.search(config.decode(errors="replace"))
    return json.loads(found.group(1)) if found else None
