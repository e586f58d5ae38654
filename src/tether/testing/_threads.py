"""Test helpers for code that uses `tether.to_thread`: how many
`to_thread.run_sync` calls are waiting for their worker thread, and a way to
wait until there are none.
"""

from __future__ import annotations

from .._threads import active_threads
from ..lowlevel import checkpoint


async def wait_all_threads_completed() -> None:
    """Wait until no `tether.to_thread.run_sync` call of this run is waiting
    for its worker thread.

    Together with `wait_all_tasks_blocked` this lets a test wait for a
    program that hands work to threads to settle::

        while True:
            await tether.testing.wait_all_threads_completed()
            await tether.testing.wait_all_tasks_blocked()
            if tether.testing.active_thread_count() == 0:
                break

    A call abandoned by cancellation (``abandon_on_cancel=True``) stops
    counting when it is abandoned, even though its thread may still run.

    Cancellation: a checkpoint, even when no thread is running; cancellable
    while waiting.
    """
    await checkpoint()
    active = active_threads()
    while active.count:
        await active.all_done().wait()


def active_thread_count() -> int:
    """The number of `tether.to_thread.run_sync` calls of this run that are
    waiting for their worker thread (see `wait_all_threads_completed`).
    Not a checkpoint."""
    return active_threads().count
