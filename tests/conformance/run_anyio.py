"""Run anyio's own test suite with tether's loop as anyio's asyncio loop.

Not a pytest module (pytest does not collect it): a script that runs the
test suite of anyio (a library many asyncio programs use through httpx,
starlette and FastAPI) twice in one pytest session, once on stock asyncio's
loop and once with ``loop_factory=tether.aio.new_event_loop``, and reports
the tests that pass on the stock loop but not on tether's.

anyio's tests are not part of this repository: get them from anyio's source
distribution, into a scratch directory, and give this script the unpacked
directory. Its test dependencies go in a separate virtualenv (anyio's pytest
plugin would otherwise load into tether's own test runs)::

    cd /tmp && pip download --no-binary :all: --no-deps anyio -d /tmp/anyio-sdist
    tar xzf /tmp/anyio-sdist/anyio-*.tar.gz -C /tmp
    python3 -m venv /tmp/anyio-venv
    /tmp/anyio-venv/bin/pip install /tmp/anyio-sdist/anyio-*.tar.gz blockbuster \\
        hypothesis psutil pytest pytest-mock pytest-timeout trustme truststore \\
        outcome sortedcontainers
    /tmp/anyio-venv/bin/python tests/conformance/run_anyio.py /tmp/anyio-4.16.0

The script copies anyio's ``tests`` and ``pyproject.toml`` into a temporary
directory and changes two things there, never in this repository:

- the ``anyio_backend`` parameters: stock asyncio (``[asyncio]``, debug mode
  as anyio runs it) and tether's loop (``[asyncio+tether]``, debug mode too);
  uvloop, the eager task factory and trio are left out;
- anyio's blocking-call detector (blockbuster) allows, under tether's loop
  methods, the blocking calls it allows under the standard library's (it
  recognises those by file and function name): ``subprocess.Popen``'s read
  of its exec-error pipe while ``loop.subprocess_exec`` starts a process.

Options: ``-k EXPR`` (extra pytest selection), ``--timeout S`` (per test,
default 30), ``--python PATH`` (the interpreter with anyio's test
dependencies; default this one), ``--ipv6`` (also run the IPv6 tests,
deselected by default: they need a machine with working IPv6), ``-x``
passes through. The closing line is ``N passed, N failed`` for tether's loop, where
failed counts only tests that pass on stock asyncio's loop.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_STOCK_PARAM = 'pytest.param(("asyncio", {"debug": True}), id="asyncio"),'
_TETHER_PARAM = (
    'pytest.param(("asyncio", {"debug": True, "loop_factory": __import__("tether.aio")'
    '.aio.new_event_loop}), id="asyncio+tether"),'
)


def _patch_conftest(path: Path) -> None:
    text = path.read_text()
    if _STOCK_PARAM not in text:
        raise SystemExit(f"{path}: anyio's asyncio backend parameter not found; update this script")
    text = text.replace(_STOCK_PARAM, _STOCK_PARAM + "\n    " + _TETHER_PARAM)
    marker = "    ) as bb:\n"
    if marker not in text:
        raise SystemExit(f"{path}: anyio's blockbuster fixture not found; update this script")
    # blockbuster allows the blocking read of subprocess.Popen's exec-error
    # pipe under asyncio's own ``subprocess_exec``/``subprocess_shell`` (by
    # file name); the same read happens under tether's loop methods.
    allowance = (
        marker
        + '        bb.functions["os.read"].can_block_in(\n'
        + '            "tether/aio/_loop.py", {"subprocess_exec", "subprocess_shell"}\n'
        + "        )\n"
    )
    path.write_text(text.replace(marker, allowance, 1))


def _outcomes(junit: Path) -> dict[str, tuple[str, str]]:
    """test id -> (status, message) from pytest's junit xml."""
    results: dict[str, tuple[str, str]] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        status, message = "pass", ""
        for child in case:
            if child.tag in {"failure", "error"}:
                status, message = "fail", (child.get("message") or "")[:300]
                break
            if child.tag == "skipped":
                status, message = "skip", (child.get("message") or "")[:300]
        if name in results and results[name][0] == "fail":
            continue  # an error in teardown after a failure: keep the failure
        results[name] = (status, message)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("anyio_dir", help="an unpacked anyio source distribution")
    parser.add_argument("-k", dest="keyword", default="")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("-x", action="store_true")
    parser.add_argument("--ipv6", action="store_true", help="also run the IPv6 tests")
    args = parser.parse_args()

    source = Path(args.anyio_dir)
    with tempfile.TemporaryDirectory(prefix="tether-anyio-") as tmp:
        work = Path(tmp)
        shutil.copytree(source / "tests", work / "tests")
        shutil.copy(source / "pyproject.toml", work / "pyproject.toml")
        _patch_conftest(work / "tests" / "conftest.py")
        selection = "(asyncio and not uvloop and not eager)"
        if args.keyword:
            selection += f" and ({args.keyword})"
        if not args.ipv6:
            selection += " and not ipv6"
        junit = work / "junit.xml"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(REPO / "src"), env.get("PYTHONPATH")])
        )
        command = [
            args.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", selection,
            f"--timeout={args.timeout}", "--timeout-method=thread", f"--junitxml={junit}",
            "-o", "junit_family=xunit1", "tests",
        ]  # fmt: skip
        if args.x:
            command.append("-x")
        proc = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
        if not junit.exists():
            print(proc.stdout[-5000:], proc.stderr[-5000:])
            print("pytest ended without results (a hang killed by --timeout-method=thread?)")
            return 1
        results = _outcomes(junit)

    stock: dict[str, tuple[str, str]] = {}
    tether: dict[str, tuple[str, str]] = {}
    for name, outcome in results.items():
        if "[asyncio+tether" in name:
            tether[name.replace("asyncio+tether", "asyncio")] = outcome
        elif "[asyncio" in name:
            stock[name] = outcome
    regressions = []
    passed = 0
    for name, (status, message) in sorted(tether.items()):
        stock_status = stock.get(name, ("missing", ""))[0]
        if status == "pass":
            passed += 1
        elif status == "fail" and stock_status != "fail":
            regressions.append((name, message))
    stock_failures = sorted(n for n, (s, _) in stock.items() if s == "fail")
    print(f"stock asyncio: {sum(s == 'pass' for s, _ in stock.values())} passed, "
          f"{len(stock_failures)} failed")  # fmt: skip
    for name in stock_failures:
        print(f"  stock failure (not counted): {name}")
    for name, (status, message) in sorted(tether.items()):
        if status == "skip" and stock.get(name, ("missing", ""))[0] == "pass":
            print(f"  skipped on tether's loop only (not counted): {name}: {message}")
    for name, message in regressions:
        print(f"FAIL {name}: {message}")
    print(f"tether's loop: {passed} passed, {len(regressions)} failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
