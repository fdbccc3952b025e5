"""A short profile of the property-based fuzzer (tests/components/serve/fuzzing.py) against a real server."""

import pytest

from components.common.config import BatchingConfig
from components.serve.server import running
from tests.components.serve import fuzzing
from tests.components.serve.conftest import config


@pytest.mark.slow
def test_fuzzed_requests_get_no_5xx_and_every_200_is_finite_and_right(penguins_home):
    with running(config(penguins_home, request_timeout_seconds=10, batching=BatchingConfig(enabled=True))) as server:
        seen = fuzzing.fuzz(server.rest_url, server.grpc_target, penguins_home, 300, timeout=15)
        assert server.manager.ready
    assert sum(seen.values()) >= 300
    assert any(k.endswith(" 200") for k in seen)
    assert any("refused" in k for k in seen)
