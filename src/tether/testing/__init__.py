"""Tools for testing code that runs on tether.

- `MockClock`: virtual time; ``MockClock(autojump_threshold=0)`` makes
  timeouts instant and deterministic.
- `wait_all_tasks_blocked`: let everything settle, then check.
- `wait_all_threads_completed`, `active_thread_count`: wait for, or count,
  `to_thread.run_sync` calls still waiting for their worker thread.
- `Sequencer`: force tasks through a chosen order.
- `assert_checkpoints`, `assert_no_checkpoints`: check where code can be
  cancelled.
- `Schedule`, `schedules()`: explore task interleavings with hypothesis;
  a failing interleaving shrinks to the fewest decisions against the default
  order, is told step by step, and replays (``Schedule.replay("...")``).
- `open_stream_to_socket_listener`: connect a test client to a listener on
  a port the kernel chose.
- `tether_test`: run an async test function without the pytest plugin.
- In-memory streams: `memory_stream_pair` and `memory_stream_one_way_pair`
  (unlimited buffering, with hooks to stall or trickle data),
  `lockstep_stream_pair` and `lockstep_stream_one_way_pair` (no buffering),
  built from `MemorySendStream`, `MemoryReceiveStream` and
  `memory_stream_pump`.
- `check_one_way_stream`, `check_two_way_stream`,
  `check_half_closeable_stream`: conformance checks for stream
  implementations.
- The pytest plugin (installed with tether): ``@pytest.mark.tether`` async
  tests, async fixtures, the ``nursery``, ``autojump_clock`` and
  ``mock_clock`` fixtures, and `HangError` reports with the task tree.

For exception groups, use pytest's own ``pytest.RaisesGroup``.
"""

from ..lowlevel import wait_all_tasks_blocked
from ._check_streams import (
    check_half_closeable_stream,
    check_one_way_stream,
    check_two_way_stream,
)
from ._checkpoints import assert_checkpoints, assert_no_checkpoints
from ._lockstep_streams import lockstep_stream_one_way_pair, lockstep_stream_pair
from ._memory_streams import (
    MemoryReceiveStream,
    MemorySendStream,
    memory_stream_one_way_pair,
    memory_stream_pair,
    memory_stream_pump,
)
from ._mock_clock import MockClock
from ._network import open_stream_to_socket_listener
from ._schedules import Schedule, schedules
from ._sequencer import Sequencer
from ._task_tree import format_task_tree
from ._tether_test import tether_test
from ._threads import active_thread_count, wait_all_threads_completed
from ._watchdog import HangError

__all__ = [
    "HangError",
    "MemoryReceiveStream",
    "MemorySendStream",
    "MockClock",
    "Schedule",
    "Sequencer",
    "active_thread_count",
    "assert_checkpoints",
    "assert_no_checkpoints",
    "check_half_closeable_stream",
    "check_one_way_stream",
    "check_two_way_stream",
    "format_task_tree",
    "lockstep_stream_one_way_pair",
    "lockstep_stream_pair",
    "memory_stream_one_way_pair",
    "memory_stream_pair",
    "memory_stream_pump",
    "open_stream_to_socket_listener",
    "schedules",
    "tether_test",
    "wait_all_tasks_blocked",
    "wait_all_threads_completed",
]
