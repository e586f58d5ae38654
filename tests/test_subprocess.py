"""tether.run_process, tether.lowlevel.open_process and tether.Process, with
real child processes (small Python programs)."""

import gc
import os
import signal
import subprocess
import sys
import warnings
from functools import partial

import pytest

import tether
from tether import Process, _subprocess_wait, run_process
from tether.lowlevel import FdStream, open_process
from tether.testing import assert_checkpoints, check_two_way_stream, wait_all_tasks_blocked

pytestmark = [
    pytest.mark.tether,
    pytest.mark.timeout(30),
    pytest.mark.skipif(os.name != "posix", reason="tether's subprocess pipes are POSIX-only"),
]


def python(code):
    return [sys.executable, "-c", "import sys, os, signal, time\n" + code]


EXIT_0 = python("sys.exit(0)")
EXIT_3 = python("sys.stderr.buffer.write(b'oops'); sys.exit(3)")
CAT = python("sys.stdout.buffer.write(sys.stdin.buffer.read())")
# Echoes stdin to stdout and, reversed, to stderr.
ECHO_BOTH = python(
    "data = sys.stdin.buffer.read(); "
    "sys.stdout.buffer.write(data); sys.stdout.flush(); "
    "sys.stderr.buffer.write(data[::-1])"
)
SLEEP_FOREVER = python("time.sleep(600)")
# Says "ready" once it ignores SIGTERM, then waits to be killed.
IGNORE_SIGTERM = python(
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(600)"
)


def assert_reaped(pid):
    """The child is gone for good: not running, not a zombie of ours."""
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def open_fds():
    return set(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None


async def read_until(stream, marker):
    seen = b""
    while marker not in seen:
        chunk = await stream.receive_some()
        assert chunk, f"end of stream before {marker!r}; got {seen!r}"
        seen += chunk
    return seen


# ---------------------------------------------------------------- run_process


async def test_feeds_stdin_bytes_and_captures_both_outputs():
    data = bytes(range(256)) * 1024  # more than a pipe holds
    result = await run_process(ECHO_BOTH, stdin=data, capture_stdout=True, capture_stderr=True)
    assert result.args == ECHO_BOTH
    assert result.returncode == 0
    assert result.stdout == data
    assert result.stderr == data[::-1]


async def test_default_stdin_is_empty_and_uncaptured_output_is_none():
    result = await run_process(CAT, capture_stdout=True)
    assert result.stdout == b""
    assert result.stderr is None


async def test_stderr_can_join_the_captured_stdout():
    result = await run_process(
        ECHO_BOTH, stdin=b"abc", capture_stdout=True, stderr=subprocess.STDOUT
    )
    assert result.stdout == b"abccba"
    assert result.stderr is None


async def test_stdin_can_come_from_a_file(tmp_path):
    source = tmp_path / "input.bin"
    source.write_bytes(b"from a file")
    with open(source, "rb") as f:
        result = await run_process(CAT, stdin=f, capture_stdout=True)
    assert result.stdout == b"from a file"


async def test_a_child_that_stops_reading_is_not_an_error():
    closes_stdin = python("sys.stdin.close()")
    result = await run_process(closes_stdin, stdin=b"x" * 1_000_000)
    assert result.returncode == 0


async def test_check_raises_with_the_captured_output():
    with pytest.raises(subprocess.CalledProcessError) as info:
        await run_process(EXIT_3, capture_stdout=True, capture_stderr=True)
    assert info.value.returncode == 3
    assert info.value.cmd == EXIT_3
    assert info.value.stdout == b""
    assert info.value.stderr == b"oops"


async def test_check_false_returns_the_failure():
    result = await run_process(EXIT_3, check=False, capture_stderr=True)
    assert result.returncode == 3
    assert result.stderr == b"oops"


async def test_started_in_a_nursery_it_hands_over_the_process_and_its_pipes():
    async with tether.open_nursery() as nursery:
        process = await nursery.start(
            partial(run_process, CAT, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        )
        assert isinstance(process, Process)
        assert isinstance(process.stdio, tether.StapledStream)
        await process.stdio.send_all(b"through the pipes")
        await process.stdio.send_eof()
        assert await read_until(process.stdout, b"pipes") == b"through the pipes"
    assert process.returncode == 0


async def test_captured_pipes_are_not_handed_over():
    async with tether.open_nursery() as nursery:
        process = await nursery.start(
            partial(run_process, CAT, stdin=b"hidden", capture_stdout=True)
        )
        assert process.stdin is process.stdout is process.stdio is None


async def test_started_in_a_nursery_a_failure_reaches_the_nursery():
    with pytest.RaisesGroup(subprocess.CalledProcessError):
        async with tether.open_nursery() as nursery:
            await nursery.start(run_process, EXIT_3)


async def test_misuse_is_refused_with_clear_errors():
    with pytest.raises(UnicodeError, match="bytes"):
        await run_process(CAT, stdin="text")
    with pytest.raises(
        ValueError, match=r"stdin=subprocess\.PIPE is only valid with nursery\.start"
    ):
        await run_process(CAT, stdin=subprocess.PIPE)
    for name in ("stdout", "stderr"):
        with pytest.raises(ValueError, match=f"{name}=subprocess.PIPE is only valid"):
            await run_process(CAT, **{name: subprocess.PIPE})
        with pytest.raises(ValueError, match=f"both {name} and capture_{name}"):
            await run_process(CAT, **{name: None, f"capture_{name}": True})


# ------------------------------------------------------- cancelling a child


async def cancel_a_sleeping_child():
    """Run SLEEP_FOREVER under run_process, cancel it once everything
    waits, and return the process."""
    async with tether.open_nursery() as nursery:
        process = await nursery.start(run_process, SLEEP_FOREVER)
        await wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    return process


async def test_cancelling_terminates_the_child_and_leaves_no_zombie():
    process = await cancel_a_sleeping_child()
    assert process.returncode == -signal.SIGTERM
    assert_reaped(process.pid)


async def test_a_deadline_around_run_process_stops_the_child(monkeypatch):
    # The deadline may pass while the child is still being spawned in its
    # worker thread, or once it runs: either way it must be stopped and
    # reaped before run_process raises. (Real time: with a virtual clock
    # the SIGTERM grace period would pass before the exit is noticed.)
    spawned = []

    async def open_and_record(*args, **kwargs):
        process = await open_process(*args, **kwargs)
        spawned.append(process)
        return process

    monkeypatch.setattr(tether._subprocess_run, "open_process", open_and_record)
    with tether.move_on_after(0.05) as scope:
        await run_process(SLEEP_FOREVER)
    assert scope.cancelled_caught
    # Only a deadline that passed before the spawn even started (on a
    # machine stalled for the whole 50 ms) leaves no child to look at.
    assert len(spawned) <= 1
    for process in spawned:
        assert process.returncode == -signal.SIGTERM
        assert_reaped(process.pid)


async def cancel_a_child_ignoring_sigterm(started):
    """Run IGNORE_SIGTERM under run_process and cancel it once it is ready
    (the process object goes into `started`)."""
    async with tether.open_nursery() as nursery:
        process = await nursery.start(partial(run_process, IGNORE_SIGTERM, stdout=subprocess.PIPE))
        started.append(process)
        await read_until(process.stdout, b"ready")
        nursery.cancel_scope.cancel()


async def test_a_child_ignoring_sigterm_is_killed_after_the_grace_period(autojump_clock):
    # The 5 s grace period passes in virtual time.
    started = []
    with pytest.warns(RuntimeWarning, match="ignored SIGTERM"):
        await cancel_a_child_ignoring_sigterm(started)
    [process] = started
    assert process.returncode == -signal.SIGKILL
    assert_reaped(process.pid)


async def test_a_warning_turned_error_still_kills_the_child(autojump_clock):
    started = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.RaisesGroup(pytest.RaisesGroup(RuntimeWarning)):
            await cancel_a_child_ignoring_sigterm(started)
    [process] = started
    assert process.returncode == -signal.SIGKILL
    assert_reaped(process.pid)


async def test_a_custom_deliver_cancel_is_cancelled_once_the_child_exits():
    seen = []

    async def terminate_then_wait(process):
        process.terminate()
        try:
            await tether.sleep_forever()
        finally:
            seen.append(process.returncode)

    async with tether.open_nursery() as nursery:
        nursery.start_soon(partial(run_process, SLEEP_FOREVER, deliver_cancel=terminate_then_wait))
        await wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert seen == [-signal.SIGTERM]


async def test_a_failing_deliver_cancel_is_reported_after_the_child_exited():
    pids = []

    async def terminate_then_fail(process):
        pids.append(process.pid)
        process.terminate()
        raise ValueError("deliver_cancel broke")

    with pytest.RaisesGroup(pytest.RaisesGroup(pytest.RaisesExc(ValueError, match="broke"))):
        async with tether.open_nursery() as nursery:
            nursery.start_soon(
                partial(run_process, SLEEP_FOREVER, deliver_cancel=terminate_then_fail)
            )
            await wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
    assert_reaped(pids[0])


async def test_an_error_beside_a_started_run_process_stops_the_child():
    # An error in the caller's block (here: right after start) cancels
    # run_process's task, which stops and reaps the child before the error
    # propagates.
    with pytest.RaisesGroup(KeyError):
        async with tether.open_nursery() as nursery:
            process = await nursery.start(run_process, SLEEP_FOREVER)
            raise KeyError("caller failed")
    assert process.returncode == -signal.SIGTERM
    assert_reaped(process.pid)


# ---------------------------------------------------------------- Process


async def test_process_has_no_public_constructor():
    with pytest.raises(TypeError, match="no public constructor"):
        Process()


async def test_returncode_repr_and_wait():
    process = await open_process(EXIT_3, stderr=subprocess.DEVNULL)
    assert process.args == EXIT_3
    assert process.pid > 0
    assert await process.wait() == 3
    assert process.returncode == process.poll() == 3
    assert repr(process) == f"<tether.Process {EXIT_3!r}: exited with status 3>"
    with assert_checkpoints():
        assert await process.wait() == 3


async def test_signals_and_repr_of_a_signalled_child():
    for send, signum in (
        (Process.kill, signal.SIGKILL),
        (Process.terminate, signal.SIGTERM),
        (lambda p: p.send_signal(signal.SIGUSR1), signal.SIGUSR1),
    ):
        process = await open_process(SLEEP_FOREVER)
        assert process.returncode is None
        assert f"running with PID {process.pid}" in repr(process)
        send(process)
        assert await process.wait() == -signum
        assert f"exited with signal {signum}" in repr(process)
        assert_reaped(process.pid)


async def test_returncode_is_current_without_waiting():
    process = await open_process(EXIT_0)
    os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped
    assert process.returncode == 0


async def test_many_tasks_can_wait_and_cancelled_waits_change_nothing():
    process = await open_process(SLEEP_FOREVER)
    async with tether.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(process.wait)
        await wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert process.returncode is None
    results = []

    async def wait_and_record():
        results.append(await process.wait())

    async with tether.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(wait_and_record)
        await wait_all_tasks_blocked()
        process.kill()
    assert results == [-signal.SIGKILL] * 3


async def test_async_with_closes_the_pipes_and_waits():
    async with await open_process(CAT, stdin=subprocess.PIPE, stdout=subprocess.PIPE) as process:
        await process.stdin.send_all(b"hi")
        await process.stdin.aclose()
        assert await read_until(process.stdout, b"hi") == b"hi"
    assert process.returncode == 0
    assert process.stdin.fileno() == process.stdout.fileno() == -1


async def test_aclose_cancelled_kills_the_child(autojump_clock):
    with tether.move_on_after(5) as scope:
        async with await open_process(SLEEP_FOREVER) as process:
            pass
    assert scope.cancelled_caught
    assert process.returncode == -signal.SIGKILL
    assert_reaped(process.pid)


async def test_stderr_to_stdout_and_stdio_only_with_both_pipes():
    async with await open_process(
        ECHO_BOTH, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as process:
        assert process.stderr is None
        await process.stdio.send_all(b"12")
        await process.stdio.send_eof()
        assert await read_until(process.stdout, b"21") == b"1221"
    async with await open_process(EXIT_0, stdin=subprocess.PIPE) as process:
        assert process.stdio is None


# Relays its stdin to the fd in argv[1] and the fd in argv[2] to its stdout,
# both at once, passing on the end of each direction: an end of input closes
# the output (the reader sees the end of the stream), a closed reader closes
# the input (the writer sees a broken pipe). So the child's stdio and the two
# other pipes behave as the two ends of one connection.
RELAY = [
    sys.executable,
    "-S",
    "-c",
    """
import os, sys, threading

def relay(source, target):
    try:
        while data := os.read(source, 65536):
            os.write(target, data)
    except BrokenPipeError:
        pass
    finally:
        os.close(source)
        os.close(target)

to_peer, from_peer = int(sys.argv[1]), int(sys.argv[2])
threading.Thread(target=relay, args=(from_peer, 1)).start()
relay(0, to_peer)
""",
]


async def test_stdio_passes_the_two_way_stream_conformance_checks():
    # Process.stdio is one end; the other end is a stapled pair of pipes
    # that the child relays to and from. No clogged maker: the relay drains
    # pipes on its own schedule, so no pair can be made that stays full
    # until the receiver reads (FdStream's clogged rules are checked over a
    # plain pipe in test_unix_pipes.py).
    processes = []

    async def make_pair():
        to_peer_read, to_peer_write = os.pipe()
        from_peer_read, from_peer_write = os.pipe()
        try:
            process = await open_process(
                [*RELAY, str(to_peer_write), str(from_peer_read)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                pass_fds=(to_peer_write, from_peer_read),
            )
        except BaseException:
            for fd in (to_peer_read, from_peer_write):
                os.close(fd)
            raise
        finally:
            # The child's ends: only the child may hold them, or the ends of
            # the streams would never be seen.
            os.close(to_peer_write)
            os.close(from_peer_read)
        processes.append(process)
        peer = tether.StapledStream(FdStream(from_peer_write), FdStream(to_peer_read))
        return process.stdio, peer

    try:
        await check_two_way_stream(make_pair, None)
    finally:
        for process in processes:
            await process.aclose()
    assert processes
    assert all(process.returncode == 0 for process in processes)


async def test_open_process_refuses_bad_commands_and_text_options():
    with pytest.raises(TypeError, match="shell=True"):
        await open_process("ls -l")
    with pytest.raises(TypeError, match=r"shlex\.join"):
        await open_process(["ls", "-l"], shell=True)
    for option in ("encoding", "text", "universal_newlines", "errors", "bufsize"):
        with pytest.raises(TypeError, match=f"the '{option}' option is not supported"):
            await open_process(
                EXIT_0, **{option: "utf-8" if option in ("encoding", "errors") else 1}
            )


async def test_a_shell_string_runs_with_shell_true():
    result = await run_process("echo $((6 * 7))", shell=True, capture_stdout=True)
    assert result.stdout == b"42\n"


async def test_a_failed_spawn_leaks_no_descriptor(tmp_path):
    gc.collect()  # so that no earlier test's garbage closes an fd meanwhile
    before = open_fds()
    with pytest.raises(FileNotFoundError):
        await open_process(
            [str(tmp_path / "no-such-program")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    await run_process(EXIT_0)
    with pytest.raises(subprocess.CalledProcessError):
        await run_process(EXIT_3, stderr=subprocess.DEVNULL)
    assert open_fds() == before


# ------------------------------------------ without pidfd: the fallbacks


@pytest.fixture(params=["waitid thread", "polling"])
def without_pidfd(request, monkeypatch):
    """Waits for children the way systems without pidfds do."""
    monkeypatch.setattr(_subprocess_wait, "_pidfd_usable", False)
    if request.param == "polling":
        monkeypatch.setattr(_subprocess_wait, "_waitid_usable", False)
    return request.param


async def test_fallbacks_wait_cancel_and_reap(without_pidfd):
    process = await open_process(SLEEP_FOREVER)
    with tether.move_on_after(0.05) as scope:
        await process.wait()
    assert scope.cancelled_caught
    async with tether.open_nursery() as nursery:
        nursery.start_soon(process.wait)
        nursery.start_soon(process.wait)
        await wait_all_tasks_blocked()
        process.terminate()
    assert process.returncode == -signal.SIGTERM
    assert_reaped(process.pid)


async def test_fallbacks_stop_a_cancelled_run_process(without_pidfd):
    process = await cancel_a_sleeping_child()
    assert process.returncode == -signal.SIGTERM
    assert_reaped(process.pid)


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "waitid"])
async def test_wait_works_when_sigchld_is_ignored(pidfd, monkeypatch):
    # With SIGCHLD ignored the kernel reaps children itself, so the exit
    # status is lost; like subprocess, report 0 instead of hanging.
    monkeypatch.setattr(_subprocess_wait, "_pidfd_usable", pidfd)
    previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        process = await open_process(SLEEP_FOREVER)
        async with tether.open_nursery() as nursery:
            nursery.start_soon(process.wait)
            await wait_all_tasks_blocked()
            process.kill()
        assert process.returncode == 0
    finally:
        signal.signal(signal.SIGCHLD, previous)


def test_a_wait_cancelled_when_a_run_ended_does_not_block_the_next_run(monkeypatch):
    # Two runs wait for the same child, through the waitid thread (no
    # pidfd). The first run's wait is still pending when that run ends; in
    # the second run a wait must park, not take the child for exited and
    # block the whole run in Popen.wait(): the task that kills the child
    # has to get its turn.
    monkeypatch.setattr(_subprocess_wait, "_pidfd_usable", False)
    # Exits by itself if it is not killed: a run blocked in Popen.wait()
    # then sees it exit with status 0 (instead of hanging the test).
    exits_after_a_while = python("time.sleep(10)")

    async def start_and_cancel_a_wait():
        process = await open_process(exits_after_a_while)
        async with tether.open_nursery() as nursery:
            nursery.start_soon(process.wait)
            await wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        return process  # the run ends while the child still runs

    process = tether.run(start_and_cancel_a_wait)
    assert process.returncode is None

    async def wait_while_another_task_kills():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(_kill_once_everything_waits, process)
            return await process.wait()

    assert tether.run(wait_while_another_task_kills) == -signal.SIGKILL
    assert_reaped(process.pid)


async def _kill_once_everything_waits(process):
    await wait_all_tasks_blocked()
    process.kill()
