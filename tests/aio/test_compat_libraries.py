"""Unmodified asyncio libraries on tether's loop: server and client round
trips on 127.0.0.1 with aiohttp, httpx, websockets, uvicorn and anyio.

The libraries are optional (``pip install -e '.[compat]'``): each test skips
when its library is not installed. Every test runs its program four ways:
through tether's event-loop policy (``asyncio.run`` as a program would call
it) and through ``asyncio.Runner(loop_factory=tether.aio.new_event_loop)``,
each in normal and in debug mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

import pytest

from tether import aio

MODES = ["policy", "policy-debug", "runner", "runner-debug"]


@pytest.fixture(params=MODES)
def run_on_tether(request):
    """``run_on_tether(main)`` runs the coroutine function `main` on a
    tether loop in one of the four ways, checks that it really ran on one,
    and returns its result."""
    how = request.param
    debug = how.endswith("debug")

    def run(main):
        async def checked():
            assert isinstance(asyncio.get_running_loop(), aio.TetherEventLoop)
            return await main()

        if how.startswith("policy"):
            saved = asyncio.get_event_loop_policy()
            asyncio.set_event_loop_policy(aio.EventLoopPolicy())
            try:
                return asyncio.run(checked(), debug=debug)
            finally:
                asyncio.set_event_loop_policy(saved)
        with asyncio.Runner(debug=debug, loop_factory=aio.new_event_loop) as runner:
            return runner.run(checked())

    return run


async def _http_get(port: int, path: str = "/") -> bytes:
    """A minimal HTTP/1.1 GET over asyncio streams; returns the body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return body


@contextlib.asynccontextmanager
async def _plain_http_server(body: bytes):
    """An HTTP server written with asyncio streams only (for clients)."""

    async def handle(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (len(body), body)
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def test_aiohttp_server_client_and_websocket(run_on_tether):
    web = pytest.importorskip("aiohttp.web")
    aiohttp = pytest.importorskip("aiohttp")

    async def hello(request):
        return web.Response(text=f"hello {request.query.get('name', '')}")

    async def websocket(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            await ws.send_str(message.data.upper())
        return ws

    async def main():
        app = web.Application()
        app.router.add_get("/", hello)
        app.router.add_get("/ws", websocket)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        try:
            async with aiohttp.ClientSession() as session:
                texts = await asyncio.gather(*(self_get(session, port, n) for n in range(5)))
                async with session.ws_connect(f"http://127.0.0.1:{port}/ws") as ws:
                    await ws.send_str("over a websocket")
                    echoed = (await ws.receive()).data
        finally:
            await runner.cleanup()
        return texts, echoed

    async def self_get(session, port, n):
        async with session.get(f"http://127.0.0.1:{port}/", params={"name": str(n)}) as r:
            return await r.text()

    texts, echoed = run_on_tether(main)
    assert texts == [f"hello {n}" for n in range(5)]
    assert echoed == "OVER A WEBSOCKET"


def test_aiohttp_test_utils_server_on_a_blocking_socket(run_on_tether):
    # aiohttp's test server hands the loop a socket it made itself (and its
    # test case runs in debug mode).
    web = pytest.importorskip("aiohttp.web")
    test_utils = pytest.importorskip("aiohttp.test_utils")

    async def main():
        async def handler(request):
            return web.Response(text="from the test server")

        app = web.Application()
        app.router.add_get("/", handler)
        async with test_utils.TestClient(test_utils.TestServer(app)) as client:
            response = await client.get("/")
            return await response.text()

    assert run_on_tether(main) == "from the test server"


def test_httpx_client(run_on_tether):
    httpx = pytest.importorskip("httpx")

    async def main():
        async with _plain_http_server(b"served to httpx") as port:
            async with httpx.AsyncClient() as client:
                response = await client.get(f"http://127.0.0.1:{port}/")
                return response.status_code, response.content

    assert run_on_tether(main) == (200, b"served to httpx")


def test_websockets_server_and_client(run_on_tether):
    pytest.importorskip("websockets")
    server_module = pytest.importorskip("websockets.asyncio.server")
    client_module = pytest.importorskip("websockets.asyncio.client")

    async def echo(connection):
        async for message in connection:
            await connection.send(f"echo: {message}")

    async def main():
        async with server_module.serve(echo, "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            async with client_module.connect(f"ws://127.0.0.1:{port}") as connection:
                replies = []
                for word in ("one", "two"):
                    await connection.send(word)
                    replies.append(await connection.recv())
                return replies

    assert run_on_tether(main) == ["echo: one", "echo: two"]


def test_uvicorn_serves_an_asgi_app_on_a_given_socket(run_on_tether):
    uvicorn = pytest.importorskip("uvicorn")

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"12")],
            }
        )
        await send({"type": "http.response.body", "body": b"from uvicorn"})

    async def main():
        sock = socket.create_server(("127.0.0.1", 0))  # a blocking socket
        port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.001)
        try:
            return await _http_get(port)
        finally:
            server.should_exit = True
            await serving
            sock.close()

    assert run_on_tether(main) == b"from uvicorn"


def test_anyio_on_tethers_loop(run_on_tether):
    anyio = pytest.importorskip("anyio")

    async def main():
        async def serve(stream):
            async with stream:
                await stream.send(b"anyio: " + await stream.receive())

        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        send, receive = anyio.create_memory_object_stream(10)
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, serve)
            async with await anyio.connect_tcp("127.0.0.1", port) as client:
                await client.send(b"hello")
                reply = await client.receive()
            async with send:
                await send.send(reply)
            with anyio.fail_after(5):
                await anyio.to_thread.run_sync(lambda: None)
            tg.cancel_scope.cancel()
        await listener.aclose()
        async with receive:
            return await receive.receive()

    assert run_on_tether(main) == b"anyio: hello"
