"""`tfpipe whatif serve`: the interactive What-If page on 127.0.0.1.

The page (`static/index.html`, plain JavaScript, no asset from the internet)
lists the test examples with each model's answer, edits any feature of one
(the datapoint editor: numbers, categories, text in a text area, images
painted with the mouse or uploaded) and shows the predictions change, finds
the nearest counterfactual, plots partial dependence around it, and for
images shows occlusion saliency. Every prediction goes through the
TF-Serving-compatible server's REST API: the page server starts one on the
model's versions and forwards `/v1/...` to it, so the page and the model
share one origin. The partial-dependence plot is drawn here, by the report's
own plotting code, so the page and the report show it alike. The datapoint
editor edits text in a text area and a list as values separated by commas.

With `compare` (a registry alias such as `production`, or a version) the
page holds the candidate (the registry's `candidate` alias, else the newest
version) against it, and can promote the candidate to production through the
registry's own `promote`. That is the one request that changes anything, so
it is guarded as Jupyter guards its server (components.whatif.guard).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io as bytes_io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources

import aiohttp
import numpy as np
from aiohttp import web
from PIL import Image

from components.common import registry_commands
from components.common.config import ConfigError, ServeConfig, from_plain
from components.common.errors import TfpipeError
from components.common.registry import CANDIDATE, PRODUCTION, Registry, RegistryError
from components.common.schema import Schema
from components.common.task import task_of
from components.evaluate.step import TestSplit, read_test_split
from components.serve.server import running as model_server
from components.whatif.analysis import grid
from components.whatif.document import (
    EditorFeature,
    PageDocument,
    PageModel,
    PartialDependence,
    PartialDependenceRequest,
    WhatIfError,
    nested,
)
from components.whatif.guard import Guard
from components.whatif.report import partial_dependence_figure

DOCUMENT = web.AppKey("document", PageDocument)
MODEL_URL = web.AppKey("model_url", str)
GUARD = web.AppKey("guard", Guard)
MAX_REQUEST_BYTES = 4 << 20


@dataclass(frozen=True)
class Versions:
    """The registry folder the page serves, and which of its versions it shows."""

    home: str
    candidate: int
    baseline: int | None = None
    baseline_named: str = ""  # as the user named it: "production", "version 2"

    @classmethod
    def choose(cls, home: str, compare: str = "") -> Versions:
        """The candidate (the `candidate` alias, else the newest version) and the version `compare` names."""
        registry = Registry(home)
        registry.check_home()
        record = registry.read()
        if not record.versions:
            raise WhatIfError(f"{home}: no versions to show; expected numbered folders holding saved_model.pb")
        alias = record.alias(CANDIDATE)
        candidate = alias.version if alias is not None else record.versions[-1].version
        if not compare:
            return cls(home, candidate)
        baseline = int(compare) if compare.isdigit() else registry.resolve(compare)
        registry.get(baseline)  # an unknown version is refused here, naming the registered ones
        named = f"version {compare}" if compare.isdigit() else f"{compare} (version {baseline})"
        if baseline == candidate:
            raise WhatIfError(f"--compare {compare}: that is version {candidate}, the candidate itself; name another "
                              f"version or alias to compare it with")
        return cls(home, candidate, baseline, named)

    def models(self, name: str) -> tuple[PageModel, ...]:
        def path(version: int) -> str:
            return f"/v1/models/{name}/versions/{version}:predict"

        shown = f"version {self.candidate}" + (" (candidate)" if self.baseline is not None else "")
        found = [PageModel("candidate", self.candidate, shown, path(self.candidate))]
        if self.baseline is not None:
            found.append(PageModel("baseline", self.baseline, self.baseline_named, path(self.baseline)))
        return tuple(found)

    def production(self) -> int | None:
        alias = Registry(self.home).read().alias(PRODUCTION)
        return alias.version if alias is not None else None


VERSIONS = web.AppKey("versions", Versions)


def examples_document(examples: str, model: str, versions: Versions | None = None,
                      promote: bool = False) -> PageDocument:
    """The test examples as rows of plain values (images as PNG data URLs), with what the editor needs to know
    of each feature and which models the page compares."""
    schema = Schema.read(examples)
    task = task_of(schema)
    test = read_test_split(examples, schema, task, 256)
    features, columns = [], {}
    for f in schema.inputs:
        if f.type == "image":
            columns[f.name] = _images(test, f.name)
            features.append(EditorFeature(f.name, False, False, image=(f.image.height, f.image.width,
                                                                       f.image.channels)))
            continue
        values = test.features[f.name]
        columns[f.name] = [[_plain(v, f.element_type) for v in value] if f.is_list else _plain(value, f.type)
                           for value in values]
        features.append(EditorFeature(f.name, f.is_numeric, f.type == "int",
                                      (*f.vocabulary, "") if f.type == "string" else (),  # "": a missing value
                                      tuple(grid(values, True, 12)) if f.is_numeric else (), f.type == "text",
                                      f.element_type if f.is_list else ""))
    labels = [task.classes[int(i)] for i in test.labels] if task.classes else test.labels.tolist()
    rows = tuple({**{name: column[i] for name, column in columns.items()}, "_label": labels[i]}
                 for i in range(len(labels)))
    shown = versions.models(model) if versions else (
        PageModel("candidate", 0, "the newest version", f"/v1/models/{model}:predict"),)
    return PageDocument(model, schema.label, task.classes, tuple(features), rows, shown,
                        versions.production() if versions else None, promote)


def _plain(value, kind: str):
    """A value as the page shows and sends it: text for bytes, floats to 6 digits (no float32 noise)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return float(f"{value:.6g}") if kind == "float" else value.item()


def _images(test: TestSplit, name: str) -> list[str]:
    """Each test image as a PNG data URL: what the page shows, and decodes back to the pixels the model reads."""
    out = []
    for x, _ in test.data:
        for picture in x[name].numpy():
            channels = picture.shape[-1]
            buffer = bytes_io.BytesIO()
            Image.fromarray(picture[..., 0] if channels == 1 else picture, "L" if channels == 1 else
                            "RGBA" if channels == 4 else "RGB").save(buffer, "PNG")
            out.append(f"data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}")
    return out


def app(document: PageDocument, model_url: str, versions: Versions | None = None,
        guard: Guard | None = None) -> web.Application:
    application = web.Application(client_max_size=MAX_REQUEST_BYTES)
    application[DOCUMENT], application[MODEL_URL] = document, model_url
    application[GUARD] = guard or Guard.read_only()
    if versions is not None:
        application[VERSIONS] = versions
    application.router.add_get("/", _index)
    application.router.add_get("/api/examples", _examples)
    application.router.add_post("/api/partial-dependence", _partial_dependence)
    application.router.add_post("/api/promote", _promote)
    application.router.add_post("/v1/{path:.+}", _forward)
    return application


async def _index(_: web.Request) -> web.Response:
    page = resources.files("components.whatif").joinpath("static/index.html").read_text()
    return web.Response(text=page, content_type="text/html")


async def _examples(request: web.Request) -> web.Response:
    return web.Response(text=request.app[DOCUMENT].to_json(), content_type="application/json")


async def _forward(request: web.Request) -> web.Response:
    """A prediction request, passed to the model server's REST API as it is, and its answer back."""
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{request.app[MODEL_URL]}{request.path}", data=await request.read()) as answer:
            return web.Response(body=await answer.read(), status=answer.status, content_type="application/json")


async def _promote(request: web.Request) -> web.Response:
    """Points the registry's production alias at the candidate, with `tfpipe models promote`'s own code; only
    for a same-origin request carrying the page's token, and never on a read-only page."""
    refused = request.app[GUARD].refusal(request)
    if refused:
        return web.json_response({"error": refused}, status=403)
    versions = request.app.get(VERSIONS)
    if versions is None:
        return web.json_response({"error": "promotion needs a comparison: start the page with --compare"},
                                 status=400)
    try:
        said = await asyncio.to_thread(registry_commands.promote_model, versions.home, versions.candidate,
                                       PRODUCTION)
    except RegistryError as e:
        return web.json_response({"error": str(e)}, status=409)
    return web.json_response({"message": said, "production": versions.production()})


async def _partial_dependence(request: web.Request) -> web.Response:
    """One example's predictions as one feature sweeps its values, as the report's plot (SVG), each model's
    curve on it; or an error."""
    document = request.app[DOCUMENT]
    try:
        asked = from_plain(PartialDependenceRequest, await request.json(), "partial dependence request")
        feature = document.feature(asked.feature)
        if feature.text or feature.list or feature.image:
            kind = "text" if feature.text else "a list" if feature.list else "an image"
            raise WhatIfError(f"{feature.name!r} is {kind}: partial dependence sweeps a number or a category over "
                              "its values, and it has no such values")
        sweep = feature.grid if feature.numeric else feature.vocabulary
        instances = [{**asked.row, feature.name: v} for v in sweep]
        curves = []
        for model in document.models:
            answers = await _predict(request.app[MODEL_URL], model.predict, instances)
            outputs = [p["probabilities"] if document.classes else [p["predictions"]] for p in answers]
            curves.append(PartialDependence(feature.name, feature.numeric, sweep, nested(outputs)))
    except (ConfigError, WhatIfError, ValueError) as e:
        return web.json_response({"error": str(e)}, status=400)
    svg = await asyncio.to_thread(partial_dependence_figure, curves[0], document.classes, document.label,
                                  asked.row.get(feature.name), curves[1] if len(curves) > 1 else None)
    return web.json_response({"svg": svg})


async def _predict(model_url: str, path: str, instances: list[dict]) -> list[dict]:
    """The model server's row-format predictions, or a WhatIfError with what it answered instead."""
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{model_url}{path}", json={"instances": instances}) as answer:
            status, text = answer.status, await answer.text()
    try:
        body = json.loads(text)
    except ValueError:
        raise WhatIfError(f"the model server answered {status} with something that is not JSON: {text[:200]!r}") \
            from None
    if status != 200 or not isinstance(body, dict) or "predictions" not in body:
        error = body.get("error") if isinstance(body, dict) else None
        raise WhatIfError(f"the model cannot score this input: {error or f'HTTP {status}'}")
    return body["predictions"]


@contextlib.contextmanager
def running(model_base: str, examples: str, host: str = "127.0.0.1", port: int = 0, compare: str = "",
            read_only: bool = False) -> Iterator[str]:
    """The model server and the page server, on background threads; yields the page's URL, which carries the
    token that promotion needs (none on a read-only page)."""
    versions = Versions.choose(model_base, compare)
    shown = tuple(v for v in (versions.candidate, versions.baseline) if v is not None)
    serving = ServeConfig(model_base=model_base, host="127.0.0.1", rest_port=0, grpc_port=0,
                          version_policy="specific", versions=shown)
    guard = Guard.read_only() if read_only or versions.baseline is None else Guard.new()
    with model_server(serving) as server:
        document = examples_document(examples, server.manager.name, versions, not guard.refuses_all)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="whatif-page", daemon=True)
        thread.start()
        runner = web.AppRunner(app(document, server.rest_url, versions, guard), access_log=None)
        try:
            asyncio.run_coroutine_threadsafe(_check_readable(document, server.rest_url), loop).result()
            asyncio.run_coroutine_threadsafe(runner.setup(), loop).result()
            asyncio.run_coroutine_threadsafe(web.TCPSite(runner, host, port).start(), loop).result()
            yield f"http://{host}:{runner.addresses[0][1]}/{guard.query}"
        finally:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)


async def _check_readable(document: PageDocument, model_url: str) -> None:
    """Each model answers the first test example, with as many classes as the examples' label has: else one
    clear error before the page opens (examples of another model, or models of other tasks)."""
    first = {f.name: _pixels(document.rows[0][f.name]) if f.image else document.rows[0][f.name]
             for f in document.features}
    for model in document.models:
        try:
            [answer] = await _predict(model_url, model.predict, [first])
        except WhatIfError as e:
            raise TfpipeError(f"{model.shown}: cannot read these examples ({e})") from None
        width = len(answer.get("probabilities", ())) if document.classes else 0
        if (width != len(document.classes)) if document.classes else "predictions" not in answer:
            raise TfpipeError(f"{model.shown}: answers {width or 'a number'} where the examples' label "
                              f"{document.label!r} has {len(document.classes) or 'a number'} classes: "
                              "the model and the examples (or the two models) have different tasks or classes")


def _pixels(url: str) -> list:
    """A PNG data URL's pixels as nested lists [row][column][channel]."""
    image = np.asarray(Image.open(bytes_io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))
    return (image[..., None] if image.ndim == 2 else image).tolist()
