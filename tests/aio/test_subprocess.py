"""Subprocesses and pipes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest

from tether import aio
from tether.aio import subprocess as aio_subprocess

PY = sys.executable


def test_communicate_and_returncode():
    async def main():
        proc = await aio.create_subprocess_exec(
            PY,
            "-c",
            "import sys; data = sys.stdin.read(); print(data.upper()); "
            "print('err', file=sys.stderr); sys.exit(3)",
            stdin=aio_subprocess.PIPE,
            stdout=aio_subprocess.PIPE,
            stderr=aio_subprocess.PIPE,
        )
        assert isinstance(proc, aio_subprocess.Process) and proc.pid > 0
        out, err = await proc.communicate(b"input")
        return out, err, proc.returncode

    assert aio.run(main()) == (b"INPUT\n", b"err\n", 3)


def test_shell_and_wait():
    async def main():
        proc = await aio.create_subprocess_shell(
            "echo one; echo two 1>&2; exit 5",
            stdout=aio_subprocess.PIPE,
            stderr=aio_subprocess.STDOUT,
        )
        lines = [line async for line in proc.stdout]
        return sorted(lines), await proc.wait()

    assert aio.run(main()) == ([b"one\n", b"two\n"], 5)


def test_streaming_lines_while_running():
    async def main():
        proc = await aio.create_subprocess_exec(
            PY,
            "-u",
            "-c",
            "import sys\nfor line in sys.stdin: print(line.strip()[::-1], flush=True)",
            stdin=aio_subprocess.PIPE,
            stdout=aio_subprocess.PIPE,
        )
        replies = []
        for word in (b"abc\n", b"hello\n"):
            proc.stdin.write(word)
            await proc.stdin.drain()
            replies.append(await proc.stdout.readline())
        proc.stdin.close()
        await proc.wait()
        return replies, proc.returncode

    assert aio.run(main()) == ([b"cba\n", b"olleh\n"], 0)


def test_terminate_kill_and_send_signal():
    async def main():
        code = "import time; time.sleep(60)"
        proc = await aio.create_subprocess_exec(PY, "-c", code)
        proc.terminate()
        terminated = await proc.wait()
        proc = await aio.create_subprocess_exec(PY, "-c", code)
        proc.kill()
        killed = await proc.wait()
        proc = await aio.create_subprocess_exec(PY, "-c", code)
        proc.send_signal(signal.SIGUSR1)
        interrupted = await proc.wait()
        return terminated, killed, interrupted

    assert aio.run(main()) == (-signal.SIGTERM, -signal.SIGKILL, -signal.SIGUSR1)


def test_wait_is_cancellable_and_process_keeps_running():
    async def main():
        proc = await aio.create_subprocess_exec(PY, "-c", "import time; time.sleep(60)")
        with pytest.raises(TimeoutError):
            await aio.wait_for(proc.wait(), 0.05)
        assert proc.returncode is None
        proc.kill()
        return await proc.wait()

    assert aio.run(main()) == -signal.SIGKILL


def test_missing_program():
    async def main():
        with pytest.raises(FileNotFoundError):
            await aio.create_subprocess_exec("/nonexistent/program")

    aio.run(main())


def test_subprocess_argument_errors():
    async def main():
        loop = aio.get_running_loop()
        with pytest.raises(ValueError, match="bufsize must be 0"):
            await loop.subprocess_exec(asyncio.SubprocessProtocol, PY, bufsize=1)
        with pytest.raises(ValueError, match="cmd must be a string"):
            await loop.subprocess_shell(asyncio.SubprocessProtocol, [PY])

    aio.run(main())


def test_subprocess_protocol_callbacks():
    log = []

    class Proto(asyncio.SubprocessProtocol):
        def __init__(self, done):
            self.done = done

        def connection_made(self, transport):
            log.append("made")

        def pipe_data_received(self, fd, data):
            log.append((fd, data))

        def process_exited(self):
            log.append("exited")

        def connection_lost(self, exc):
            log.append("lost")
            self.done.set_result(None)

    async def main():
        loop = aio.get_running_loop()
        done = loop.create_future()
        transport, _ = await loop.subprocess_exec(
            lambda: Proto(done), PY, "-c", "print('hi')", stdin=None, stderr=None
        )
        await done
        code = transport.get_returncode()
        transport.close()
        return code

    assert aio.run(main()) == 0
    assert log[0] == "made" and log[-1] == "lost" and "exited" in log
    assert b"".join(entry[1] for entry in log if isinstance(entry, tuple)) == b"hi\n"


def test_read_and_write_pipes():
    async def main():
        loop = aio.get_running_loop()
        read_fd, write_fd = os.pipe()
        reader = asyncio.StreamReader()
        read_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", 0)
        )
        write_transport, _ = await loop.connect_write_pipe(
            asyncio.Protocol, os.fdopen(write_fd, "wb", 0)
        )
        write_transport.write(b"through ")
        write_transport.write(b"a pipe")
        write_transport.close()
        data = await reader.read()
        read_transport.close()
        return data

    assert aio.run(main()) == b"through a pipe"


def test_pipe_transports_state_protocol_and_unclosed_warning():
    lost = []

    class Recording(asyncio.Protocol):
        def connection_lost(self, exc):
            lost.append(exc)

    async def main():
        loop = aio.get_running_loop()
        read_fd, write_fd = os.pipe()
        reader, first = await loop.connect_read_pipe(Recording, os.fdopen(read_fd, "rb", 0))
        writer, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(write_fd, "wb", 0))
        assert "open" in repr(reader) and "open" in repr(writer)
        assert reader.get_protocol() is first
        second = Recording()
        reader.set_protocol(second)
        assert reader.get_protocol() is second and not reader.is_closing()
        reader.close()
        assert reader.is_closing() and "closing" in repr(reader)
        await aio.sleep(0)
        assert "closed" in repr(reader) and lost == [None]
        # The finalizer of a transport that was not closed warns and closes
        # its pipe (called directly: the loop's reader registration keeps the
        # transport alive, as in asyncio).
        with pytest.warns(ResourceWarning, match="unclosed transport"):
            writer.__del__()
        writer.abort()
        await aio.sleep(0)
        assert "closed" in repr(writer)

    aio.run(main())


def test_pipe_transport_rejects_regular_files(tmp_path):
    path = tmp_path / "regular"
    path.write_bytes(b"")

    async def main():
        loop = aio.get_running_loop()
        with open(path, "rb") as f, pytest.raises(ValueError, match="Pipe transport"):
            await loop.connect_read_pipe(asyncio.Protocol, f)

    aio.run(main())


def test_write_pipe_ends_once_even_when_aborted_twice():
    lost = []
    errors = []

    class Recording(asyncio.Protocol):
        def connection_lost(self, exc):
            lost.append(exc)

    async def main():
        loop = aio.get_running_loop()
        loop.set_exception_handler(lambda loop, context: errors.append(context))
        read_fd, write_fd = os.pipe()
        writer, _ = await loop.connect_write_pipe(Recording, os.fdopen(write_fd, "wb", 0))
        # Fill the pipe so that the rest waits in the transport's queue.
        writer.write(b"x" * (1 << 20))
        assert writer.get_write_buffer_size() > 0
        writer.close()
        assert writer.is_closing() and writer.get_write_buffer_size() > 0
        writer.abort()
        writer.abort()
        await aio.sleep(0)
        await aio.sleep(0)
        assert writer.get_write_buffer_size() == 0
        os.close(read_fd)

    aio.run(main())
    assert lost == [None] and errors == []


def test_write_pipe_close_sends_the_queue_first_with_flow_control():
    events = []

    class Writer(asyncio.Protocol):
        def pause_writing(self):
            events.append("pause")

        def resume_writing(self):
            events.append("resume")

        def connection_lost(self, exc):
            events.append(("lost", exc))

    payload = bytes(range(256)) * 4096  # 1 MiB: more than a pipe holds

    async def main():
        loop = aio.get_running_loop()
        read_fd, write_fd = os.pipe()
        writer, _ = await loop.connect_write_pipe(Writer, os.fdopen(write_fd, "wb", 0))
        writer.write(payload)
        assert writer.get_write_buffer_size() > 0 and events == ["pause"]
        writer.close()
        writer.write(b"dropped: the pipe is closing")
        reader = asyncio.StreamReader()
        read_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", 0)
        )
        data = await reader.read()
        read_transport.close()
        return data

    assert aio.run(main()) == payload
    assert events == ["pause", "resume", ("lost", None)]
