"""Run the asyncio half of uvloop's own test suite on tether's loop and on
the standard library's, and list the tests that fail only on tether's.

Not a pytest module: a script. uvloop's suite runs most of its tests twice,
once on uvloop (the ``Test_UV_*`` classes) and once on asyncio's own loop
(``Test_AIO_*``, built on ``uvloop._testbase.AIOTestCase``). The second half
checks loop behaviour that any asyncio loop should have, and it is what this
script runs, once as shipped and once with tether's loop in place of
asyncio's. It needs the uvloop wheel with what its tests import, in a
virtualenv of its own, and the tests from uvloop's source distribution of
the same version::

    python3 -m venv /tmp/uvloop-venv
    /tmp/uvloop-venv/bin/pip install uvloop pytest pytest-timeout pyOpenSSL \\
        psutil aiohttp outcome sortedcontainers
    /tmp/uvloop-venv/bin/pip download --no-binary :all: --no-deps \\
        "uvloop==$(/tmp/uvloop-venv/bin/python -c 'import uvloop; print(uvloop.__version__)')" \\
        -d /tmp/uvloop-sdist
    tar xzf /tmp/uvloop-sdist/uvloop-*.tar.gz -C /tmp
    /tmp/uvloop-venv/bin/python tests/conformance/run_uvloop_aio.py /tmp/uvloop-0.23.0

How tether's loop goes in: a pytest plugin, written by this script to a
temporary directory, replaces ``AIOTestCase.new_loop`` and ``new_policy``
with tether's, makes ``is_asyncio_loop`` true (it tells the tests to expect
asyncio's behaviour, which tether's loop means to have), and makes the
signal tests' child programs build tether's loop. In both runs the plugin
counts the loops made of each class, so the report shows where the tests
ran. Each run is one pytest process under a time limit, with pytest-timeout
at 60 s per test; outcomes are read from pytest's JUnit XML.

Options: ``--python PATH`` (the interpreter with uvloop; default this one),
``--src DIR`` (the tether ``src`` directory to test; default this
checkout's), ``--timeout S`` per run (default 600), and test file names
(``test_tcp.py``...) to run only those. The closing line is ``N run, N
failed only on tether's loop``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from _shared import LOOP_COUNTER, report, run_pytest, sdist_parser, summary

#: The plugin (module ``tether_uvloop_aio``): in the "tether" run it puts
#: tether's loop into uvloop's asyncio test classes; in both it counts loops.
_PLUGIN = (
    LOOP_COUNTER
    + r"""
import atexit, os, sys
import uvloop._testbase as testbase

atexit.register(lambda: sys.__stderr__.write(f"\nloops made: {dict(made)}\n"))

if os.environ["TETHER_UVLOOP_AIO"] == "tether":
    import tether.aio

    count_tether_loops()
    testbase.AIOTestCase.new_loop = lambda self: tether.aio.new_event_loop()
    testbase.AIOTestCase.new_policy = lambda self: tether.aio.EventLoopPolicy()
    testbase.AIOTestCase.is_asyncio_loop = lambda self: True
    # What the signal tests' child programs evaluate to make their loop.
    _CHILD_LOOP = "__import__('tether.aio', fromlist=['aio']).new_event_loop()"

    def pytest_collection_modifyitems(session, config, items):
        for item in items:
            cls = getattr(item, "cls", None)
            if cls is not None and issubclass(cls, testbase.AIOTestCase):
                if getattr(cls, "NEW_LOOP", None):
                    cls.NEW_LOOP = _CHILD_LOOP
"""
)


def _run(
    python: str, src: str, sdist: Path, loop: str, files: list[str], timeout: float, work: Path
) -> tuple[dict[str, str], str]:
    """Run the AIO tests once with `loop` ("asyncio" or "tether"); return
    {test: outcome} and the output's tail."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(work), src, env.get("PYTHONPATH", "")])
    env["TETHER_UVLOOP_AIO"] = loop
    junit = work / f"{loop}.xml"
    targets = [f"tests/{name}" for name in files] or ["tests"]
    command = [python, "-m", "pytest", "-p", "tether_uvloop_aio", "-p", "no:cacheprovider"]
    # (Not tether's own pytest plugin, found when --src has package metadata.)
    command += ["-p", "no:tether"]
    command += ["-k", "AIO", "--timeout=60", "-q", f"--junitxml={junit}", *targets]
    results, lines = run_pytest(command, sdist, env, timeout, junit)
    return results, "\n".join(lines[-3:])


def main() -> int:
    args = sdist_parser(__doc__.splitlines()[0], "uvloop", timeout=600).parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "tether_uvloop_aio.py").write_text(_PLUGIN)
        runs = {}
        for loop in ("asyncio", "tether"):
            results, tail = _run(
                args.python, args.src, args.sdist, loop, args.files, args.timeout, work
            )
            runs[loop] = results
            print(f"{summary(loop, results)}\n{tail}\n")
    return report(runs["asyncio"], runs["tether"])


if __name__ == "__main__":
    raise SystemExit(main())
