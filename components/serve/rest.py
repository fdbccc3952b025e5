"""TF Serving's REST API on aiohttp.

    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]            status
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata   signature defs
    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict    instances | inputs
    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:classify   examples, context
    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:regress    examples, context
    GET  /healthz  /readyz  /monitoring/prometheus/metrics

Errors answer `{"error": "..."}` with a 4xx code; a body declared over the
size limit gets 413 before it is read (one that turns out larger, while it
is read), and one that does not arrive within `serve.body_timeout_seconds`
408. An answer that leaves its request's body unread, and every answer while
the server drains, closes the connection. Bodies are parsed by
components.serve.json_body; a large one is parsed, checked and converted on
the offload threads, and a large answer written there, so that the event
loop keeps answering everyone else. Answers go through orjson; NaN and
Infinity (TF Serving writes them; orjson writes null), only present with
`serve.allow_non_finite`, take the standard library's path.
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

from components.common.config import EXAMPLE_KEY_HEADER
from components.common.signatures import CLASSIFY_METHOD, PREDICT_METHOD, REGRESS_METHOD
from components.serve import (
    answers,
    connections,
    example_keys,
    json_body,
    request_log,
    service as service_lib,
    tensors,
)
from components.serve.errors import NotFound, RequestError, ServingError, TooLarge
from components.serve.service import Service

PATH = re.compile(r"(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
                  r"(?::(?P<method>predict|classify|regress)|/(?P<metadata>metadata))?")
SERVICE = web.AppKey("service", Service)
LARGE_ANSWER_ROWS = 1024  # answers with more rows are written on the offload threads


def app(service: Service, max_request_bytes: int) -> web.Application:
    application = web.Application(client_max_size=max_request_bytes, middlewares=[_guarded])
    application[SERVICE] = service
    application.router.add_get("/healthz", _healthy)
    application.router.add_get("/readyz", _ready)
    application.router.add_get("/monitoring/prometheus/metrics", _metrics)
    application.router.add_route("*", "/v1/models/{path:.+}", _model)
    return application


@web.middleware
async def _guarded(request: web.Request, handler):
    """Tells the connection's guard (components.serve.connections) when a request is in a handler; closes the
    connection after an answer that left the body unread, or while draining; aiohttp's own 4xx answers (405,
    413, ...) in TF Serving's `{"error": ...}` form."""
    transport = request.transport
    guard = transport.get_protocol() if transport is not None else None
    if not isinstance(guard, connections.Guard):
        guard = None
    else:
        guard.started()
    try:
        try:
            response = await handler(request)
        except web.HTTPException as e:
            if e.status < 400:
                raise
            response = web.json_response({"error": e.text or e.reason}, status=e.status)
    except BaseException:
        if guard is not None:
            guard.finished(keep_alive=False)
        raise
    if request.app[SERVICE].draining or not request.content.at_eof():
        response.force_close()
    if guard is not None:
        guard.finished(response.keep_alive is not False)
    return response


async def _healthy(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _ready(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    ready = service.manager.ready and not service.draining
    return web.json_response({"ready": ready, **({"draining": True} if service.draining else {})},
                             status=200 if ready else 503)


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
            answer = _dumps(_status(service, name, version, label))
        elif api == "metadata":
            answer = _dumps(_metadata(service, name, version, label))
        else:
            raw = await _body(service, request)
            async with service.deadline():
                answer = await _infer(service, api, name, version, label, raw,
                                      request.headers.get(EXAMPLE_KEY_HEADER))
        service.observe("rest", api, "200", started)
        return web.Response(body=answer, content_type="application/json")
    except ServingError as e:
        service.observe("rest", api, str(e.http_status), started)
        return web.json_response({"error": str(e)}, status=e.http_status)


async def _body(service: Service, request: web.Request) -> bytes:
    """The request's body: 413 at once when its declared length is over the limit, 408 when it stalls."""
    declared = request.content_length
    if declared is not None and declared > service.max_request_bytes:
        raise TooLarge(f"request body: {declared} bytes declared (Content-Length), over the server's limit of "
                       f"{service.max_request_bytes} (serve.max_request_bytes)")
    async with service.deadline(reading=True):
        return await request.read()


async def _infer(service: Service, api: str, name: str, version, label, raw: bytes, header: str | None) -> bytes:
    """Decode and check (offloaded when large), run, and write the answer (offloaded when large)."""
    method = {"predict": PREDICT_METHOD, "classify": CLASSIFY_METHOD, "regress": REGRESS_METHOD}[api]
    servable, signature, inputs, keys = await service.work(len(raw) > json_body.INLINE_BYTES, _decode, service, raw,
                                                           (name, version, label), method, header)
    model = (name, version, label)
    if api == "predict":
        arrays, row_format = inputs
        outputs = await service.run(servable, signature, arrays)
        answer = await service.work(len(next(iter(outputs.values()))) > LARGE_ANSWER_ROWS, _predict_answer,
                                    outputs, row_format)
        if service.request_log is not None:
            service.request_log.offer(request_log.predict_arrays, model, signature.name, servable.version, arrays,
                                      outputs, keys)
        return answer
    outputs = await service.run_examples(servable, signature, inputs)
    answer = await service.work(len(inputs) > LARGE_ANSWER_ROWS, _examples_answer, api, outputs)
    if service.request_log is not None:
        build = request_log.classify_examples if api == "classify" else request_log.regress_examples
        service.request_log.offer(build, model, signature.name, servable.version, inputs, outputs, keys)
    return answer


def _decode(service: Service, raw: bytes, model: tuple, method: str, header: str | None, cancelled):
    """(servable, signature, inputs, keys): the body parsed once, its signature found, every input checked, and
    the example keys to log (components.serve.example_keys) as (their name, the keys) when it has them."""
    body = json_body.parse_large(raw, cancelled) if len(raw) > json_body.INLINE_BYTES else json_body.parse(raw)
    signature_name = body.get("signature_name", "") if isinstance(body, dict) else ""
    if not isinstance(signature_name, str):
        raise RequestError("signature_name: expected a string")
    servable, signature = service.resolve(*model, signature_name, method)
    key = servable.key if servable.key not in signature.inputs else ""
    if method == PREDICT_METHOD:
        body, given = example_keys.split(body, key)
        inputs = tensors.predict_inputs(body, signature, service.allow_non_finite)
        first = next(iter(inputs[0].values()))
        rows = first.shape[0] if first.ndim else 1
    else:
        inputs, given = tensors.examples_from_json(body, service.allow_non_finite), None
        rows = len(inputs)
    keys = example_keys.checked(key, given, header, rows, servable.version)
    return servable, signature, inputs, None if keys is None else (key, keys)


def _predict_answer(outputs: dict, row_format: bool, _cancelled) -> bytes:
    return _dumps(tensors.predict_response(outputs, row_format))


def _examples_answer(api: str, outputs: dict, _cancelled) -> bytes:
    if api == "classify":
        return _dumps({"results": [[[c, s] for c, s in row] for row in answers.classes(outputs)]})
    return _dumps({"results": answers.regressions(outputs)})


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
