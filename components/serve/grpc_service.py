"""TF Serving's gRPC API with the tensorflow-serving-api stubs, on grpc.aio.

PredictionService: Predict, Classify, Regress, GetModelMetadata.
ModelService: GetModelStatus. Answers fill the typed tensor fields. Inputs
are checked as REST's are (components.serve.values); a large request's
conversion and a large answer run on the offload threads.

The arrangement is grpc.aio on the REST front end's uvloop loop, the
fastest grpcio offers here (benchmarks/peers.py's one-image predicts, 2
cores): a synchronous `grpc.server` on a thread pool, its handlers handing
each request to the batcher on the loop, answered 0.67x the requests/s at
twice the CPU per request; `grpc.http2.bdp_probe` off and
`grpc.optimization_target` "throughput" changed nothing measurable; and
`so_reuseport` would split the traffic, and the batches, between processes
that each load the model. What bounds it is grpc.aio's own work per call on
the loop's thread: it starts the core's batches of operations holding the
interpreter lock, so the answer's `sendmsg` and the wakeup of the core's
poller are paid there, and a handler that answers nothing already costs
about 0.14 ms of CPU per call (REST: a whole predict about 0.2 ms): 0.083-0.096
ms on the loop's thread and 0.05-0.08 ms on the core's poller and event
engine threads, at 5,900-7,200 calls/s from h2load at 32 and 128
connections. grpclib (gRPC on asyncio with the pure-Python `h2`), the other
maintained server, measured slower with the same empty handler: 0.19-0.25 ms
on the loop's thread, 3,500-4,500 calls/s.
"""

from __future__ import annotations

import math
import time

import grpc
import numpy as np
from google.protobuf import any_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
    status_pb2,
)

from components.common.config import ServeConfig
from components.common.signatures import CLASSIFY_METHOD, REGRESS_METHOD
from components.serve import answers, example_keys, request_log, service as service_lib, tensors, values
from components.serve.errors import RequestError, ServingError
from components.serve.service import Service

LARGE_VALUES = 1 << 16  # requests or answers with more values than this are converted on the offload threads
STATES = {"LOADING": get_model_status_pb2.ModelVersionStatus.LOADING,
          "AVAILABLE": get_model_status_pb2.ModelVersionStatus.AVAILABLE,
          "END": get_model_status_pb2.ModelVersionStatus.END}


def _spec(model_spec) -> tuple[str, int | None, str | None]:
    version = model_spec.version.value if model_spec.HasField("version") else None
    label = model_spec.version_label or None
    return model_spec.name, version, label


def _answered_by(response, request, servable, signature) -> None:
    """The response's model_spec: which model, version and signature answered, as TF Serving fills it."""
    response.model_spec.name = request.model_spec.name
    response.model_spec.version.value = servable.version
    response.model_spec.signature_name = signature.name


def _examples(request_input, allow_non_finite: bool, _cancelled=None) -> list[bytes]:
    """Serialized examples from an `Input` (a plain list, or a list with a context merged into each), their
    float features checked as REST's are."""
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        examples = list(request_input.example_list.examples)
    elif kind == "example_list_with_context":
        with_context = request_input.example_list_with_context
        examples = []
        for example in with_context.examples:
            merged = type(example)()
            merged.CopyFrom(with_context.context)
            merged.MergeFrom(example)
            examples.append(merged)
    else:
        raise RequestError("input: expected example_list or example_list_with_context")
    if not examples:
        raise RequestError("input: no examples")
    if not allow_non_finite:
        for i, example in enumerate(examples):
            for name, feature in example.features.feature.items():
                if feature.float_list.value:
                    values.cast(np.asarray(feature.float_list.value, dtype=np.float32), np.dtype(np.float32),
                                f"examples[{i}].{name}", allow_non_finite)
    return [e.SerializeToString() for e in examples]


def _inputs(request, signature, service: Service, key: str, _cancelled=None) -> dict[str, np.ndarray]:
    """The request's tensors, checked; inputs left out that have a default read as it, one per example. The
    example key's tensor (`key`, components.serve.example_keys) is logged with the request, not given to the
    model."""
    given = set(request.inputs) - {key}
    left_out = sorted(set(signature.inputs) - given)
    missing = [name for name in left_out if name not in signature.defaults]
    unknown = sorted(given - set(signature.inputs))
    if missing or unknown or (left_out and not given):
        raise RequestError(f"inputs: missing {missing or left_out}, unknown {unknown}; the signature takes "
                           f"{sorted(signature.inputs)}" + (f" ({sorted(signature.defaults)} may be left out when "
                                                           "another input gives the batch size)"
                                                           if signature.defaults else ""))
    arrays = {k: tensors.from_proto(v, signature.inputs[k], k, service.allow_non_finite, service.max_request_bytes,
                                    padded=k in signature.lists)
              for k, v in request.inputs.items() if k in given}
    batch = next(iter(arrays.values())).shape[:1] or (1,)
    for name in left_out:
        dtype = signature.inputs[name].dtype.as_numpy_dtype
        arrays[name] = np.zeros((*batch, 0), dtype) if name in signature.lists \
            else np.full(batch, signature.defaults[name], dtype=dtype)
    return arrays


def _keys(context, key: str, rows: int, version: int) -> request_log.Keys:
    """The example keys sent as `x-example-key` metadata, with their name (components.serve.example_keys)."""
    keys = example_keys.checked(key, None, dict(context.invocation_metadata() or ()).get(example_keys.GRPC_METADATA),
                                rows, version)
    return None if keys is None else (key, keys)


def _size(request) -> int:
    """How many values the request's tensors declare."""
    return sum(math.prod(d.size for d in t.tensor_shape.dim) for t in request.inputs.values())


def _predict_response(request, servable, signature, outputs: dict, _cancelled=None) -> predict_pb2.PredictResponse:
    wanted = list(request.output_filter) or list(outputs)
    response = predict_pb2.PredictResponse()
    _answered_by(response, request, servable, signature)
    for key in wanted:
        if key not in outputs:
            raise RequestError(f"output_filter: no output {key!r}; outputs are {sorted(outputs)}")
        tensors.to_proto(outputs[key], response.outputs[key])
    return response


class _Handler:
    def __init__(self, service: Service):
        self.service = service

    def _log(self, build, request, response, *keys) -> None:
        if self.service.request_log is not None:
            self.service.request_log.offer(build, request, response, *keys)

    async def _answer(self, api: str, context, work):
        started = time.perf_counter()
        try:
            async with self.service.deadline():
                answer = await work()
        except ServingError as e:
            self.service.observe("grpc", api, e.grpc_code, started)
            await context.abort(grpc.StatusCode[e.grpc_code], str(e))
        self.service.observe("grpc", api, "OK", started)
        return answer


class PredictionService(_Handler, prediction_service_pb2_grpc.PredictionServiceServicer):
    @staticmethod
    def _many(request) -> bool:
        """Whether a Classify or Regress request holds enough examples to be read on the offload threads."""
        kind = request.input.WhichOneof("kind")
        return kind is not None and len(getattr(request.input, kind).examples) > LARGE_VALUES // 64

    async def Predict(self, request, context):
        async def work():
            servable, signature = self.service.resolve(*_spec(request.model_spec), request.model_spec.signature_name)
            service = self.service
            key = servable.key if servable.key not in signature.inputs else ""
            arrays = await service.work(_size(request) > LARGE_VALUES, _inputs, request, signature, service, key)
            first = next(iter(arrays.values()))
            keys = _keys(context, key, first.shape[0] if first.ndim else 1, servable.version)
            outputs = await service.run(servable, signature, arrays)
            large = sum(v.size for v in outputs.values()) > LARGE_VALUES
            response = await service.work(large, _predict_response, request, servable, signature, outputs)
            self._log(request_log.predict_protos, request, response, keys)
            return response
        return await self._answer("predict", context, work)

    async def Classify(self, request, context):
        async def work():
            servable, signature = self.service.resolve(*_spec(request.model_spec),
                                                       request.model_spec.signature_name, CLASSIFY_METHOD)
            examples = await self.service.work(self._many(request), _examples, request.input,
                                               self.service.allow_non_finite)
            keys = _keys(context, servable.key, len(examples), servable.version)
            outputs = await self.service.run_examples(servable, signature, examples)
            response = classification_pb2.ClassificationResponse(result=answers.classification_result(outputs))
            _answered_by(response, request, servable, signature)
            self._log(request_log.classify_protos, request, response, keys)
            return response
        return await self._answer("classify", context, work)

    async def Regress(self, request, context):
        async def work():
            servable, signature = self.service.resolve(*_spec(request.model_spec),
                                                       request.model_spec.signature_name, REGRESS_METHOD)
            examples = await self.service.work(self._many(request), _examples, request.input,
                                               self.service.allow_non_finite)
            keys = _keys(context, servable.key, len(examples), servable.version)
            outputs = await self.service.run_examples(servable, signature, examples)
            response = regression_pb2.RegressionResponse(result=answers.regression_result(outputs))
            _answered_by(response, request, servable, signature)
            self._log(request_log.regress_protos, request, response, keys)
            return response
        return await self._answer("regress", context, work)

    async def GetModelMetadata(self, request, context):
        async def work():
            if list(request.metadata_field) != ["signature_def"]:
                raise RequestError("metadata_field: expected exactly ['signature_def']")
            servable = self.service.manager.get(*_spec(request.model_spec))
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            response.model_spec.name = request.model_spec.name
            response.model_spec.version.value = servable.version
            packed = any_pb2.Any()
            packed.Pack(get_model_metadata_pb2.SignatureDefMap(signature_def=servable.signature_defs))
            response.metadata["signature_def"].CopyFrom(packed)
            return response
        return await self._answer("metadata", context, work)


class ModelService(_Handler, model_service_pb2_grpc.ModelServiceServicer):
    async def GetModelStatus(self, request, context):
        async def work():
            response = get_model_status_pb2.GetModelStatusResponse()
            for version, state, error in service_lib.status(self.service.manager, *_spec(request.model_spec)):
                response.model_version_status.add(
                    version=version, state=STATES[state],
                    status=status_pb2.StatusProto(error_code=2 if error else 0, error_message=error))
            return response
        return await self._answer("status", context, work)


def server(service: Service, address: str, cfg: ServeConfig, max_connections: int) -> tuple[grpc.aio.Server, int]:
    """The gRPC server, not started yet, and the port it bound (a free one when `address` ends in :0).

    Clients are bounded by gRPC's core: past `max_connections` a new connection is closed at once, one idle
    (no RPC) for serve.idle_timeout_seconds is sent GOAWAY, and a connection's HTTP/2 handshake must end
    within serve.header_timeout_seconds."""
    # Without so_reuseport 0, a second server on a port in use binds too and silently shares its traffic.
    grpc_server = grpc.aio.server(options=[("grpc.max_receive_message_length", cfg.max_request_bytes),
                                           ("grpc.max_send_message_length", cfg.max_request_bytes),
                                           ("grpc.so_reuseport", 0),
                                           ("grpc.max_allowed_incoming_connections", max_connections),
                                           ("grpc.max_connection_idle_ms", int(cfg.idle_timeout_seconds * 1000)),
                                           ("grpc.server_handshake_timeout_ms",
                                            int(cfg.header_timeout_seconds * 1000))])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(service), grpc_server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(service), grpc_server)
    return grpc_server, grpc_server.add_insecure_port(address)
