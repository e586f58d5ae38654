"""IPython and Jupyter: ``%autoawait tether`` runs a cell's top-level
``await`` under `tether.run`.

IPython picks the function that runs a cell's coroutine from its shell's
``loop_runner_map`` by name. `register_runner` adds tether's there; it is
called when `tether` is imported inside a running IPython (so ``import
tether`` then ``%autoawait tether`` works) and by ``%load_ext tether``.
IPython is never imported by tether: it is looked up in `sys.modules`.

Each cell runs in a run of its own, as IPython's trio integration does:
tasks started in a cell's nursery must finish within that cell.
"""

from __future__ import annotations

import sys
from collections.abc import Coroutine
from typing import Any

from ._core import run

#: The name to give ``%autoawait``.
RUNNER_NAME = "tether"


def autoawait_runner(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a cell's coroutine to completion in a new tether run and return
    its result (what IPython calls a loop runner). Ctrl-C interrupts the
    cell as it would interrupt `tether.run`."""

    async def cell() -> Any:
        return await coro

    return run(cell)


def register_runner(shell: Any) -> None:
    """Make ``%autoawait tether`` available in `shell` (an IPython
    ``InteractiveShell``)."""
    runners = getattr(shell, "loop_runner_map", None)
    if isinstance(runners, dict):
        # (runner, whether autoawait is on), as IPython's own entries.
        runners[RUNNER_NAME] = (autoawait_runner, True)


def register_if_running() -> None:
    """Called by ``import tether``: register the runner with the IPython
    shell this code runs in, if any."""
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    shell = get_ipython() if get_ipython is not None else None
    if shell is not None:
        register_runner(shell)


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext tether``: register the runner and switch autoawait to
    it."""
    register_runner(shell)
    shell.loop_runner, shell.autoawait = shell.loop_runner_map[RUNNER_NAME]
