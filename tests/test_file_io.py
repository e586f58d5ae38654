"""tether.open_file and tether.wrap_file against a temporary folder."""

import inspect
import io
import threading

import pytest

import tether
from tether.testing import assert_checkpoints

pytestmark = [pytest.mark.tether, pytest.mark.timeout(20)]


async def test_write_then_read_back(tmp_path):
    path = tmp_path / "notes.txt"
    async with await tether.open_file(path, "w") as f:
        assert not f.closed
        assert f.name == str(path)
        assert f.mode == "w"
        assert f.writable() and not f.readable()
        assert await f.write("first line\n") == len("first line\n")
        await f.writelines(["second\n", "third\n"])
    assert f.closed
    async with await tether.open_file(path) as f:
        assert await f.readline() == "first line\n"
        assert await f.read() == "second\nthird\n"
        assert await f.seek(0) == 0
        assert await f.tell() == 0


async def test_async_iteration_yields_lines(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_text("a\nb\nc")
    async with await tether.open_file(path) as f:
        assert [line async for line in f] == ["a\n", "b\n", "c"]


async def test_binary_mode_and_open_arguments(tmp_path):
    path = tmp_path / "data.bin"
    async with await tether.open_file(path, "wb", buffering=0) as f:
        assert isinstance(f.wrapped, io.FileIO)
        await f.write(b"\x00\x01\x02")
    async with await tether.open_file(path, "rb") as f:
        assert await f.read1(2) == b"\x00\x01"
        buffer = bytearray(4)
        assert await f.readinto(buffer) == 1


async def test_every_blocking_call_is_a_checkpoint(tmp_path):
    with assert_checkpoints():
        f = await tether.open_file(tmp_path / "f.txt", "w")
    with assert_checkpoints():
        await f.write("x")
    with assert_checkpoints():
        await f.aclose()


async def test_a_call_cancelled_before_its_thread_starts_does_nothing(tmp_path):
    path = tmp_path / "untouched.txt"
    f = await tether.open_file(path, "w")
    with tether.CancelScope() as scope:
        scope.cancel()
        await f.write("never written")
    assert scope.cancelled_caught
    await f.aclose()
    assert path.read_text() == ""


async def test_aclose_closes_even_when_cancelled(tmp_path):
    f = await tether.open_file(tmp_path / "f.txt", "w")
    await f.write("kept")
    with tether.CancelScope() as scope:
        scope.cancel()
        with pytest.raises(tether.Cancelled):
            await f.aclose()
    assert f.closed
    assert (tmp_path / "f.txt").read_text() == "kept"


async def test_wrap_file_forwards_what_the_file_has():
    f = tether.wrap_file(io.StringIO("in memory"))
    assert await f.read(2) == "in"
    assert f.getvalue() == "in memory"
    assert "getvalue" in dir(f) and "read" in dir(f)
    # BytesIO has no `encoding`: neither has the wrapper.
    binary = tether.wrap_file(io.BytesIO(b""))
    assert not hasattr(binary, "encoding")
    assert "encoding" not in dir(binary)


async def test_an_async_method_is_made_once_per_wrapper():
    f = tether.wrap_file(io.StringIO())
    assert f.write is f.write
    assert f.write.__name__ == "write"
    assert "worker thread" in f.write.__doc__


def test_attributes_outside_the_io_interface_are_not_forwarded():
    class Odd(io.StringIO):
        def unusual(self):
            return "hidden"

    f = tether.wrap_file(Odd())
    assert f.wrapped.unusual() == "hidden"
    with pytest.raises(AttributeError, match="unusual"):
        f.unusual  # noqa: B018


def test_wrap_file_refuses_what_is_not_a_file():
    with pytest.raises(TypeError, match="not a file object"):
        tether.wrap_file("a string")

    class WriteOnly:
        def write(self, data):
            pass

        def close(self):
            pass

    tether.wrap_file(WriteOnly())  # close + write is enough
    del WriteOnly.write
    with pytest.raises(TypeError):
        tether.wrap_file(WriteOnly())


async def test_detach_returns_the_wrapped_raw_file(tmp_path):
    path = tmp_path / "raw.bin"
    path.write_bytes(b"raw")
    with open(path, "rb", buffering=0) as raw:
        f = tether.wrap_file(io.BufferedReader(raw))
        detached = await f.detach()
        assert detached.wrapped is raw
        assert await detached.read() == b"raw"


async def test_open_file_reports_os_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        await tether.open_file(tmp_path / "missing" / "file.txt")


def test_the_interface_is_that_of_the_io_classes():
    # Every public method of a text file is offered: the cheap ones as they
    # are, every other one (apart from close/detach) as an async method.
    f = tether.wrap_file(io.TextIOWrapper(io.BytesIO(), encoding="utf-8"))
    cheap = {"fileno", "isatty", "readable", "writable", "seekable"}
    for name in dir(io.TextIOWrapper):
        if name.startswith("_") or name in {"close", "detach"}:
            continue
        if not hasattr(f.wrapped, name):  # `name`: a BytesIO buffer has none
            assert not hasattr(f, name)
            continue
        member = getattr(f, name)
        if name in cheap or not callable(getattr(f.wrapped, name)):
            assert not inspect.iscoroutinefunction(member), name
        else:
            assert inspect.iscoroutinefunction(member), name


async def test_reconfigure_and_write_through_are_forwarded():
    f = tether.wrap_file(io.TextIOWrapper(io.BytesIO(), encoding="utf-8"))
    assert f.write_through is False
    await f.reconfigure(write_through=True)
    assert f.write_through is True
    await f.write("x")
    assert f.wrapped.buffer.getvalue() == b"x"


def test_the_wrapper_class_documents_the_interface():
    assert "read" in dir(tether.wrap_file(io.StringIO()))
    members = dir(type(tether.wrap_file(io.StringIO())))
    assert {"read", "write", "seek", "name", "closed", "fileno"} <= set(members)


async def test_an_async_method_names_what_it_wraps():
    f = tether.wrap_file(io.StringIO("abc"))
    assert f.read.__qualname__ == "AsyncIOWrapper.read"
    assert "io.StringIO.read" in f.read.__doc__
    assert "checkpoint" in f.read.__doc__


async def test_a_missing_member_says_the_wrapped_file_lacks_it():
    f = tether.wrap_file(io.BytesIO())
    with pytest.raises(AttributeError, match="BytesIO has none"):
        f.encoding  # noqa: B018
    with pytest.raises(AttributeError, match=r"\.wrapped"):
        f.no_such_thing  # noqa: B018


async def test_a_call_running_when_cancelled_completes(tmp_path):
    # The call is already in its thread when the scope is cancelled: it
    # completes (the data is written) and Cancelled comes at the next
    # checkpoint, as with to_thread.run_sync.
    started = threading.Event()
    release = threading.Event()

    class SlowWriter(io.StringIO):
        def write(self, text):
            started.set()
            release.wait()
            return super().write(text)

    f = tether.wrap_file(SlowWriter())
    written = None
    async with tether.open_nursery() as nursery:
        with tether.CancelScope() as scope:

            async def cancel_once_running():
                await tether.to_thread.run_sync(started.wait)
                scope.cancel()
                release.set()

            nursery.start_soon(cancel_once_running)
            written = await f.write("kept")
            await tether.lowlevel.checkpoint()
    assert scope.cancelled_caught
    assert written == 4
    assert f.wrapped.getvalue() == "kept"
