"""TF Serving's gRPC API with the tensorflow-serving-api stubs, on grpc.aio.

PredictionService: Predict, Classify, Regress, GetModelMetadata.
ModelService: GetModelStatus. Answers fill the typed tensor fields.
"""

from __future__ import annotations

import time

import grpc
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

from components.common.signatures import CLASSIFY_METHOD, REGRESS_METHOD
from components.serve import service as service_lib, tensors
from components.serve.batching import Overloaded
from components.serve.models import NotFound
from components.serve.service import Service, Timeout
from components.serve.tensors import RequestError

CODES = {RequestError: grpc.StatusCode.INVALID_ARGUMENT, NotFound: grpc.StatusCode.NOT_FOUND,
         Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED, Timeout: grpc.StatusCode.DEADLINE_EXCEEDED}
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


def _examples(request_input) -> list[bytes]:
    """Serialized examples from an `Input` (a plain list, or a list with a context merged into each)."""
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
    return [e.SerializeToString() for e in examples]


class _Handler:
    def __init__(self, service: Service):
        self.service = service

    async def _answer(self, api: str, context, work):
        started = time.perf_counter()
        try:
            answer = await work()
        except (RequestError, NotFound, Overloaded, Timeout) as e:
            code = CODES[type(e)]
            self.service.observe("grpc", api, code.name, started)
            await context.abort(code, str(e))
        self.service.observe("grpc", api, "OK", started)
        return answer


class PredictionService(_Handler, prediction_service_pb2_grpc.PredictionServiceServicer):
    async def Predict(self, request, context):
        async def work():
            servable, signature = self.service.resolve(*_spec(request.model_spec), request.model_spec.signature_name)
            missing = sorted(set(signature.inputs) - set(request.inputs))
            unknown = sorted(set(request.inputs) - set(signature.inputs))
            if missing or unknown:
                raise RequestError(f"inputs: missing {missing}, unknown {unknown}; the signature takes "
                                   f"{sorted(signature.inputs)}")
            arrays = {k: tensors.from_proto(v, signature.inputs[k], k) for k, v in request.inputs.items()}
            outputs = await self.service.run(servable, signature, arrays)
            wanted = list(request.output_filter) or list(outputs)
            response = predict_pb2.PredictResponse()
            _answered_by(response, request, servable, signature)
            for key in wanted:
                if key not in outputs:
                    raise RequestError(f"output_filter: no output {key!r}; outputs are {sorted(outputs)}")
                response.outputs[key].CopyFrom(tensors.to_proto(outputs[key]))
            return response
        return await self._answer("predict", context, work)

    async def Classify(self, request, context):
        async def work():
            servable, signature = self.service.resolve(*_spec(request.model_spec),
                                                       request.model_spec.signature_name, CLASSIFY_METHOD)
            rows = await self.service.classify(servable, signature, _examples(request.input))
            response = classification_pb2.ClassificationResponse()
            _answered_by(response, request, servable, signature)
            for row in rows:
                response.result.classifications.add().classes.extend(
                    classification_pb2.Class(label=c, score=s) for c, s in row)
            return response
        return await self._answer("classify", context, work)

    async def Regress(self, request, context):
        async def work():
            servable, signature = self.service.resolve(*_spec(request.model_spec),
                                                       request.model_spec.signature_name, REGRESS_METHOD)
            values = await self.service.regress(servable, signature, _examples(request.input))
            response = regression_pb2.RegressionResponse()
            _answered_by(response, request, servable, signature)
            response.result.regressions.extend(regression_pb2.Regression(value=v) for v in values)
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


def server(service: Service, address: str, max_request_bytes: int) -> tuple[grpc.aio.Server, int]:
    """The gRPC server, not started yet, and the port it bound (a free one when `address` ends in :0)."""
    # Without so_reuseport 0, a second server on a port in use binds too and silently shares its traffic.
    grpc_server = grpc.aio.server(options=[("grpc.max_receive_message_length", max_request_bytes),
                                           ("grpc.max_send_message_length", max_request_bytes),
                                           ("grpc.so_reuseport", 0)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(service), grpc_server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(service), grpc_server)
    return grpc_server, grpc_server.add_insecure_port(address)
