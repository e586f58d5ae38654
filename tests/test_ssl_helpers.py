"""open_ssl_over_tcp_stream, open_ssl_over_tcp_listeners, serve_ssl_over_tcp,
and SSLStream over real sockets (loopback only)."""

import functools
import ssl

import pytest

import tether
from tether.testing import check_two_way_stream

trustme = pytest.importorskip("trustme")

pytestmark = pytest.mark.tether


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def server_context(ca):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    return context


@pytest.fixture
def client_context(ca):
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def echo_until_closed(stream):
    async for data in stream:
        await stream.send_all(data)


async def test_serve_and_connect_over_tcp(client_context, server_context):
    async with tether.open_nursery() as nursery:
        listeners = await nursery.start(
            tether.serve_ssl_over_tcp, echo_until_closed, 0, server_context
        )
        # Default host: every address family; connect through IPv4.
        listener = next(
            item
            for item in listeners
            if item.transport_listener.socket.family == tether.socket.AF_INET
        )
        assert isinstance(listener, tether.SSLListener)
        port = listener.transport_listener.socket.getsockname()[1]

        stream = await tether.open_ssl_over_tcp_stream(
            "127.0.0.1", port, ssl_context=client_context
        )
        assert isinstance(stream.transport_stream, tether.SocketStream)
        async with stream:
            await stream.send_all(b"over real TCP")
            got = b""
            while len(got) < len(b"over real TCP"):
                got += await stream.receive_some()
            assert got == b"over real TCP"
            assert ("IP Address", "127.0.0.1") in stream.getpeercert()["subjectAltName"]
        nursery.cancel_scope.cancel()


async def test_the_default_client_context_verifies_the_certificate(server_context):
    async with tether.open_nursery() as nursery:
        serve = functools.partial(tether.serve_ssl_over_tcp, host="127.0.0.1")
        listeners = await nursery.start(serve, echo_until_closed, 0, server_context)
        port = listeners[0].transport_listener.socket.getsockname()[1]
        # No ssl_context: the system's CAs, which do not include the test's.
        stream = await tether.open_ssl_over_tcp_stream("127.0.0.1", port)
        with pytest.raises(tether.BrokenResourceError) as excinfo:
            await stream.do_handshake()
        assert isinstance(excinfo.value.__cause__, ssl.SSLCertVerificationError)
        await stream.aclose()
        nursery.cancel_scope.cancel()


async def test_listeners_carry_the_https_compatible_setting(client_context, server_context):
    listeners = await tether.open_ssl_over_tcp_listeners(
        0, server_context, host="127.0.0.1", https_compatible=True
    )
    assert len(listeners) == 1
    listener = listeners[0]
    async with listener:
        port = listener.transport_listener.socket.getsockname()[1]
        client = await tether.open_ssl_over_tcp_stream(
            "localhost", port, ssl_context=client_context, https_compatible=True
        )
        server = await listener.accept()
        async with tether.open_nursery() as nursery:
            nursery.start_soon(server.do_handshake)
            nursery.start_soon(client.do_handshake)
        await client.aclose()  # no close_notify sent ...
        assert await server.receive_some() == b""  # ... and none expected
        await server.aclose()


async def test_ssl_stream_over_socket_pairs_follows_the_stream_rules(
    client_context, server_context
):
    async def maker():
        left, right = tether.socket.socketpair()
        client = tether.SSLStream(
            tether.SocketStream(left), client_context, server_hostname="localhost"
        )
        server = tether.SSLStream(tether.SocketStream(right), server_context, server_side=True)
        return client, server

    await check_two_way_stream(maker, None)


class EverythingIsLoopback(tether.abc.HostnameResolver):
    """Resolves every name to 127.0.0.1, so that a host name the ssl module
    refuses still gets a TCP connection."""

    async def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        return [(tether.socket.AF_INET, tether.socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    async def getnameinfo(self, sockaddr, flags):  # pragma: no cover - not used
        raise NotImplementedError


def client_only_refused():
    # A context for servers only: wrapping the client end of a connection
    # in it fails.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    return {"host": "localhost", "ssl_context": context, "error": ssl.SSLError}


def hostname_refused():
    # The ssl module refuses a server name that starts with a dot.
    return {"host": ".localhost", "ssl_context": ssl.create_default_context(), "error": ValueError}


@pytest.mark.parametrize("case", [client_only_refused, hostname_refused])
async def test_a_stream_that_cannot_be_wrapped_closes_its_connection(case, monkeypatch):
    connections = []

    async def open_and_record(*args, **kwargs):
        stream = await tether.open_tcp_stream(*args, **kwargs)
        connections.append(stream)
        return stream

    monkeypatch.setattr(tether._ssl_helpers, "open_tcp_stream", open_and_record)
    tether.socket.set_custom_hostname_resolver(EverythingIsLoopback())
    arguments = case()
    listeners = await tether.open_tcp_listeners(0, host="127.0.0.1")
    async with listeners[0]:
        port = listeners[0].socket.getsockname()[1]
        with pytest.raises(arguments["error"]):
            await tether.open_ssl_over_tcp_stream(
                arguments["host"], port, ssl_context=arguments["ssl_context"]
            )
        server = await listeners[0].accept()
        async with server:
            [client] = connections
            assert client.socket.fileno() == -1  # closed, not left to the GC
            assert await server.receive_some() == b""


async def test_the_default_context_works_without_the_ignore_eof_option(monkeypatch):
    # Older OpenSSL builds (and Python before 3.10) have no
    # OP_IGNORE_UNEXPECTED_EOF: there is then nothing to clear.
    monkeypatch.delattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", raising=False)
    listeners = await tether.open_tcp_listeners(0, host="127.0.0.1")
    async with listeners[0]:
        port = listeners[0].socket.getsockname()[1]
        stream = await tether.open_ssl_over_tcp_stream("127.0.0.1", port)
        assert stream.context.check_hostname
        assert stream.context.verify_mode == ssl.CERT_REQUIRED
        # Nobody answers the handshake that a graceful close would start.
        await tether.aclose_forcefully(stream)
