"""TF Serving's REST API on aiohttp.

    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]            status
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata   signature defs
    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict    instances | inputs
    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:classify   examples, context
    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:regress    examples, context
    GET  /healthz  /readyz  /monitoring/prometheus/metrics

Errors answer `{"error": "..."}` with a 4xx code; bodies over the size limit
get 413 from aiohttp before they are read. JSON goes through orjson (parsing
and writing are a large share of a request's cost); NaN and Infinity, which
TF Serving's JSON accepts and writes but orjson does not, take the standard
library's path.
"""

from __future__ import annotations

import json
import re
import time

import orjson
from aiohttp import web
from google.protobuf import json_format
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from tensorflow_serving.apis import get_model_metadata_pb2

from components.common.signatures import CLASSIFY_METHOD, REGRESS_METHOD
from components.serve import service as service_lib, tensors
from components.serve.batching import Overloaded
from components.serve.models import NotFound
from components.serve.service import Service, Timeout
from components.serve.tensors import RequestError

PATH = re.compile(r"(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
                  r"(?::(?P<method>predict|classify|regress)|/(?P<metadata>metadata))?")
STATUS = {RequestError: 400, NotFound: 404, Overloaded: 429, Timeout: 504}
SERVICE = web.AppKey("service", Service)


def app(service: Service, max_request_bytes: int) -> web.Application:
    application = web.Application(client_max_size=max_request_bytes, middlewares=[_json_errors])
    application[SERVICE] = service
    application.router.add_get("/healthz", _healthy)
    application.router.add_get("/readyz", _ready)
    application.router.add_get("/monitoring/prometheus/metrics", _metrics)
    application.router.add_route("*", "/v1/models/{path:.+}", _model)
    return application


@web.middleware
async def _json_errors(request: web.Request, handler):
    """aiohttp's own 4xx answers (405, 413, ...) in TF Serving's `{"error": ...}` form."""
    try:
        return await handler(request)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return web.json_response({"error": e.text or e.reason}, status=e.status)


async def _healthy(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _ready(request: web.Request) -> web.Response:
    ready = request.app[SERVICE].manager.ready
    return web.json_response({"ready": ready}, status=200 if ready else 503)


async def _metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[SERVICE].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _model(request: web.Request) -> web.Response:
    service: Service = request.app[SERVICE]
    started = time.perf_counter()
    match = PATH.fullmatch(request.match_info["path"])
    api = (match and (match["method"] or ("metadata" if match["metadata"] else "status"))) or "unknown"
    try:
        if match is None:
            raise NotFound(f"no such resource: {request.path}")
        wants_post = match["method"] is not None
        if request.method != ("POST" if wants_post else "GET"):
            raise web.HTTPMethodNotAllowed(request.method, ["POST" if wants_post else "GET"])
        name, label = match["name"], match["label"]
        version = int(match["version"]) if match["version"] else None
        if api == "status":
            answer = _status(service, name, version, label)
        elif api == "metadata":
            answer = _metadata(service, name, version, label)
        else:
            answer = await _infer(service, api, name, version, label, await _json(request))
        service.observe("rest", api, "200", started)
        return web.json_bytes_response(answer, dumps=_dumps)
    except (RequestError, NotFound, Overloaded, Timeout) as e:
        code = STATUS[type(e)]
        service.observe("rest", api, str(code), started)
        return web.json_response({"error": str(e)}, status=code)


async def _json(request: web.Request) -> dict:
    body = await request.read()
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body)  # NaN, Infinity and integers past 64 bits
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RequestError(f"request body: not valid JSON ({e})") from None


async def _infer(service: Service, api: str, name: str, version, label, body) -> dict:
    signature_name = body.get("signature_name", "") if isinstance(body, dict) else ""
    if not isinstance(signature_name, str):
        raise RequestError("signature_name: expected a string")
    if api == "predict":
        servable, signature = service.resolve(name, version, label, signature_name)
        inputs, row_format = tensors.predict_inputs(body, signature.inputs)
        return tensors.predict_response(await service.run(servable, signature, inputs), row_format)
    method = CLASSIFY_METHOD if api == "classify" else REGRESS_METHOD
    servable, signature = service.resolve(name, version, label, signature_name, method)
    examples = tensors.examples_from_json(body)
    if api == "classify":
        return {"results": [[[c, s] for c, s in row] for row in await service.classify(servable, signature, examples)]}
    return {"results": await service.regress(servable, signature, examples)}


def _status(service: Service, name: str, version, label) -> dict:
    return {"model_version_status": [
        {"version": str(v), "state": state,
         "status": {"error_code": "UNKNOWN" if error else "OK", "error_message": error}}
        for v, state, error in service_lib.status(service.manager, name, version, label)]}


def _metadata(service: Service, name: str, version, label) -> dict:
    servable = service.manager.get(name, version, label)
    signatures = get_model_metadata_pb2.SignatureDefMap(signature_def=servable.signature_defs)
    return {"model_spec": {"name": name, "signature_name": "", "version": str(servable.version)},
            "metadata": {"signature_def": json_format.MessageToDict(signatures, preserving_proto_field_name=True)}}


def _dumps(value) -> bytes:
    body = orjson.dumps(value)
    if b"null" in body:  # orjson writes NaN and Infinity as null; the standard library writes them as TF Serving does
        return json.dumps(value, separators=(",", ":")).encode()
    return body
