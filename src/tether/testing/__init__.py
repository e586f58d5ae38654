"""Tools for testing code that runs on tether.

- `MockClock`: virtual time; ``MockClock(autojump_threshold=0)`` makes
  timeouts instant and deterministic.
- `wait_all_tasks_blocked`: let everything settle, then check.
- `Sequencer`: force tasks through a chosen order.
- `assert_checkpoints`, `assert_no_checkpoints`: check where code can be
  cancelled.
- `Schedule`, `schedules()`: explore task interleavings with hypothesis;
  a failing interleaving shrinks to the fewest decisions against the default
  order, is told step by step, and replays (``Schedule.replay("...")``).
- `tether_test`: run an async test function without the pytest plugin.
- The pytest plugin (installed with tether): ``@pytest.mark.tether`` async
  tests, async fixtures, the ``nursery``, ``autojump_clock`` and
  ``mock_clock`` fixtures, and `HangError` reports with the task tree.

For exception groups, use pytest's own ``pytest.RaisesGroup``.
"""

from .._core import wait_all_tasks_blocked
from ._checkpoints import assert_checkpoints, assert_no_checkpoints
from ._mock_clock import MockClock
from ._schedules import Schedule, schedules
from ._sequencer import Sequencer
from ._task_tree import format_task_tree
from ._tether_test import tether_test
from ._watchdog import HangError

__all__ = [
    "HangError",
    "MockClock",
    "Schedule",
    "Sequencer",
    "assert_checkpoints",
    "assert_no_checkpoints",
    "format_task_tree",
    "schedules",
    "tether_test",
    "wait_all_tasks_blocked",
]
