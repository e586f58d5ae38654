"""Run CPython's own asyncio test suite (``test.test_asyncio``) on tether's loop.

Not a pytest module (pytest does not collect it): a script that reports how
much of the standard library's asyncio test suite passes when every loop the
tests get from the event-loop policy is a tether loop. Nothing of CPython's
tests is copied here; they are imported from the interpreter's own ``test``
package (on Debian-like systems that package may need installing).

How the loop is swapped in: before any test module is imported, each child
process replaces ``asyncio.DefaultEventLoopPolicy`` with
``tether.aio.EventLoopPolicy`` and resets the policy. The tests' modules call
``asyncio.set_event_loop_policy(None)`` in their teardown, which creates a
new ``DefaultEventLoopPolicy`` from the ``asyncio`` package, so the swap
survives them. Tests that build a ``SelectorEventLoop`` or mock one (most of
``test_selector_events``, ``test_base_events``) still test the stock classes.

Every test module runs in its own child process, one test at a time, with a
per-test time limit: a test that hangs (or kills its process) is reported as
``HANG`` and the module resumes after it in a fresh process.

Usage (from the repository root)::

    .venv/bin/python tests/conformance/run_stdlib_asyncio.py            # tether
    .venv/bin/python tests/conformance/run_stdlib_asyncio.py --loop asyncio
    .venv/bin/python tests/conformance/run_stdlib_asyncio.py -m test_tasks -m test_events
    PYENV_VERSION=3.13.0 python3.13 tests/conformance/run_stdlib_asyncio.py

Options: ``--loop tether|asyncio`` (default tether), ``-m MODULE`` (repeat;
default every ``test_*`` module), ``--jobs N`` (modules in parallel, default
2), ``--timeout S`` (per test, default 30), ``--list-failures`` (print each
failing test id and the last line of its error), ``--json PATH``. The closing
line is ``N passed, N failed, N skipped`` (failures include errors and hangs).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


# -- child side ------------------------------------------------------------------


def _child(module: str, loop: str, results_path: str, skip: set[str], timeout: float) -> None:
    import asyncio
    import faulthandler
    import unittest

    if loop == "tether":
        import tether.aio

        asyncio.DefaultEventLoopPolicy = tether.aio.EventLoopPolicy  # type: ignore[misc]
        asyncio.set_event_loop_policy(None)

    out = open(results_path, "a", buffering=1)

    def record(test: unittest.TestCase, status: str, detail: str = "") -> None:
        out.write(json.dumps({"id": test.id(), "status": status, "detail": detail}) + "\n")

    class Result(unittest.TestResult):
        def startTest(self, test: unittest.TestCase) -> None:
            super().startTest(test)
            self._outcome = "pass"
            self._detail = ""
            out.write(json.dumps({"id": test.id(), "status": "start"}) + "\n")
            # A hang ends the process; the parent notices the unfinished test.
            faulthandler.dump_traceback_later(timeout, exit=True)

        def stopTest(self, test: unittest.TestCase) -> None:
            faulthandler.cancel_dump_traceback_later()
            super().stopTest(test)
            record(test, self._outcome, self._detail)

        def _fail(self, kind: str, err: object, test: unittest.TestCase) -> None:
            if self._outcome == "pass":
                self._outcome = kind
                text = self._exc_info_to_string(err, test)  # type: ignore[arg-type]
                self._detail = (text.strip().splitlines() or [""])[-1]

        def addError(self, test, err):  # type: ignore[no-untyped-def]
            if isinstance(test, unittest.TestCase):
                self._fail("error", err, test)
            else:  # a class or module fixture failed
                record_fixture(test, err)

        def addFailure(self, test, err):  # type: ignore[no-untyped-def]
            self._fail("fail", err, test)

        def addSubTest(self, test, subtest, err):  # type: ignore[no-untyped-def]
            if err is not None:
                self._fail("fail", err, test)

        def addSkip(self, test, reason):  # type: ignore[no-untyped-def]
            self._outcome = "skip"
            self._detail = reason

        def addExpectedFailure(self, test, err):  # type: ignore[no-untyped-def]
            self._outcome = "pass"

        def addUnexpectedSuccess(self, test):  # type: ignore[no-untyped-def]
            self._fail("fail", (AssertionError, AssertionError("unexpected success"), None), test)

    def record_fixture(test: object, err: object) -> None:
        text = str(err[1]) if isinstance(err, tuple) else str(err)  # type: ignore[index]
        out.write(json.dumps({"id": str(test), "status": "error", "detail": text}) + "\n")

    def flatten(suite: unittest.TestSuite) -> unittest.TestSuite:
        kept = unittest.TestSuite()
        for item in suite:
            if isinstance(item, unittest.TestSuite):
                kept.addTest(flatten(item))
            elif item.id() not in skip:
                kept.addTest(item)
        return kept

    try:
        suite = unittest.defaultTestLoader.loadTestsFromName(f"test.test_asyncio.{module}")
    except unittest.SkipTest as exc:
        out.write(json.dumps({"id": module, "status": "skip", "detail": str(exc)}) + "\n")
        suite = unittest.TestSuite()
    flatten(suite).run(Result())
    out.write(json.dumps({"id": "", "status": "done"}) + "\n")
    out.close()


# -- parent side -----------------------------------------------------------------


def _stdlib_test_modules(python: str) -> list[str]:
    code = (
        "import os, test.test_asyncio as p;"
        "print(' '.join(sorted(f[:-3] for f in os.listdir(os.path.dirname(p.__file__))"
        " if f.startswith('test_') and f.endswith('.py'))))"
    )
    text = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return text.stdout.split()


def _wait_child(proc: subprocess.Popen[str], results_path: str, timeout: float) -> tuple[str, bool]:
    """Wait for a child; returns its stderr and whether it had to be killed
    because it did not exit once its tests were done (a process left
    waiting for threads or forked children at exit)."""
    import threading

    chunks: list[str] = []
    assert proc.stderr is not None
    reader = threading.Thread(target=lambda: chunks.append(proc.stderr.read()))  # type: ignore[union-attr]
    reader.start()
    done_since = None
    while True:
        try:
            proc.wait(timeout=1.0)
            # Whatever it forked and left behind goes too (it would keep
            # stderr open).
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            break
        except subprocess.TimeoutExpired:
            pass
        if done_since is None:
            with open(results_path) as f:
                if '"status": "done"' in f.read():
                    done_since = time.monotonic()
        elif time.monotonic() - done_since > timeout:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            reader.join()
            return "".join(chunks), True
    reader.join()
    return "".join(chunks), False


def _run_module(python: str, module: str, loop: str, timeout: float) -> dict[str, dict[str, str]]:
    """Run one module, restarting after each hang; returns id -> record."""
    results: dict[str, dict[str, str]] = {}
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="tether-stdlib-") as tmp:
        results_path = os.path.join(tmp, "results.jsonl")
        skip_path = os.path.join(tmp, "skip.json")
        for _attempt in range(200):
            with open(skip_path, "w") as f:
                json.dump(sorted(results), f)
            open(results_path, "w").close()
            proc = subprocess.Popen(
                [python, __file__, "--child", module, "--loop", loop, "--timeout", str(timeout),
                 "--results", results_path, "--skip-file", skip_path],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp, env=env,
                # Its own process group: processes it forked (a process pool
                # that never exits) are killed with it.
                start_new_session=True,
            )  # fmt: skip
            stderr, exit_hang = _wait_child(proc, results_path, timeout)
            if exit_hang:
                results[f"{module} (exit)"] = {
                    "id": f"{module} (exit)", "status": "hang",
                    "detail": "the process did not exit after its tests finished: "
                    + " | ".join(line.strip() for line in stderr.splitlines()[-4:]),
                }  # fmt: skip
            started = None
            done = False
            with open(results_path) as f:
                for line in f:
                    record = json.loads(line)
                    if record["status"] == "start":
                        started = record["id"]
                    elif record["status"] == "done":
                        done = True
                    else:
                        results[record["id"]] = record
                        started = None
            if done:
                break
            if started is None:
                # Died outside any test (import error, module fixture).
                tail = (stderr.strip().splitlines() or ["(no output)"])[-1]
                results[f"{module} (process)"] = {
                    "id": f"{module} (process)", "status": "error",
                    "detail": f"exit {proc.returncode}: {tail}",
                }  # fmt: skip
                break
            stack = stderr.strip().splitlines()
            results[started] = {
                "id": started, "status": "hang",
                "detail": f"no result within {timeout}s (exit {proc.returncode}); "
                + " | ".join(line.strip() for line in stack[-4:]),
            }  # fmt: skip
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loop", choices=["tether", "asyncio"], default="tether")
    parser.add_argument("-m", "--module", action="append", default=[])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--list-failures", action="store_true")
    parser.add_argument("--json")
    parser.add_argument("--child")
    parser.add_argument("--results")
    parser.add_argument("--skip-file")
    args = parser.parse_args()

    if args.child:
        with open(args.skip_file) as f:
            skip = set(json.load(f))
        _child(args.child, args.loop, args.results, skip, args.timeout)
        return 0

    python = sys.executable
    modules = args.module or _stdlib_test_modules(python)
    modules = [m if m.startswith("test_") else f"test_{m}" for m in modules]
    totals = {"pass": 0, "fail": 0, "skip": 0}
    everything: dict[str, dict[str, str]] = {}
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = {m: pool.submit(_run_module, python, m, args.loop, args.timeout) for m in modules}
        for module, future in futures.items():
            results = future.result()
            everything.update(results)
            counts = {"pass": 0, "fail": 0, "skip": 0}
            for record in results.values():
                status = record["status"]
                counts["pass" if status == "pass" else "skip" if status == "skip" else "fail"] += 1
            for key in totals:
                totals[key] += counts[key]
            print(
                f"{module:28} {counts['pass']:5} passed {counts['fail']:4} failed "
                f"{counts['skip']:4} skipped",
                flush=True,
            )
    if args.list_failures:
        for record in sorted(everything.values(), key=lambda r: r["id"]):
            if record["status"] not in {"pass", "skip"}:
                print(f"{record['status'].upper():5} {record['id']}: {record['detail'][:300]}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python": sys.version, "loop": args.loop, "results": everything}, f)
    print(f"python {sys.version.split()[0]}, loop {args.loop}")
    print(f"{totals['pass']} passed, {totals['fail']} failed, {totals['skip']} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
