"""Run Tornado's own test suite on tether's asyncio loop and on the standard
library's, and list the tests that fail only on tether's.

Not a pytest module: a script. Tornado's tests ship inside the package
(``tornado.test``), so all it needs is an interpreter with tornado and
tether's dependencies installed, in a virtualenv of its own::

    python3 -m venv /tmp/tornado-venv
    /tmp/tornado-venv/bin/pip install tornado outcome sortedcontainers idna
    /tmp/tornado-venv/bin/python tests/conformance/run_tornado.py

The script runs the suite twice, each in a child process under a time
limit: once as Tornado runs it, and once with tether's policy installed
first (``asyncio.set_event_loop_policy(tether.aio.EventLoopPolicy())``),
which is where Tornado's ``IOLoop`` and its tests get their loops. The child
counts the loops made of each class, so that the report shows the suite
really ran on tether's loop. (A few of Tornado's tests install a policy of
their own, or start child processes that use the stock loop.)

Options: ``--timeout S`` per run (default 600), ``--python PATH`` (the
interpreter with tornado; default this one), ``--src DIR`` (the tether
``src`` directory to test; default this checkout's), and any Tornado test module
names to run only those. The closing line is ``N run, N failed only on
tether's loop``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: The child: installs the policy (or not), counts loop constructions, and
#: runs Tornado's test runner with the given arguments.
_CHILD = r"""
import asyncio, atexit, collections, sys
made = collections.Counter()
def counting(init):
    def __init__(self, *args, **kwargs):
        made[type(self).__name__] += 1
        return init(self, *args, **kwargs)
    return __init__
asyncio.BaseEventLoop.__init__ = counting(asyncio.BaseEventLoop.__init__)
if sys.argv[1] == "tether":
    import tether.aio
    from tether.aio._loop_core import LoopCore
    LoopCore.__init__ = counting(LoopCore.__init__)
    asyncio.set_event_loop_policy(tether.aio.EventLoopPolicy())
atexit.register(lambda: sys.__stderr__.write(f"\nloops made: {dict(made)}\n"))
import tornado.test.runtests as runtests
# (Its unittest.main looks the default test up in __main__.)
sys.modules["__main__"].all = runtests.all
sys.argv = ["tornado.test.runtests", "--verbose", *sys.argv[2:]]
runtests.main()
"""

#: unittest's verbose lines: a test's name (its docstring's first line may
#: follow on the next line), then "... ok" or another outcome.
_NAME = re.compile(r"^\w+ \(([\w.]+)\)")
_OUTCOME = re.compile(r"\.\.\. (ok|FAIL|ERROR|skipped|expected failure|unexpected success)")


def _run(
    python: str, src: str, loop: str, modules: list[str], timeout: float
) -> tuple[dict[str, str], str]:
    """Run the suite once; return {test: outcome} and the output's tail."""
    env = dict(os.environ)
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    try:
        done = subprocess.run(
            [python, "-c", _CHILD, loop, *modules],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
        output = done.stdout + done.stderr
    except subprocess.TimeoutExpired as expired:
        output = (expired.stdout or b"").decode() + (expired.stderr or b"").decode()
        output += f"\n(stopped after {timeout:.0f} s: a test hangs)\n"
    outcomes = {}
    test = None
    for line in output.splitlines():
        named = _NAME.match(line)
        if named:
            test = named.group(1)
        result = _OUTCOME.search(line)
        if result and test is not None:
            outcomes[test] = result.group(1)
            test = None
    return outcomes, "\n".join(output.splitlines()[-6:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="tornado.test modules (default: all)")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--src", default=str(REPO / "src"), help="tether's src/ to import")
    args = parser.parse_args()
    results = {}
    for loop in ("stock", "tether"):
        outcomes, tail = _run(args.python, args.src, loop, args.modules, args.timeout)
        results[loop] = outcomes
        print(f"--- {loop} loop: {len(outcomes)} tests reported\n{tail}\n")
    stock, tether = results["stock"], results["tether"]
    bad = {"FAIL", "ERROR"}
    only_tether = sorted(
        test
        for test in stock
        if stock[test] not in bad and (tether.get(test) in bad or test not in tether)
    )
    for test in only_tether:
        print(f"failed only on tether's loop: {test} ({tether.get(test, 'did not run')})")
    print(f"{len(tether)} run, {len(only_tether)} failed only on tether's loop")
    return 1 if only_tether else 0


if __name__ == "__main__":
    raise SystemExit(main())
