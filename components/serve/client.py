"""Clients for TF Serving's REST and gRPC APIs; they work against tfpipe's server and TF Serving alike.

    rest = RestClient("http://127.0.0.1:8501", "digits")
    rest.predict(instances=[{"image": pixels}])["predictions"]
    grpc = GrpcClient("127.0.0.1:8500", "digits")
    grpc.predict({"image": batch})["probabilities"]

Each client keeps one connection; use one per thread. Errors raise
`ServeError` with the HTTP status or gRPC code and the server's message.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    input_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from components.common.config import EXAMPLE_KEY_HEADER
from components.common.errors import TfpipeError
from components.serve.tensors import to_proto


class ServeError(TfpipeError):
    def __init__(self, code, message: str):
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class RestClient:
    def __init__(self, url: str, model: str, timeout: float = 30):
        parsed = urllib.parse.urlsplit(url)
        self.connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
        self.model = model

    def _path(self, version: int | None, label: str | None) -> str:
        suffix = f"/versions/{version}" if version is not None else f"/labels/{label}" if label else ""
        return f"/v1/models/{self.model}{suffix}"

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> dict:
        """One request on the kept connection; the decoded JSON answer.

        A kept connection the server closed while it was idle fails the next request: that one is sent again, once,
        on a new connection. A new connection that fails is an error, so that a server cutting requests is seen.
        """
        for attempt in range(2):
            kept = self.connection.sock is not None
            try:
                self.connection.request(method, path, body=body,
                                        headers={"Content-Type": "application/json", **(headers or {})})
                response = self.connection.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.connection.close()
                if attempt or not kept:
                    raise
        if response.status != 200:
            try:
                message = json.loads(data)["error"]
            except (ValueError, KeyError, TypeError):
                message = data.decode(errors="replace")
            raise ServeError(response.status, message)
        return json.loads(data)

    def predict(self, instances: list | None = None, inputs=None, signature: str = "", version: int | None = None,
                label: str | None = None, example_keys: list[str] | None = None) -> dict:
        """`example_keys`: the examples' keys, sent in the X-Example-Key header for the request log."""
        body = {"instances": instances} if instances is not None else {"inputs": inputs}
        if signature:
            body["signature_name"] = signature
        return self.request("POST", f"{self._path(version, label)}:predict", json.dumps(body).encode(),
                            _key_header(example_keys))

    def classify(self, examples: list[dict], context: dict | None = None, signature: str = "classification",
                 version: int | None = None, example_keys: list[str] | None = None) -> list:
        body = {"signature_name": signature, "examples": examples, **({"context": context} if context else {})}
        return self.request("POST", f"{self._path(version, None)}:classify", json.dumps(body).encode(),
                            _key_header(example_keys))["results"]

    def regress(self, examples: list[dict], signature: str = "regression", version: int | None = None) -> list:
        body = {"signature_name": signature, "examples": examples}
        return self.request("POST", f"{self._path(version, None)}:regress", json.dumps(body).encode())["results"]

    def status(self, version: int | None = None, label: str | None = None) -> dict:
        return self.request("GET", self._path(version, label))

    def metadata(self, version: int | None = None) -> dict:
        return self.request("GET", f"{self._path(version, None)}/metadata")

    def close(self) -> None:
        self.connection.close()


class GrpcClient:
    def __init__(self, target: str, model: str, timeout: float = 30, max_message_bytes: int = 64 << 20):
        self.channel = grpc.insecure_channel(target, options=[("grpc.max_send_message_length", max_message_bytes),
                                                              ("grpc.max_receive_message_length", max_message_bytes)])
        self.predictions = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)
        self.model, self.timeout = model, timeout

    def _spec(self, spec, signature: str = "", version: int | None = None, label: str | None = None) -> None:
        spec.name = self.model
        spec.signature_name = signature
        if version is not None:
            spec.version.value = version
        elif label:
            spec.version_label = label

    def _call(self, method, request, metadata=None):
        try:
            return method(request, timeout=self.timeout, metadata=metadata)
        except grpc.RpcError as e:
            raise ServeError(e.code().name, e.details()) from None

    def predict(self, inputs: dict[str, np.ndarray], signature: str = "serving_default", version: int | None = None,
                label: str | None = None, proto=to_proto, example_keys: list[str] | None = None
                ) -> dict[str, np.ndarray]:
        """`example_keys`: the examples' keys, sent as x-example-key metadata for the request log."""
        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, signature, version, label)
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(proto(np.asarray(value)))
        response = self._call(self.predictions.Predict, request, _key_metadata(example_keys))
        return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}

    def _input(self, examples: list) -> input_pb2.Input:
        parsed = [tf.train.Example.FromString(e) if isinstance(e, bytes) else e for e in examples]
        return input_pb2.Input(example_list=input_pb2.ExampleList(examples=parsed))

    def classify(self, examples: list, signature: str = "classification", version: int | None = None,
                 example_keys: list[str] | None = None) -> list:
        request = classification_pb2.ClassificationRequest(input=self._input(examples))
        self._spec(request.model_spec, signature, version)
        response = self._call(self.predictions.Classify, request, _key_metadata(example_keys))
        return [[(c.label, c.score) for c in row.classes] for row in response.result.classifications]

    def regress(self, examples: list, signature: str = "regression", version: int | None = None) -> list[float]:
        request = regression_pb2.RegressionRequest(input=self._input(examples))
        self._spec(request.model_spec, signature, version)
        return [r.value for r in self._call(self.predictions.Regress, request).result.regressions]

    def status(self, version: int | None = None) -> get_model_status_pb2.GetModelStatusResponse:
        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec, version=version)
        return self._call(self.models.GetModelStatus, request)

    def metadata(self, version: int | None = None) -> get_model_metadata_pb2.SignatureDefMap:
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(request.model_spec, version=version)
        response = self._call(self.predictions.GetModelMetadata, request)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)
        return signatures

    def close(self) -> None:
        self.channel.close()


def _key_header(keys: list[str] | None) -> dict | None:
    """The examples' keys for the server's request log (components.serve.example_keys), as REST sends them."""
    return {EXAMPLE_KEY_HEADER: ",".join(keys)} if keys is not None else None


def _key_metadata(keys: list[str] | None) -> list | None:
    """The same as gRPC metadata."""
    return [(EXAMPLE_KEY_HEADER.lower(), ",".join(keys))] if keys is not None else None
