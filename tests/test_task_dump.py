"""install_task_dump(): the run's task tree on a signal."""

from __future__ import annotations

import io
import os
import selectors
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import tether
from tether import lowlevel
from tether.testing import MockClock, wait_all_tasks_blocked

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="needs SIGUSR1")

#: How long the child program may take to start, or to print its dump.
PATIENCE = 30.0

PROGRAM = textwrap.dedent(
    """
    import sys
    import tether
    from tether import lowlevel
    from tether.testing import wait_all_tasks_blocked

    def until_the_test_is_done():
        # In the thread: by now every task is blocked (the dump is drawn
        # between steps, after the step that started this thread).
        print("ready", flush=True)
        sys.stdin.readline()

    async def main():
        lowlevel.install_task_dump()
        event = tether.Event()
        async with tether.open_nursery() as nursery:
            nursery.start_soon(event.wait, name="waiter")
            nursery.start_soon(tether.sleep, 1000, name="sleeper")
            await wait_all_tasks_blocked()
            await tether.to_thread.run_sync(until_the_test_is_done, thread_name="stdin")
            nursery.cancel_scope.cancel()

    tether.run(main)
    """
)


def read_until(stream: io.BufferedReader, marker: bytes, deadline: float) -> bytes:
    """What `stream` gives until a line containing `marker` (included)."""
    seen = b""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while marker not in seen:
            if not selector.select(max(0.0, deadline - time.monotonic())):
                raise AssertionError(f"no {marker!r} in time; got so far:\n{seen.decode()}")
            chunk = os.read(stream.fileno(), 65536)
            if not chunk:
                raise AssertionError(f"the stream ended before {marker!r}:\n{seen.decode()}")
            seen += chunk
    return seen


def test_the_signal_prints_the_tree_to_stderr_in_a_real_program() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", PROGRAM],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    try:
        deadline = time.monotonic() + PATIENCE
        assert b"ready" in read_until(child.stdout, b"ready", deadline)  # type: ignore[arg-type]
        child.send_signal(signal.SIGUSR1)
        dump = read_until(child.stderr, b"waiting for thread 'stdin'", deadline)  # type: ignore[arg-type]
        child.stdin.write(b"done\n")
        child.stdin.close()
        assert child.wait(PATIENCE) == 0
        dump += child.stderr.read()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()
    text = dump.decode()
    assert text.startswith("tether: task dump on SIGUSR1, run clock at ")
    assert "task '<init>' (system)" in text
    assert "task '<task dump on SIGUSR1>' (system)" in text
    assert "task 'waiter'\n" in text and "blocked: waiting for Event at 0x" in text
    assert "task 'sleeper'\n" in text and "blocked: sleeping until " in text
    assert "task '__main__.main'\n" in text
    assert "blocked: waiting for thread 'stdin' to return from until_the_test_is_done" in text


@pytest.mark.tether
async def test_the_dump_is_printed_between_steps_of_the_run() -> None:
    output = io.StringIO()
    uninstall = lowlevel.install_task_dump(signal.SIGUSR1, file=output)
    try:
        async with tether.open_nursery() as nursery:
            nursery.start_soon(tether.sleep_forever, name="sleeper")
            await wait_all_tasks_blocked()
            os.kill(os.getpid(), signal.SIGUSR1)
            # The handler only queued the dump; the loop prints it before
            # the next batch of steps.
            assert output.getvalue() == ""
            await tether.sleep(0)
            nursery.cancel_scope.cancel()
    finally:
        uninstall()
    text = output.getvalue()
    assert "task 'sleeper'\n" in text and "blocked: sleeping forever" in text
    # Drawn between steps: no task was running.
    assert "(running)" not in text


def test_uninstalling_puts_the_previous_handler_back() -> None:
    def previous(signum: int, frame: object) -> None:
        pass

    async def main() -> None:
        uninstall = lowlevel.install_task_dump(signal.SIGUSR2, file=io.StringIO())
        assert signal.getsignal(signal.SIGUSR2) != previous
        uninstall()
        assert signal.getsignal(signal.SIGUSR2) == previous
        uninstall()  # idempotent
        await tether.sleep(0)

    old = signal.signal(signal.SIGUSR2, previous)
    try:
        tether.run(main, clock=MockClock(autojump_threshold=0))
    finally:
        signal.signal(signal.SIGUSR2, old)


def test_the_end_of_the_run_uninstalls_it() -> None:
    seen = []

    async def main() -> None:
        lowlevel.install_task_dump(signal.SIGUSR2, file=io.StringIO())
        seen.append(signal.getsignal(signal.SIGUSR2))
        await wait_all_tasks_blocked()
        tree = lowlevel.current_task_tree()
        holder = tree.find("<task dump on SIGUSR2>")
        assert holder.system and holder.waiting_for is not None
        assert holder.waiting_for.kind == "sleep"

    old = signal.getsignal(signal.SIGUSR2)
    try:
        tether.run(main, clock=MockClock(autojump_threshold=0))
        assert seen[0] != old
        assert signal.getsignal(signal.SIGUSR2) == old
    finally:
        signal.signal(signal.SIGUSR2, old)


def test_outside_a_run_it_says_where_to_call_it() -> None:
    with pytest.raises(RuntimeError, match=r"must be called inside tether\.run\(\)"):
        lowlevel.install_task_dump()


def test_a_run_in_another_thread_cannot_use_it() -> None:
    errors: list[BaseException] = []

    async def main() -> None:
        try:
            lowlevel.install_task_dump()
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=tether.run, args=(main,))
    thread.start()
    thread.join()
    (error,) = errors
    assert "must be called in the main thread" in str(error)


@pytest.mark.tether
async def test_a_bad_signal_number_is_refused() -> None:
    with pytest.raises(ValueError, match="signum must be a signal number, got 12345"):
        lowlevel.install_task_dump(12345)
