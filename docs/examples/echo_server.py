"""A line echo server over TCP, with a per-client idle timeout and a clean
shutdown, and a client that talks to it.

Every line a client sends comes back prefixed with "echo: ". A client that
sends nothing for IDLE seconds is told so and disconnected. When the server
shuts down (Ctrl-C, or the end of the demo), every connected client gets a
"server shutting down" line before its connection closes.

Run it:

    python docs/examples/echo_server.py --demo
        starts the server on a free port, runs three clients against it
        (one chats, one goes idle, one is still connected at shutdown),
        shuts the server down and exits
    python docs/examples/echo_server.py --port 8007
        serves until Ctrl-C
    python docs/examples/echo_server.py --connect 8007 hello world
        sends "hello" and "world" to a running server, prints the replies
"""

from __future__ import annotations

import argparse
import functools
import itertools

import tether

IDLE_TIMEOUT = 30.0  # seconds; --idle-timeout changes it
GOODBYE_TIMEOUT = 1.0  # seconds a closing connection may take to say goodbye
MAX_LINE = 4096


class LineStream:
    """Reads newline-terminated lines from a stream, writes lines to it."""

    def __init__(self, stream: tether.SocketStream) -> None:
        self.stream = stream
        self._buffer = bytearray()

    async def read_line(self) -> str | None:
        """The next line without its newline, or None at end of stream."""
        while b"\n" not in self._buffer:
            if len(self._buffer) > MAX_LINE:
                raise ValueError("line too long")
            data = await self.stream.receive_some()
            if not data:
                return None
            self._buffer += data
        line, _, rest = self._buffer.partition(b"\n")
        self._buffer = bytearray(rest)
        return line.decode()

    async def write_line(self, text: str) -> None:
        await self.stream.send_all(text.encode() + b"\n")


# ---------------------------------------------------------------- server


class EchoServer:
    def __init__(self, idle_timeout: float) -> None:
        self.idle_timeout = idle_timeout
        self.served = 0
        self._numbers = itertools.count(1)

    async def handle(self, stream: tether.SocketStream) -> None:
        """One connection: echo lines until the client leaves, goes idle,
        or the server shuts down. Errors of one connection stay there."""
        number = next(self._numbers)
        self.served += 1
        lines = LineStream(stream)
        print(f"server: client #{number} connected")
        try:
            while True:
                with tether.move_on_after(self.idle_timeout) as idle:
                    line = await lines.read_line()
                if idle.cancelled_caught:
                    await lines.write_line(f"idle for {self.idle_timeout}s, bye")
                    print(f"server: client #{number} idle, disconnected")
                    return
                if line is None:
                    print(f"server: client #{number} left")
                    return
                await lines.write_line(f"echo: {line}")
        except tether.Cancelled:
            # The server is shutting down: say so before the stream closes.
            # Shielded, since this whole task is being cancelled, and bounded,
            # so that a client that does not read cannot hold up shutdown.
            with tether.move_on_after(GOODBYE_TIMEOUT, shield=True):
                await lines.write_line("server shutting down")
                print(f"server: told client #{number} about the shutdown")
            raise
        except (tether.BrokenResourceError, ValueError) as error:
            print(f"server: client #{number} dropped ({error})")


async def serve(
    port: int,
    idle_timeout: float,
    *,
    task_status: tether.TaskStatus[int] = tether.TASK_STATUS_IGNORED,
) -> None:
    """Serve on 127.0.0.1:`port` until cancelled; reports the port (useful
    with port 0) through `nursery.start`."""
    server = EchoServer(idle_timeout)
    try:
        async with tether.open_nursery() as nursery:
            serve_tcp = functools.partial(tether.serve_tcp, host="127.0.0.1")
            listeners = await nursery.start(serve_tcp, server.handle, port)
            bound_port = listeners[0].socket.getsockname()[1]
            print(f"server: listening on 127.0.0.1:{bound_port}")
            task_status.started(bound_port)
    finally:
        print(f"server: stopped after {server.served} connections")


# ---------------------------------------------------------------- client


async def run_client(port: int, messages: list[str]) -> list[str]:
    """Send each message, collect each reply; return the replies."""
    async with await tether.open_tcp_stream("127.0.0.1", port) as stream:
        lines = LineStream(stream)
        replies = []
        for message in messages:
            await lines.write_line(message)
            reply = await lines.read_line()
            if reply is None:
                break
            replies.append(reply)
        return replies


# ---------------------------------------------------------------- demo


async def chatty_client(port: int) -> None:
    for reply in await run_client(port, ["hello", "how are you?", "bye"]):
        print(f"alice: got {reply!r}")


async def idle_client(port: int) -> None:
    async with await tether.open_tcp_stream("127.0.0.1", port) as stream:
        lines = LineStream(stream)
        # Says nothing: the server gives up after its idle timeout.
        print(f"bob: got {await lines.read_line()!r}")
        print(f"bob: then {await lines.read_line()!r} (end of stream)")


async def lingering_client(port: int, connected: tether.Event) -> None:
    async with await tether.open_tcp_stream("127.0.0.1", port) as stream:
        lines = LineStream(stream)
        await lines.write_line("I'll stay a while")
        print(f"carol: got {await lines.read_line()!r}")
        connected.set()
        # Keeps talking (so she is never idle) until the server goes away.
        while True:
            with tether.move_on_after(0.2):
                reply = await lines.read_line()
                if reply != "echo: still here":
                    print(f"carol: got {reply!r}")
                    return
            await lines.write_line("still here")


async def demo() -> None:
    server_scope = tether.CancelScope()

    async def run_server(task_status: tether.TaskStatus[int]) -> None:
        with server_scope:
            await serve(0, 0.5, task_status=task_status)

    async with tether.open_nursery() as nursery:
        port = await nursery.start(run_server)
        carol_connected = tether.Event()
        nursery.start_soon(lingering_client, port, carol_connected)
        await carol_connected.wait()
        async with tether.open_nursery() as first_two:
            first_two.start_soon(chatty_client, port)
            first_two.start_soon(idle_client, port)
        # alice and bob are done; carol is still connected.
        server_scope.cancel()
    print("demo: done")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo", action="store_true", help="server and clients in one run")
    parser.add_argument("--port", type=int, default=8007)
    parser.add_argument("--idle-timeout", type=float, default=IDLE_TIMEOUT)
    parser.add_argument("--connect", type=int, metavar="PORT", help="run the client")
    parser.add_argument("messages", nargs="*", help="what the client sends")
    args = parser.parse_args()
    if args.demo:
        tether.run(demo)
    elif args.connect is not None:
        replies = tether.run(run_client, args.connect, args.messages)
        print("\n".join(replies))
    else:
        try:
            # Ctrl-C goes to the main task at a checkpoint, which cancels
            # the handlers so that each says goodbye. By default it would be
            # raised wherever user code happens to run, possibly inside a
            # handler, which would then die without a word.
            tether.run(
                serve,
                args.port,
                args.idle_timeout,
                restrict_keyboard_interrupt_to_checkpoints=True,
            )
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
