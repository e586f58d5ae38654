"""Run asyncio programs with the standard library or with tether.aio.

``python dual_run.py asyncio|tether|policy PROGRAM...`` executes each program
(in this one process, one after the other) and prints a JSON object mapping
each program's file name to its standard output and its outcome (how the
module ended: ``ok`` or the exception type and message). In ``tether`` mode
every ``import asyncio`` line of the program is replaced by
``from tether import aio as asyncio``, which is all a user should have to
change. In ``policy`` mode the program is unmodified (the standard library's
asyncio, all of it) but runs on tether loops, through
``tether.aio.EventLoopPolicy``. Used by test_dual_run.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys


def run_program(path: str, mode: str) -> dict[str, str]:
    with open(path) as f:
        source = f.read()
    if mode == "tether":
        source = re.sub(
            r"^import asyncio$", "from tether import aio as asyncio", source, flags=re.M
        )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            exec(compile(source, path, "exec"), {"__name__": "__main__", "__file__": path})
            outcome = "ok"
        except BaseException as exc:  # reported, not handled
            outcome = f"{type(exc).__name__}: {exc}"
    return {"stdout": out.getvalue(), "outcome": outcome}


def main() -> None:
    mode = sys.argv[1]
    if mode == "policy":
        import asyncio

        from tether import aio

        asyncio.set_event_loop_policy(aio.EventLoopPolicy())
    results = {os.path.basename(path): run_program(path, mode) for path in sys.argv[2:]}
    sys.stdout.write(json.dumps(results))


if __name__ == "__main__":
    main()
