"""Run blocking synchronous code in a worker thread without blocking the run.

``await tether.to_thread.run_sync(fn, *args)`` is ``fn(*args)`` moved off the
run's thread. See `run_sync` for what cancellation does to a running thread.
"""

from ._threads import current_default_thread_limiter
from ._threads import to_thread_run_sync as run_sync

__all__ = ["current_default_thread_limiter", "run_sync"]
