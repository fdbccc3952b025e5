"""A SavedModel behind NVIDIA Triton's server through PyTriton (nvidia-pytriton 0.7), dynamic batching on.

    benchmarks/peers/pytriton/.venv/bin/python benchmarks/peers/pytriton/server.py --model-dir DIR --name digits \
        --http-port 8000 --grpc-port 8001 --metrics-port 8002 [--max-batch-size 32] [--batch-timeout-micros 3000]
    benchmarks/peers/pytriton/.venv/bin/python benchmarks/peers/pytriton/server.py --grpc-request FILE --name digits

PyTriton starts the `tritonserver` binary its wheel ships and serves a Python
callable through it: here `serving_default` of the SavedModel, called with
whole batches that Triton's dynamic batcher formed. Triton speaks the Open
Inference Protocol only: `POST /v2/models/<name>/infer` (JSON) and
`inference.GRPCInferenceService/ModelInfer`. Every output is answered, as
tfpipe's server answers them. Everything binds 127.0.0.1. The second form
writes one framed ModelInferRequest (one image) for h2load and exits.
"""

from __future__ import annotations

import argparse
import os
import struct

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402
from pytriton.decorators import batch  # noqa: E402
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor  # noqa: E402
from pytriton.triton import Triton, TritonConfig  # noqa: E402
from tritonclient.grpc import service_pb2  # noqa: E402

LOOPBACK = "127.0.0.1"


def grpc_request(name: str, path: str) -> None:
    image = np.random.default_rng(0).integers(0, 255, (1, 8, 8, 1)).astype(np.uint8)
    request = service_pb2.ModelInferRequest(model_name=name, inputs=[service_pb2.ModelInferRequest.InferInputTensor(
        name="image", datatype="UINT8", shape=list(image.shape))], raw_input_contents=[image.tobytes()])
    message = request.SerializeToString()
    with open(path, "wb") as f:
        f.write(b"\0" + struct.pack(">I", len(message)) + message)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir")
    parser.add_argument("--name", default="digits")
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--metrics-port", type=int, default=8002)
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--batch-timeout-micros", type=int, default=3000)
    parser.add_argument("--grpc-request", help="write one framed ModelInferRequest to this file and exit")
    args = parser.parse_args()
    if args.grpc_request:
        grpc_request(args.name, args.grpc_request)
        return
    signature = tf.saved_model.load(args.model_dir).signatures["serving_default"]
    _, inputs = signature.structured_input_signature
    image_shape = tuple(inputs["image"].shape[1:])

    @batch
    def infer(image: np.ndarray) -> dict[str, np.ndarray]:
        outputs = signature(image=tf.constant(image, dtype=tf.uint8))
        return {"probabilities": outputs["probabilities"].numpy(),
                "class_ids": outputs["class_ids"].numpy().reshape(-1, 1),
                "classes": outputs["classes"].numpy().astype(np.bytes_).reshape(-1, 1)}

    config = TritonConfig(http_address=LOOPBACK, http_port=args.http_port, grpc_address=LOOPBACK,
                          grpc_port=args.grpc_port, metrics_address=LOOPBACK, metrics_port=args.metrics_port)
    with Triton(config=config) as triton:
        triton.bind(
            model_name=args.name, infer_func=infer,
            inputs=[Tensor(name="image", dtype=np.uint8, shape=image_shape)],
            outputs=[Tensor(name="probabilities", dtype=np.float32, shape=(-1,)),
                     Tensor(name="class_ids", dtype=np.int64, shape=(1,)),
                     Tensor(name="classes", dtype=np.bytes_, shape=(1,))],
            config=ModelConfig(max_batch_size=args.max_batch_size, batcher=DynamicBatcher(
                max_queue_delay_microseconds=args.batch_timeout_micros)))
        triton.serve()


if __name__ == "__main__":
    main()
