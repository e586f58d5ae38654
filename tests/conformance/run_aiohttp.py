"""Run aiohttp's own test suite on tether's loop and on the standard
library's, and list the tests that fail only on tether's.

Not a pytest module: a script. aiohttp's tests come with its source
distribution; they run against the installed aiohttp of the same version,
in a virtualenv of its own with what the tests need (aiohttp's
``requirements/test*.txt``; what cannot be installed is skipped by the
tests that need it)::

    python3 -m venv /tmp/aiohttp-venv
    /tmp/aiohttp-venv/bin/pip install aiohttp==3.14.5 pytest pytest-timeout \\
        pytest-mock freezegun re-assert trustme proxy.py blockbuster \\
        pytest-codspeed python-on-whales brotli aiodns gunicorn \\
        outcome sortedcontainers
    /tmp/aiohttp-venv/bin/pip download --no-binary :all: --no-deps \\
        aiohttp==3.14.5 -d /tmp/aiohttp-sdist
    tar xzf /tmp/aiohttp-sdist/aiohttp-3.14.5.tar.gz -C /tmp
    /tmp/aiohttp-venv/bin/python tests/conformance/run_aiohttp.py /tmp/aiohttp-3.14.5

The script copies the source distribution, without its ``aiohttp``
package directory (so that the tests import the installed aiohttp), into a
temporary directory, and runs the suite there twice, in chunks of test
files, each chunk one pytest process under a time limit: once as shipped,
and once with tether's policy installed at pytest's start
(``asyncio.set_event_loop_policy(tether.aio.EventLoopPolicy())``), which is
where aiohttp's test fixtures get their loops. A plugin, written by the
script, counts the loops made of each class (the report shows them) and
checks before each test that the policy is still tether's. The options are
aiohttp's own defaults without those that need pytest-xdist and coverage
(``-o addopts=``); its marker filter ``not dev_mode and not autobahn and
not internal`` is kept, and pytest-timeout stops a test after 60 s.
Outcomes are read from pytest's JUnit XML.

aiohttp's test setup turns on blockbuster (a detector of blocking calls in
the event loop) for every test. It allows some blocking calls under the
standard library's asyncio files, which it recognises by file and function
name: ``os.stat`` and ``os.unlink`` under ``create_unix_server`` and the
server's closing, for the stale socket file. In the tether run, the plugin
allows the same calls under tether's code that does the same
(``remove_stale_unix_socket``, ``_unix_cleanup``); nothing else changes.

Options: ``--python PATH`` (the interpreter with aiohttp; default this
one), ``--src DIR`` (the tether ``src`` directory to test; default this
checkout's), ``--chunks N`` (default 4), ``--timeout S`` per chunk (default
900), and test file names (``test_web_functional.py``...) to run only
those. The closing line is ``N run, N failed only on tether's loop``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from _shared import LOOP_COUNTER, report, run_pytest, sdist_parser, summary

#: The plugin (module ``tether_aiohttp_suite``): installs tether's policy in
#: the "tether" run, and counts the loops made in both.
_PLUGIN = (
    LOOP_COUNTER
    + r"""
import os

lost = collections.Counter()
TETHER = os.environ["TETHER_AIOHTTP_SUITE"] == "tether"

if TETHER:
    import contextlib

    import tether.aio

    count_tether_loops()

    try:
        import blockbuster
    except ImportError:
        blockbuster = None
    if blockbuster is not None:
        # What blockbuster allows under asyncio's own unix_events.py (by file
        # and function name), allowed under tether's code that does the same.
        _ALLOWANCES = [
            ("os.stat", "tether/aio/_sockets.py", {"remove_stale_unix_socket"}),
            ("os.stat", "tether/aio/_unix_cleanup.py", {"remember", "clean_up"}),
            ("os.unlink", "tether/aio/_unix_cleanup.py", {"clean_up"}),
        ]
        _original_ctx = blockbuster.blockbuster_ctx

        @contextlib.contextmanager
        def _blockbuster_ctx(*args, **kwargs):
            with _original_ctx(*args, **kwargs) as detector:
                for function, filename, callers in _ALLOWANCES:
                    if function in detector.functions:
                        detector.functions[function].can_block_in(filename, callers)
                yield detector

        # (aiohttp's conftest imports it from the package, after this runs.)
        blockbuster.blockbuster_ctx = _blockbuster_ctx

def pytest_configure(config):
    if TETHER:
        asyncio.set_event_loop_policy(tether.aio.EventLoopPolicy())

def pytest_runtest_setup(item):
    if TETHER and not isinstance(asyncio.get_event_loop_policy(), tether.aio.EventLoopPolicy):
        # A test replaced the policy and did not put it back.
        lost[item.nodeid] += 1
        asyncio.set_event_loop_policy(tether.aio.EventLoopPolicy())

def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"loops made: {dict(made)}")
    if lost:
        terminalreporter.write_line(f"policy replaced by: {sorted(lost)}")
"""
)

_MARKERS = "not dev_mode and not autobahn and not internal"


def _run_chunk(
    python: str,
    src: str,
    suite: Path,
    work: Path,
    loop: str,
    index: int,
    files: list[str],
    timeout: float,
) -> tuple[dict[str, str], str]:
    """Run one chunk of test files with `loop` ("asyncio" or "tether");
    return {test: outcome} and the lines of the output worth showing."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(work), src, env.get("PYTHONPATH", "")])
    env["TETHER_AIOHTTP_SUITE"] = loop
    junit = work / f"{loop}-{index}.xml"
    command = [python, "-m", "pytest", "-o", "addopts=", "-p", "tether_aiohttp_suite"]
    command += ["-p", "no:cacheprovider", "-p", "no:tether", "-m", _MARKERS, "--timeout=60", "-q"]
    command += [f"--junitxml={junit}", *(f"tests/{name}" for name in files)]
    results, lines = run_pytest(command, suite, env, timeout, junit)
    shown = [line for line in lines if line.startswith(("loops made:", "policy replaced"))]
    shown += lines[-1:]
    return results, "\n".join(f"  {line}" for line in shown)


def main() -> int:
    parser = sdist_parser(__doc__.splitlines()[0], "aiohttp", timeout=900)
    parser.add_argument("--chunks", type=int, default=4)
    args = parser.parse_args()
    tests = args.sdist / "tests"
    files = args.files or sorted(path.name for path in tests.glob("test_*.py"))
    chunks = [files[index :: args.chunks] for index in range(args.chunks)]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        suite = work / "suite"
        # Without its package directory: the tests import the installed aiohttp.
        shutil.copytree(
            args.sdist,
            suite,
            ignore=lambda folder, names: ["aiohttp"] if Path(folder) == args.sdist else [],
        )
        (work / "tether_aiohttp_suite.py").write_text(_PLUGIN)
        runs: dict[str, dict[str, str]] = {}
        for loop in ("asyncio", "tether"):
            results: dict[str, str] = {}
            for index, chunk in enumerate(chunks):
                if not chunk:
                    continue
                found, shown = _run_chunk(
                    args.python, args.src, suite, work, loop, index, chunk, args.timeout
                )
                results.update(found)
                print(f"{loop}, chunk {index + 1} of {len(chunks)}:\n{shown}", flush=True)
            runs[loop] = results
            print(summary(loop, results) + "\n", flush=True)
    return report(runs["asyncio"], runs["tether"])


if __name__ == "__main__":
    raise SystemExit(main())
