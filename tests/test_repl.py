"""``python -m tether``: the console with top-level await, and running a
script's or module's async main(). Driven through pipes, as a user's
terminal would drive it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and pipes")


def start_console() -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tether"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )


def run_console(source: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tether"],
        input=textwrap.dedent(source),
        capture_output=True,
        text=True,
        timeout=30,
    )


def read_until(stream: object, marker: str) -> str:
    seen = ""
    while marker not in seen:
        char = stream.read(1)  # type: ignore[attr-defined]
        assert char, f"end of output before {marker!r}; got {seen!r}"
        seen += char
    return seen


def test_console_has_top_level_await_and_tether_imported() -> None:
    result = run_console(
        """\
        await tether.sleep(0.01)
        print("now", tether.current_time() > 0)
        print("in task", tether.lowlevel.in_tether_task())
        """
    )
    assert result.returncode == 0, result.stderr
    assert "now True" in result.stdout
    assert "in task True" in result.stdout
    assert "import tether" in result.stderr  # the banner says so


def test_tasks_in_the_console_nursery_run_between_prompts() -> None:
    result = run_console(
        """\
        ev = tether.Event()
        async def waiter():
            await ev.wait()
            print("waiter woke")

        nursery.start_soon(waiter)
        print("started", len(nursery.child_tasks))
        ev.set(); await tether.sleep(0)
        print("left", len(nursery.child_tasks))
        """
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.index("started 1") < out.index("waiter woke") < out.index("left 0")


def test_errors_are_printed_and_the_console_goes_on() -> None:
    result = run_console(
        """\
        1 / 0
        async def boom():
            raise ValueError("from the background")

        nursery.start_soon(boom); await tether.sleep(0)
        print("still here")
        """
    )
    assert result.returncode == 0, result.stderr
    assert "ZeroDivisionError" in result.stderr
    assert "background task boom raised" in result.stderr
    assert "ValueError: from the background" in result.stderr
    assert "still here" in result.stdout


def test_exit_cancels_tasks_still_running() -> None:
    result = run_console(
        """\
        async def forever():
            try:
                await tether.sleep_forever()
            finally:
                print("cancelled at exit")

        nursery.start_soon(forever); await tether.sleep(0)
        exit()
        print("not reached")
        """
    )
    assert result.returncode == 0, result.stderr
    assert "cancelled at exit" in result.stdout
    assert "not reached" not in result.stdout


def test_ctrl_c_interrupts_the_running_statement_only() -> None:
    proc = start_console()
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write('print("sleeping", flush=True); await tether.sleep(1000)\n')
    proc.stdin.flush()
    read_until(proc.stdout, "sleeping")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate('print("alive")\n', timeout=30)
    assert proc.returncode == 0, err
    assert "KeyboardInterrupt" in err
    assert "alive" in out


def test_ctrl_c_at_the_prompt_discards_the_line() -> None:
    proc = start_console()
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write('print("ready")\n')
    proc.stdin.flush()
    # The prompt after "ready" is shown once the console waits for input.
    read_until(proc.stdout, "ready\n>>> ")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate('print("discarded")\nprint("kept")\n', timeout=30)
    assert proc.returncode == 0, err
    assert "KeyboardInterrupt" in err
    assert "discarded" not in out
    assert "kept" in out


def test_script_main_runs_under_tether(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(
            """\
            import sys
            import tether

            async def main():
                await tether.sleep(0)
                print("main ran with", sys.argv[1:], tether.lowlevel.in_tether_task())

            if __name__ == "__main__":
                raise SystemExit("the script's own __main__ block must not run")
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "tether", str(script), "a", "b"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "main ran with ['a', 'b'] True\n"


def test_module_main_runs_under_tether(tmp_path: Path) -> None:
    (tmp_path / "tether_demo_mod.py").write_text(
        "import tether\nasync def main():\n    print('module main', tether.current_time() >= 0)\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    result = subprocess.run(
        [sys.executable, "-m", "tether", "-m", "tether_demo_mod"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "module main True\n"


def test_script_without_async_main_is_refused_clearly(tmp_path: Path) -> None:
    script = tmp_path / "sync_main.py"
    script.write_text("def main():\n    pass\n")
    result = subprocess.run(
        [sys.executable, "-m", "tether", str(script)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1
    assert "not an async function" in result.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "tether", str(tmp_path / "nope.py")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert missing.returncode == 2
    assert "no such file" in missing.stderr


def test_ctrl_c_landing_in_a_background_task_stops_only_that_task() -> None:
    proc = start_console()
    assert proc.stdin is not None and proc.stdout is not None
    # A background task that is nearly always running its own Python code,
    # so that the Ctrl-C is raised in it rather than in the statement.
    proc.stdin.write(
        "async def spin():\n"
        "    while True:\n"
        "        sum(range(100_000))\n"
        "        await tether.lowlevel.checkpoint()\n"
        "\n"
        'nursery.start_soon(spin); print("spinning", flush=True); await tether.sleep(1)\n'
    )
    proc.stdin.flush()
    read_until(proc.stdout, "spinning")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate('print("alive", len(nursery.child_tasks))\n', timeout=30)
    assert proc.returncode == 0, err
    # Either the statement or the spinning task took the Ctrl-C; either way
    # the console and its nursery are still usable.
    assert "background task spin was running at Ctrl-C and stopped" in err or (
        "KeyboardInterrupt" in err
    )
    assert "Cancelled" not in err
    assert "alive" in out
