"""``%autoawait tether`` in IPython: a cell's top-level await runs in a
tether run. Skipped when IPython is not installed."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import tether
from tether._ipython import autoawait_runner


def test_the_runner_runs_a_cell_coroutine_in_a_tether_run() -> None:
    async def cell() -> str:
        await tether.sleep(0)
        return f"in a task: {tether.lowlevel.in_tether_task()}"

    assert autoawait_runner(cell()) == "in a task: True"


def run_ipython(script: str) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("IPython")
    # A shell of its own in a fresh process: IPython's singleton shell and
    # its display hooks would leak into the rest of the test session.
    driver = textwrap.dedent(
        """\
        import sys
        from IPython.core.interactiveshell import InteractiveShell
        shell = InteractiveShell.instance()
        for cell in sys.stdin.read().split("# ---\\n"):
            result = shell.run_cell(cell)
            if not result.success:
                print("CELL FAILED", result.error_before_exec or result.error_in_exec)
        """
    )
    return subprocess.run(
        [sys.executable, "-c", driver],
        input=textwrap.dedent(script),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_autoawait_tether_after_import() -> None:
    result = run_ipython(
        """\
        import tether
        # ---
        %autoawait tether
        # ---
        async def child(results):
            await tether.sleep(0.01)
            results.append(tether.lowlevel.in_tether_task())

        results = []
        async with tether.open_nursery() as nursery:
            nursery.start_soon(child, results)
            nursery.start_soon(child, results)
        print("children:", results)
        """
    )
    assert "CELL FAILED" not in result.stdout, result.stdout + result.stderr
    assert "children: [True, True]" in result.stdout


def test_load_ext_switches_autoawait_to_tether() -> None:
    result = run_ipython(
        """\
        %load_ext tether
        # ---
        import tether
        print("now", await tether.sleep(0) is None, tether.current_time() > 0)
        """
    )
    assert "CELL FAILED" not in result.stdout, result.stdout + result.stderr
    assert "now True True" in result.stdout
