"""A team's own model: the contract between tfpipe and `train.model.module`.

The config names a module and a function in it:

    train:
      model:
        module: models/wide_deep.py   # relative to the config file, absolute, gs://, or an importable module name
        function: build_model         # the default
        params: {deep_units: [32, 16], cross_layers: 2}

tfpipe calls the function with keyword arguments, passing only those it names:

- `inputs`: feature name -> `keras.Input` for every raw feature the serving signature receives (every
  feature but the label and `ingest.key`), with the dtype and shape tfpipe feeds: `(1,)` int64, float32
  or string for a column, `(height, width, channels)` uint8 for an image.
- `encoded`: feature name -> tfpipe's default encoding of that input (numbers standardised with the
  ingest statistics, strings looked up in their vocabulary and embedded, images rescaled and convolved),
  for the module to reuse or ignore.
- `schema` (`components.common.schema.Schema`), `task` (`components.common.task.Task`: `kind`,
  `classes`), `params` (the config's mapping, as written).
- `train_data`: a finite `tf.data.Dataset` of raw `(features, label)` batches of the train split, for
  `adapt()`.

It returns a `keras.Model` from `inputs` (all or some of them) to the task's output: probabilities over
`task.classes` in that order (softmax), or the predicted value. A model returned compiled keeps its
optimizer, loss and metrics; otherwise tfpipe compiles it as it does its own.

Custom layers, losses and metrics registered with `keras.saving.register_keras_serializable` load
wherever the model is loaded, in safe mode: the train step keeps the module beside `model.keras`
(`model_module.py`, `model_module.json`) and `components.common.model_loading` imports it first. The
exported SavedModel holds the traced graph and serves without it.
"""

from __future__ import annotations

import importlib
import inspect
import linecache
import sys
import types
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from components.common.config import ModelConfig
from components.common.errors import TfpipeError
from components.common.module_text import ModuleSource, sha256

ARGUMENTS = ("inputs", "encoded", "schema", "task", "params", "train_data")
RECORD = "model_module.json"
SOURCE = "model_module.py"


class ModuleError(TfpipeError):
    """The model module cannot be found or imported, or does not keep the contract."""


def builder(model: ModelConfig) -> Callable[..., Any]:
    """The function the config names, imported, with its arguments checked against the contract."""
    where = f"train.model.module {model.module}"
    module = import_source(model.source, model.module)
    function = getattr(module, model.function, None)
    if function is None or not callable(function):
        names = sorted(n for n, v in vars(module).items() if inspect.isfunction(v) and not n.startswith("_"))
        raise ModuleError(f"{where}: no function {model.function!r}; its functions are {names} "
                          f"(set train.model.function)")
    unknown = [name for name, p in inspect.signature(function).parameters.items()
               if name not in ARGUMENTS and p.default is inspect.Parameter.empty
               and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    if unknown:
        raise ModuleError(f"{where}: {model.function}() asks for {unknown}, which tfpipe does not offer; it offers "
                          f"{list(ARGUMENTS)} (rename the argument, or give it a default)")
    return function


def arguments(function: Callable[..., Any], offered: dict[str, Any]) -> dict[str, Any]:
    """The offered arguments the function names (all of them when it takes **kwargs)."""
    parameters = inspect.signature(function).parameters
    if any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
        return offered
    return {name: value for name, value in offered.items() if name in parameters}


def import_source(source: ModuleSource, module: str) -> types.ModuleType:
    """The module: from the carried text (under a name with its hash, so two versions can be loaded at
    once), or by import for an installed module. Errors name the module and the line."""
    if not source.text:
        try:
            return importlib.import_module(module)
        except Exception as e:
            raise ModuleError(f"train.model.module {module}: cannot import it: {type(e).__name__}: {e}") from e
    name = f"tfpipe_model_{Path(source.file).stem}_{source.sha256[:12]}"
    if name in sys.modules:
        return sys.modules[name]
    filename = f"<{source.file} {source.sha256[:12]}>"
    linecache.cache[filename] = (len(source.text), None, source.text.splitlines(True), filename)  # tracebacks
    loaded = types.ModuleType(name)
    loaded.__file__ = filename
    sys.modules[name] = loaded
    try:
        exec(compile(source.text, filename, "exec"), loaded.__dict__)  # noqa: S102 (the team's own code, by design)
    except Exception as e:
        del sys.modules[name]
        line = e.lineno if isinstance(e, SyntaxError) else next(
            (f.lineno for f in reversed(_frames(e)) if f.filename == filename), None)
        at = f", line {line}" if line else ""
        raise ModuleError(f"train.model.module {module}{at}: importing it failed: {type(e).__name__}: {e}") from e
    return loaded


@dataclass(frozen=True)
class ModuleRecord:
    """What built a model, kept beside its `model.keras` (and in `training.json`): every later load of the
    model imports the module from there first."""

    module: str  # as the config named it (resolved path, or module name)
    function: str
    sha256: str
    file: str = ""  # SOURCE when the text was kept beside the model
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, model: ModelConfig) -> ModuleRecord:
        return cls(model.module, model.function, model.source.sha256, SOURCE if model.source.text else "",
                   dict(model.params))

    def to_json(self) -> dict:
        return asdict(self)

    def write(self, folder: str, model: ModelConfig) -> None:
        from components.common import io

        if model.source.text:
            io.write_text(f"{folder}/{SOURCE}", model.source.text)
        io.write_json(f"{folder}/{RECORD}", self.to_json())


    @property
    def lineage(self) -> str:
        """How the registry names it: the module and the start of its hash."""
        return f"{self.module} sha256:{self.sha256[:12]}"


def record_beside(model_file: str) -> ModuleRecord | None:
    """The record of the module kept beside a `model.keras` (or in a train output folder), if one built it."""
    from components.common import io

    folder = str(model_file).rsplit("/", 1)[0] if str(model_file).endswith(".keras") else str(model_file)
    if not io.exists(f"{folder}/{RECORD}"):
        return None
    try:
        return ModuleRecord(**io.read_json(f"{folder}/{RECORD}"))
    except (TypeError, ValueError) as e:
        raise ModuleError(f"{folder}/{RECORD}: malformed: {e}") from None


def import_beside(model_file: str) -> ModuleRecord | None:
    """Imports the module kept beside a `model.keras`, if it was built by one, so that its registered
    classes are known before Keras reads the file."""
    from components.common import io

    record = record_beside(model_file)
    if record is None:
        return None
    folder = str(model_file).rsplit("/", 1)[0]
    text = ""
    if record.file:
        with io.open_binary(f"{folder}/{record.file}") as f:
            text = f.read().decode()
        if sha256(text) != record.sha256:
            raise ModuleError(f"{folder}/{record.file}: changed since the model was trained (sha256 differs from "
                              f"{RECORD}); restore it or train again")
    import_source(ModuleSource(Path(record.module).name if text else "", record.sha256, text), record.module)
    return record


def _frames(error: BaseException) -> list:
    import traceback

    return traceback.extract_tb(error.__traceback__)
