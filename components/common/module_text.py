"""A team's model module as text: read once, when the config is loaded, so that the code travels with the config.

`train.model.module` names a Python file (relative to the config file, absolute, or gs://) or an
installed module. A file's text and hash go into the config (`train.model.source`): to every step,
worker process and container, on this machine or a cluster, with no image to rebuild; and its hash is
part of the config's, so a changed module misses the step cache and shows in the registry's lineage. An
installed module keeps only its file's hash (the image must have it). What the module must define is
in `components.common.model_module`.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from components.common.errors import TfpipeError


class ModuleTextError(TfpipeError):
    """The module named by `train.model.module` cannot be read, or its carried text was changed."""


@dataclass(frozen=True)
class ModuleSource:
    """The team's model module as this run took it."""

    file: str = ""  # the module file's name (wide_deep.py); empty for an importable module
    sha256: str = ""  # of the module's source
    text: str = ""  # the source, for a file

    def validate(self, where: str) -> None:
        if self.text and sha256(self.text) != self.sha256:
            raise ModuleTextError(f"{where}: the module's text does not match its sha256; remove {where} and load "
                                  f"the config again to take the module as it is now")


def read(module: str, config_file: str | Path | None = None) -> tuple[str, ModuleSource]:
    """The module as resolved (a file's path; a module's name) and its source. A relative file path is taken
    from the config file's folder, else from the working directory."""
    if module.endswith(".py") or "/" in module:
        path = _file_path(module, config_file)
        text = _read(path)
        return path, ModuleSource(file=Path(path).name, sha256=sha256(text), text=text)
    return module, ModuleSource(sha256=sha256(_read(_installed_file(module))))


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _file_path(module: str, config_file: str | Path | None) -> str:
    from components.common import io

    if io.is_remote(module) or Path(module).is_absolute():
        return module
    base = Path(config_file).resolve().parent if config_file is not None else Path.cwd()
    return str(base / module)


def _read(path: str) -> str:
    from components.common import io

    if not io.exists(path):
        raise ModuleTextError(f"train.model.module: {path}: no such file; expected a Python file (a path relative "
                              f"to the config file, absolute, or gs://) or an importable module name")
    with io.open_binary(path) as f:
        data = f.read()
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise ModuleTextError(f"train.model.module: {path}: not UTF-8 text; expected a Python file") from None


def _installed_file(module: str) -> str:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as e:
        raise ModuleTextError(f"train.model.module: {module!r}: {e}") from None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise ModuleTextError(f"train.model.module: no module {module!r} is installed; expected a Python file "
                              f"(a path ending in .py) or the name of an installed module")
    return spec.origin
