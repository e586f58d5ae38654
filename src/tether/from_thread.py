"""Get back into a tether run from another thread.

From a thread started by `tether.to_thread.run_sync` these find their run by
themselves; from any other thread pass ``tether_token=`` (see
`tether.lowlevel.current_tether_token`). They block the calling thread, so
calling them from the run's own thread is an error.
"""

from ._threads import from_thread_check_cancelled as check_cancelled
from ._threads import from_thread_run as run
from ._threads import from_thread_run_sync as run_sync

__all__ = ["check_cancelled", "run", "run_sync"]
