"""A SavedModel behind KServe's Python model server (kserve 0.21): what a user runs without the TF Serving binary.

    benchmarks/peers/kserve/.venv/bin/python benchmarks/peers/kserve/server.py --model-dir DIR --name digits \
        --http-port 8080 --grpc-port 8081
    benchmarks/peers/kserve/.venv/bin/python benchmarks/peers/kserve/server.py --grpc-request FILE --name digits

REST speaks KServe's V1 protocol, TF Serving's row format
(`POST /v1/models/<name>:predict` with `instances`, answered with
`predictions`); gRPC speaks the only protocol KServe's gRPC server has, the
Open Inference Protocol (`inference.GRPCInferenceService/ModelInfer`, the
image as raw bytes). Both answer every output of `serving_default`, as
tfpipe's server does. One process, KServe's defaults otherwise. The second
form writes one framed ModelInferRequest for h2load and exits.

kserve 0.21 binds 0.0.0.0 (uvicorn) and [::] (grpc) with no option to
change it; this wrapper moves both to 127.0.0.1, as every server in the
benchmark binds.
"""

from __future__ import annotations

import argparse
import os
import struct

import grpc
import numpy as np
import uvicorn

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import kserve  # noqa: E402
import tensorflow as tf  # noqa: E402
from kserve.protocol.grpc import grpc_predict_v2_pb2 as v2  # noqa: E402
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse  # noqa: E402

LOOPBACK = "127.0.0.1"
DATATYPES = {np.dtype(np.float32): "FP32", np.dtype(np.int64): "INT64", np.dtype(object): "BYTES"}


class SavedModel(kserve.Model):
    def __init__(self, name: str, model_dir: str):
        super().__init__(name)
        self.signature = tf.saved_model.load(model_dir).signatures["serving_default"]
        self.ready = True

    async def predict(self, payload, headers=None, response_headers=None):
        if isinstance(payload, InferRequest):
            outputs = self._run(payload.inputs[0].as_numpy())
            return InferResponse(payload.id, self.name, [
                InferOutput(k, list(v.shape), DATATYPES[v.dtype], v.tolist() if v.dtype == object else v)
                for k, v in outputs.items()])
        outputs = self._run(np.asarray([row["image"] for row in payload["instances"]], dtype=np.uint8))
        columns = {k: [x.decode() for x in v] if v.dtype == object else v.tolist() for k, v in outputs.items()}
        return {"predictions": [{k: c[i] for k, c in columns.items()} for i in range(len(payload["instances"]))]}

    def _run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        return {k: v.numpy() for k, v in self.signature(image=tf.constant(images, dtype=tf.uint8)).items()}


def on_loopback() -> None:
    """kserve's uvicorn.Config and grpc server on 127.0.0.1 instead of every interface."""
    config, server = uvicorn.Config, grpc.aio.server

    class LoopbackConfig(config):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "host": LOOPBACK})

    def loopback_server(*args, **kwargs):
        created = server(*args, **kwargs)
        add = created.add_insecure_port
        created.add_insecure_port = lambda address: add(address.replace("[::]", LOOPBACK))
        return created

    uvicorn.Config, grpc.aio.server = LoopbackConfig, loopback_server


def grpc_request(name: str, path: str) -> None:
    image = np.random.default_rng(0).integers(0, 255, (1, 8, 8, 1)).astype(np.uint8)
    request = v2.ModelInferRequest(model_name=name, inputs=[v2.ModelInferRequest.InferInputTensor(
        name="image", datatype="UINT8", shape=list(image.shape))], raw_input_contents=[image.tobytes()])
    message = request.SerializeToString()
    with open(path, "wb") as f:
        f.write(b"\0" + struct.pack(">I", len(message)) + message)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir")
    parser.add_argument("--name", default="digits")
    parser.add_argument("--http-port", type=int, default=8080)
    parser.add_argument("--grpc-port", type=int, default=8081)
    parser.add_argument("--grpc-request", help="write one framed ModelInferRequest to this file and exit")
    args = parser.parse_args()
    if args.grpc_request:
        grpc_request(args.name, args.grpc_request)
        return
    on_loopback()
    kserve.ModelServer(http_port=args.http_port, grpc_port=args.grpc_port).start([SavedModel(args.name,
                                                                                             args.model_dir)])


if __name__ == "__main__":
    main()
