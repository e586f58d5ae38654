"""tether.StapledStream and tether.aclose_forcefully."""

import pytest

import tether
from tether.abc import ReceiveStream, SendStream
from tether.testing import assert_checkpoints

pytestmark = pytest.mark.tether


class LoggingSendStream(SendStream):
    def __init__(self, log, fail_close=False):
        self.log = log
        self.fail_close = fail_close

    async def send_all(self, data):
        self.log.append(("send_all", bytes(data)))

    async def wait_send_all_might_not_block(self):
        self.log.append("wait_send_all_might_not_block")

    async def aclose(self):
        self.log.append("close send")
        if self.fail_close:
            raise KeyError("send side")


class HalfCloseableLoggingSendStream(LoggingSendStream):
    async def send_eof(self):
        self.log.append("send_eof")


class LoggingReceiveStream(ReceiveStream):
    def __init__(self, log, fail_close=False):
        self.log = log
        self.fail_close = fail_close

    async def receive_some(self, max_bytes=None):
        self.log.append(("receive_some", max_bytes))
        return b"data"

    async def aclose(self):
        self.log.append("close receive")
        if self.fail_close:
            raise ValueError("receive side")


async def test_each_method_goes_to_the_right_stream():
    log = []
    send, receive = LoggingSendStream(log), LoggingReceiveStream(log)
    stapled = tether.StapledStream(send, receive)
    assert stapled.send_stream is send
    assert stapled.receive_stream is receive
    assert isinstance(stapled, tether.abc.HalfCloseableStream)

    await stapled.send_all(b"abc")
    await stapled.wait_send_all_might_not_block()
    assert await stapled.receive_some(7) == b"data"
    assert await stapled.receive_some() == b"data"
    await stapled.aclose()
    assert log == [
        ("send_all", b"abc"),
        "wait_send_all_might_not_block",
        ("receive_some", 7),
        ("receive_some", None),
        "close send",
        "close receive",
    ]


async def test_send_eof_uses_the_send_streams_own_send_eof_when_it_has_one():
    log = []
    stapled = tether.StapledStream(HalfCloseableLoggingSendStream(log), LoggingReceiveStream(log))
    await stapled.send_eof()
    assert log == ["send_eof"]


async def test_send_eof_closes_a_one_way_send_stream():
    log = []
    stapled = tether.StapledStream(LoggingSendStream(log), LoggingReceiveStream(log))
    await stapled.send_eof()
    assert log == ["close send"]


async def test_the_receive_stream_is_closed_even_if_closing_the_send_stream_fails():
    log = []
    stapled = tether.StapledStream(
        LoggingSendStream(log, fail_close=True), LoggingReceiveStream(log)
    )
    with pytest.raises(KeyError):
        await stapled.aclose()
    assert log == ["close send", "close receive"]

    log.clear()
    both_fail = tether.StapledStream(
        LoggingSendStream(log, fail_close=True), LoggingReceiveStream(log, fail_close=True)
    )
    with pytest.raises(ValueError) as excinfo:
        await both_fail.aclose()
    assert isinstance(excinfo.value.__context__, KeyError)
    assert log == ["close send", "close receive"]


def test_arguments_must_be_streams_of_the_right_direction():
    log = []
    with pytest.raises(TypeError, match="SendStream"):
        tether.StapledStream(LoggingReceiveStream(log), LoggingReceiveStream(log))
    with pytest.raises(TypeError, match="ReceiveStream"):
        tether.StapledStream(LoggingSendStream(log), LoggingSendStream(log))


async def test_aclose_forcefully_closes_without_waiting_and_hides_the_cancellation():
    events = []

    class SlowToClose(tether.abc.AsyncResource):
        async def aclose(self):
            events.append("closing")
            try:
                await tether.sleep_forever()  # a graceful close that never ends
            finally:
                events.append("closed")

    with assert_checkpoints():
        await tether.aclose_forcefully(SlowToClose())
    assert events == ["closing", "closed"]


async def test_aclose_forcefully_lets_other_errors_through():
    class FailsToClose(tether.abc.AsyncResource):
        async def aclose(self):
            raise OSError("disk on fire")

    with pytest.raises(OSError, match="disk on fire"):
        await tether.aclose_forcefully(FailsToClose())
