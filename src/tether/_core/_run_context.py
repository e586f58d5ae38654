"""Per-thread pointer to the running kernel and the task it is stepping.

A thread-local, so that a second thread can run its own `tether.run` at the
same time, and so that worker threads can ask whether they are inside a run.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._run import Runner
    from ._task import Task


class RunContext(threading.local):
    runner: Runner
    task: Task


GLOBAL_RUN_CONTEXT = RunContext()
