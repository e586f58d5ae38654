import os
import socket

import pytest
from hypothesis import HealthCheck, settings

# CI runs the same examples every time (derandomize) so that a failure is
# reproducible from the log; locally, hypothesis explores freely.
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture
def pair():
    """Two connected non-blocking sockets (a socketpair), closed afterwards."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()
