"""`tfpipe whatif serve`: the interactive What-If page on 127.0.0.1.

The page (`static/index.html`, plain JavaScript, no asset from the internet)
lists the test examples, edits any feature of one (the datapoint editor) and
shows the prediction change, finds its nearest counterfactual and plots
partial dependence around it. Every prediction goes through the
TF-Serving-compatible server's REST API: the page server starts one on the
model's versions and forwards `/v1/...` to it, so the page and the model
share one origin. The partial-dependence plot is drawn here, by the report's
own plotting code, so the page and the report show it alike (labelled axes, a
legend, "(missing)" for a missing value). The datapoint editor edits tabular
features, text in a text area, lists as values separated by commas; image
models have their analysis in the report (`tfpipe whatif report`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from importlib import resources

import aiohttp
from aiohttp import web

from components.common.config import ConfigError, ServeConfig, from_plain
from components.common.errors import TfpipeError
from components.common.schema import Schema
from components.common.task import task_of
from components.evaluate.step import read_test_split
from components.serve.server import running as model_server
from components.whatif.analysis import grid
from components.whatif.document import (
    EditorFeature,
    PageDocument,
    PartialDependence,
    PartialDependenceRequest,
    WhatIfError,
    nested,
)
from components.whatif.report import partial_dependence_figure

DOCUMENT = web.AppKey("document", PageDocument)
MODEL_URL = web.AppKey("model_url", str)
MAX_REQUEST_BYTES = 4 << 20


def examples_document(examples: str, model: str) -> PageDocument:
    """The test examples as rows of plain values, with what the editor needs to know of each feature."""
    schema = Schema.read(examples)
    if any(f.type == "image" for f in schema.inputs):
        raise TfpipeError(f"{examples}: the datapoint editor edits tabular features; for image models use "
                          "`tfpipe whatif report`")
    task = task_of(schema)
    test = read_test_split(examples, schema, task, 256)
    features, columns = [], {}
    for f in schema.inputs:
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
    return PageDocument(model, schema.label, task.classes, tuple(features), rows)


def _plain(value, kind: str):
    """A value as the page shows and sends it: text for bytes, floats to 6 digits (no float32 noise)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return float(f"{value:.6g}") if kind == "float" else value.item()


def app(document: PageDocument, model_url: str) -> web.Application:
    application = web.Application(client_max_size=MAX_REQUEST_BYTES)
    application[DOCUMENT], application[MODEL_URL] = document, model_url
    application.router.add_get("/", _index)
    application.router.add_get("/api/examples", _examples)
    application.router.add_post("/api/partial-dependence", _partial_dependence)
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


async def _partial_dependence(request: web.Request) -> web.Response:
    """One example's predictions as one feature sweeps its values, as the report's plot (SVG) or an error."""
    document = request.app[DOCUMENT]
    try:
        asked = from_plain(PartialDependenceRequest, await request.json(), "partial dependence request")
        feature = document.feature(asked.feature)
        if feature.text or feature.list:
            raise WhatIfError(f"{feature.name!r} is {'text' if feature.text else 'a list'}: partial dependence "
                              f"sweeps a number or a category over its values, and it has no such values")
        sweep = feature.grid if feature.numeric else feature.vocabulary
        answers = await _predict(request.app, [{**asked.row, feature.name: v} for v in sweep])
    except (ConfigError, WhatIfError, ValueError) as e:
        return web.json_response({"error": str(e)}, status=400)
    outputs = [p["probabilities"] if document.classes else [p["predictions"]] for p in answers]
    curve = PartialDependence(feature.name, feature.numeric, sweep, nested(outputs))
    svg = await asyncio.to_thread(partial_dependence_figure, curve, document.classes, document.label,
                                  asked.row.get(feature.name))
    return web.json_response({"svg": svg})


async def _predict(application: web.Application, instances: list[dict]) -> list[dict]:
    """The model server's row-format predictions, or a WhatIfError with what it answered instead."""
    url = f"{application[MODEL_URL]}/v1/models/{application[DOCUMENT].model}:predict"
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json={"instances": instances}) as answer:
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
def running(model_base: str, examples: str, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """The model server and the page server, on background threads; yields the page's URL."""
    with model_server(ServeConfig(model_base=model_base, host="127.0.0.1", rest_port=0, grpc_port=0)) as server:
        document = examples_document(examples, server.manager.name)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="whatif-page", daemon=True)
        thread.start()
        runner = web.AppRunner(app(document, server.rest_url), access_log=None)
        try:
            asyncio.run_coroutine_threadsafe(runner.setup(), loop).result()
            asyncio.run_coroutine_threadsafe(web.TCPSite(runner, host, port).start(), loop).result()
            yield f"http://{host}:{runner.addresses[0][1]}/"
        finally:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
