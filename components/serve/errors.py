"""The ways a request can fail that are the client's to fix or retry, each with TF Serving's codes."""

from __future__ import annotations

from components.common.errors import TfpipeError


class ServingError(TfpipeError):
    http_status = 500
    grpc_code = "UNKNOWN"


class RequestError(ServingError):
    """A request that cannot be served as sent."""
    http_status, grpc_code = 400, "INVALID_ARGUMENT"


class NotFound(ServingError):
    """No such model, version, label or signature."""
    http_status, grpc_code = 404, "NOT_FOUND"


class TooLarge(ServingError):
    """A request over serve.max_request_bytes."""
    http_status, grpc_code = 413, "RESOURCE_EXHAUSTED"


class Overloaded(ServingError):
    """A queue is full; retry later."""
    http_status, grpc_code = 429, "RESOURCE_EXHAUSTED"


class Timeout(ServingError):
    """The request ran past the server's request timeout."""
    http_status, grpc_code = 504, "DEADLINE_EXCEEDED"


class ClientTimeout(ServingError):
    """The client did not send its request in time: the stall is the client's, never a server error (RFC 9110)."""
    http_status, grpc_code = 408, "DEADLINE_EXCEEDED"


class ShuttingDown(ServingError):
    """The server is stopping and the request was still running at the end of its drain; retry elsewhere."""
    http_status, grpc_code = 503, "UNAVAILABLE"
