"""tether.lowlevel.FdStream over real pipes (os.pipe)."""

import errno
import gc
import os
import select

import pytest

import tether
from tether import BrokenResourceError, BusyResourceError, ClosedResourceError
from tether.lowlevel import FdStream
from tether.testing import assert_checkpoints, check_one_way_stream, wait_all_tasks_blocked

pytestmark = [
    pytest.mark.tether,
    pytest.mark.timeout(20),
    pytest.mark.skipif(os.name != "posix", reason="FdStream needs POSIX pipes"),
]


def pipe_streams():
    """(sending stream, receiving stream) over one new pipe."""
    read_fd, write_fd = os.pipe()
    return FdStream(write_fd), FdStream(read_fd)


def fill(stream):
    """Write into the pipe until it is full. Each write is bigger than
    PIPE_BUF, so that a partial write is allowed and the pipe really fills."""
    chunk = b"x" * (2 * getattr(select, "PIPE_BUF", 4096))
    try:
        while True:
            os.write(stream.fileno(), chunk)
    except BlockingIOError:
        pass


def assert_fd_closed(fd):
    with pytest.raises(OSError) as info:
        os.fstat(fd)
    assert info.value.errno == errno.EBADF


async def test_bytes_sent_arrive_and_end_of_stream_follows_close():
    send, receive = pipe_streams()
    async with send, receive:
        await send.send_all(b"hello ")
        await send.send_all(bytearray(b"pipe"))
        await send.send_all(memoryview(b"!"))
        await send.aclose()
        received = b""
        while chunk := await receive.receive_some():
            received += chunk
        assert received == b"hello pipe!"
        # The end stays the end.
        assert await receive.receive_some(10) == b""


async def test_receive_some_returns_at_most_max_bytes():
    send, receive = pipe_streams()
    async with send, receive:
        await send.send_all(b"abcdef")
        assert await receive.receive_some(4) == b"abcd"
        assert await receive.receive_some(4) == b"ef"


async def test_a_large_send_waits_for_the_reader():
    send, receive = pipe_streams()
    size = 1 << 20  # much more than a pipe holds
    received = bytearray()

    async def reader():
        while len(received) < size:
            received.extend(await receive.receive_some())

    async with send, receive, tether.open_nursery() as nursery:
        nursery.start_soon(reader)
        await send.send_all(bytes(range(256)) * (size // 256))
    assert received == bytes(range(256)) * (size // 256)


async def test_typed_memoryview_is_sent_as_its_bytes():
    send, receive = pipe_streams()
    async with send, receive:
        numbers = memoryview(bytearray(8)).cast("I")  # 2 items of 4 bytes
        numbers[0] = 1
        numbers[1] = 2
        await send.send_all(numbers)
        assert await receive.receive_some(100) == numbers.tobytes()


async def test_bad_max_bytes_is_refused():
    send, receive = pipe_streams()
    async with send, receive:
        with pytest.raises(ValueError, match="max_bytes must be integer >= 1"):
            await receive.receive_some(0)
        with pytest.raises(TypeError, match="max_bytes"):
            await receive.receive_some(1.5)


def test_a_non_integer_fd_is_refused():
    with pytest.raises(TypeError, match="file descriptor number"):
        FdStream(None)


async def test_every_operation_is_a_checkpoint():
    send, receive = pipe_streams()
    async with send, receive:
        with assert_checkpoints():
            await send.send_all(b"")
        with assert_checkpoints():
            await send.send_all(b"x")
        with assert_checkpoints():
            await receive.receive_some(1)
        with assert_checkpoints():
            await send.wait_send_all_might_not_block()
        with assert_checkpoints():
            await send.aclose()


async def test_closing_wakes_a_waiting_receiver_with_closed_resource_error():
    send, receive = pipe_streams()
    async with send, receive, tether.open_nursery() as nursery:
        errors = []

        async def receive_forever():
            try:
                await receive.receive_some()
            except ClosedResourceError as exc:
                errors.append(exc)

        nursery.start_soon(receive_forever)
        await wait_all_tasks_blocked()
        await receive.aclose()
    assert len(errors) == 1
    assert receive.fileno() == -1


async def test_closing_wakes_a_blocked_sender_with_closed_resource_error():
    send, receive = pipe_streams()
    fill(send)
    async with send, receive, tether.open_nursery() as nursery:
        errors = []

        async def send_more():
            try:
                await send.send_all(b"y" * 100_000)
            except ClosedResourceError as exc:
                errors.append(exc)

        nursery.start_soon(send_more)
        await wait_all_tasks_blocked()
        send.close()
    assert len(errors) == 1


async def test_use_after_close_raises_closed_resource_error():
    send, receive = pipe_streams()
    await send.aclose()
    await receive.aclose()
    await receive.aclose()  # idempotent
    with pytest.raises(ClosedResourceError):
        await send.send_all(b"")
    with pytest.raises(ClosedResourceError):
        await send.wait_send_all_might_not_block()
    with pytest.raises(ClosedResourceError):
        await receive.receive_some()
    assert send.fileno() == receive.fileno() == -1


async def test_sending_into_a_pipe_nobody_reads_is_broken():
    send, receive = pipe_streams()
    await receive.aclose()
    async with send:
        with pytest.raises(BrokenResourceError) as info:
            await send.send_all(b"lost")
    assert isinstance(info.value.__cause__, BrokenPipeError)


async def test_an_unexpected_read_error_is_broken():
    send, receive = pipe_streams()
    async with send, receive:
        directory = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
        try:
            # The receiving fd number now refers to a directory: read() fails
            # with EISDIR, which is neither "would block" nor "closed".
            os.dup2(directory, receive.fileno())
            with pytest.raises(BrokenResourceError) as info:
                await receive.receive_some()
        finally:
            os.close(directory)
    assert isinstance(info.value.__cause__, IsADirectoryError)


async def test_two_concurrent_receivers_are_refused():
    send, receive = pipe_streams()
    async with send, receive, tether.open_nursery() as nursery:
        nursery.start_soon(receive.receive_some)
        await wait_all_tasks_blocked()
        with pytest.raises(BusyResourceError):
            await receive.receive_some()
        nursery.cancel_scope.cancel()


async def test_two_concurrent_senders_are_refused():
    send, receive = pipe_streams()
    fill(send)
    async with send, receive, tether.open_nursery() as nursery:
        nursery.start_soon(send.send_all, b"more")
        await wait_all_tasks_blocked()
        with pytest.raises(BusyResourceError):
            await send.send_all(b"even more")
        with pytest.raises(BusyResourceError):
            await send.wait_send_all_might_not_block()
        nursery.cancel_scope.cancel()


async def test_a_cancelled_receive_loses_nothing(autojump_clock):
    send, receive = pipe_streams()
    async with send, receive:
        with tether.move_on_after(1) as scope:
            await receive.receive_some()
        assert scope.cancelled_caught
        await send.send_all(b"later")
        assert await receive.receive_some() == b"later"


async def test_closing_an_old_stream_again_does_not_touch_a_reused_fd_number():
    send, receive = pipe_streams()
    old_number = receive.fileno()
    await send.aclose()
    await receive.aclose()
    read_fd, write_fd = os.pipe()
    if read_fd != old_number:
        os.dup2(read_fd, old_number)
        os.close(read_fd)
    async with FdStream(old_number) as reused, tether.open_nursery() as nursery:
        outcome = []

        async def read_to_end():
            outcome.append(await reused.receive_some())

        nursery.start_soon(read_to_end)
        await wait_all_tasks_blocked()
        await receive.aclose()  # the old stream: must not wake the new reader
        await wait_all_tasks_blocked()
        os.close(write_fd)
    assert outcome == [b""]


def test_a_dropped_stream_closes_its_fd():
    send, receive = pipe_streams()
    numbers = (send.fileno(), receive.fileno())
    del send, receive
    gc.collect()
    for fd in numbers:
        assert_fd_closed(fd)


async def test_closing_restores_the_blocking_mode_of_shared_descriptions():
    read_fd, write_fd = os.pipe()
    duplicate = os.dup(write_fd)  # shares the open file description
    try:
        assert os.get_blocking(duplicate)
        stream = FdStream(write_fd)
        assert not os.get_blocking(duplicate)
        await stream.aclose()
        assert os.get_blocking(duplicate)
        assert_fd_closed(write_fd)
    finally:
        os.close(duplicate)
        os.close(read_fd)


async def make_pipe():
    """A stream maker for the conformance checks: a fresh pipe."""
    return pipe_streams()


async def make_clogged_pipe():
    """A pipe whose buffer is already full, so that the sender blocks until
    the receiver reads."""
    send, receive = pipe_streams()
    fill(send)
    return send, receive


async def test_pipes_pass_the_one_way_stream_conformance_checks():
    await check_one_way_stream(make_pipe, make_clogged_pipe)
