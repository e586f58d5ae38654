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


@pytest.fixture
def cyclic_garbage():
    """A function that calls ``fn()`` with the garbage collector off and
    returns the type names of what it left in reference cycles (what only
    the collector would free), sorted; [] when everything went by reference
    counting."""
    import gc

    def run(fn):
        enabled = gc.isenabled()
        gc.disable()
        gc.collect()
        before = len(gc.garbage)
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            fn()
            gc.collect()
            left = gc.garbage[before:]
            del gc.garbage[before:]
        finally:
            gc.set_debug(0)
            if enabled:
                gc.enable()
        return sorted(f"{type(obj).__module__}.{type(obj).__qualname__}" for obj in left)

    return run
