"""A child process forked from inside a running tether loop.

asyncio forgets, in a forked child, the loop that was running in the parent
(the child has its own copy of the loop object, whose kernel, wakeup socket
and worker threads are the parent's or are gone), so that the child can run
loops of its own: ``ProcessPoolExecutor`` workers forked from a task that
calls ``loop.run_in_executor`` may run asyncio code. tether.aio does the
same: in the child there is no running loop, no running tether run, and no
current loop set with `set_event_loop`.
"""

from __future__ import annotations

import os

from .. import lowlevel
from ._events import forget_current_loop
from ._stdlib import set_running_loop


def _after_fork_in_child() -> None:
    set_running_loop(None)
    forget_current_loop()
    lowlevel.forget_run_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
