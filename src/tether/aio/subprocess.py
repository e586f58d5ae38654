"""Subprocesses with pipes as streams: ``tether.aio.subprocess``, as
``asyncio.subprocess``.

`create_subprocess_exec` / `create_subprocess_shell` and `Process` are the
standard library's, running over the tether loop's subprocess transport
(see `_subprocess.py`): ``communicate()``, ``wait()``, ``stdin`` /
``stdout`` / ``stderr`` streams behave as in asyncio.
"""

from __future__ import annotations

from asyncio.subprocess import (
    DEVNULL,
    PIPE,
    STDOUT,
    Process,
    SubprocessStreamProtocol,
    create_subprocess_exec,
    create_subprocess_shell,
)

__all__ = [
    "DEVNULL",
    "PIPE",
    "STDOUT",
    "Process",
    "SubprocessStreamProtocol",
    "create_subprocess_exec",
    "create_subprocess_shell",
]
