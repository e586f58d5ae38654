"""What the pytest-based conformance scripts share: plugin code that counts
the loops made, reading outcomes from pytest's JUnit XML, and the closing
report that compares the run on tether's loop with the run on the stock
loop."""

from __future__ import annotations

import argparse
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

#: The repository (its ``src`` is what the scripts test by default).
REPO = Path(__file__).resolve().parents[2]

#: The start of a script's pytest plugin (its source, run in the child): it
#: counts the event loops made, by class, in ``made``: asyncio's, and
#: tether's once the plugin calls ``count_tether_loops()``.
LOOP_COUNTER = r"""
import asyncio, collections

made = collections.Counter()

def _counting(init):
    def __init__(self, *args, **kwargs):
        made[type(self).__name__] += 1
        return init(self, *args, **kwargs)
    return __init__

asyncio.BaseEventLoop.__init__ = _counting(asyncio.BaseEventLoop.__init__)

def count_tether_loops():
    from tether.aio._loop_core import LoopCore

    LoopCore.__init__ = _counting(LoopCore.__init__)
"""


def run_pytest(
    command: list[str], cwd: Path, env: dict[str, str], timeout: float, junit: Path
) -> tuple[dict[str, str], list[str]]:
    """Run `command` (a pytest run that writes `junit`) in `cwd`, stopped
    after `timeout` seconds; return {test: outcome} and the lines of its
    output (stdout, then stderr)."""
    try:
        done = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
        )
        output = done.stdout + done.stderr
    except subprocess.TimeoutExpired as expired:
        output = f"(timed out after {timeout} s)\n{expired.stdout or ''}{expired.stderr or ''}"
    results = outcomes(junit) if junit.exists() else {}
    return results, output.strip().splitlines()


def outcomes(junit: Path) -> dict[str, str]:
    """{test id: passed / failed / error / skipped} from a JUnit XML file."""
    results: dict[str, str] = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = "failed" if child.tag == "failure" else child.tag
                break
        results[name] = outcome
    return results


def summary(loop: str, results: dict[str, str]) -> str:
    """``== loop: N tests {outcome: count}``."""
    counts = {o: list(results.values()).count(o) for o in sorted(set(results.values()))}
    return f"== {loop}: {len(results)} tests {counts}"


def report(stock: dict[str, str], tether: dict[str, str]) -> int:
    """Print the tests that failed only on tether's loop, and those that ran
    on the stock loop only, then ``N run, N failed only on tether's loop``;
    return the script's exit status (1 if any, or if nothing ran)."""
    failing = ("failed", "error")
    only = sorted(
        name
        for name, outcome in tether.items()
        if outcome in failing and stock.get(name) not in failing
    )
    missing = sorted(set(stock) - set(tether))
    for name in only:
        print(f"failed only on tether's loop: {name} ({tether[name]})")
    for name in missing:
        print(f"did not run on tether's loop: {name}")
    print(f"{len(tether)} run, {len(only)} failed only on tether's loop")
    return 1 if only or missing or not tether else 0


def sdist_parser(description: str, project: str, timeout: float) -> argparse.ArgumentParser:
    """The command line of a script that runs `project`'s test suite from
    its unpacked source distribution: ``sdist`` (it must have a ``tests/``
    directory), optional test ``files``, ``--python``, ``--src`` and
    ``--timeout`` (seconds per pytest run; `timeout` by default). A script
    adds its own options before parsing."""

    def sdist(text: str) -> Path:
        path = Path(text)
        if not (path / "tests").is_dir():
            raise argparse.ArgumentTypeError(
                f"{path} has no tests/ directory (unpack {project}'s sdist there)"
            )
        return path

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("sdist", type=sdist, help=f"{project}'s unpacked source distribution")
    parser.add_argument("files", nargs="*", help="test files to run (default: all)")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--src", default=str(REPO / "src"))
    parser.add_argument("--timeout", type=float, default=timeout)
    return parser
