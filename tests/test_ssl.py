"""tether.SSLStream, SSLListener and NeedHandshakeError, over in-memory and
lockstep streams with certificates made by the test (trustme)."""

import ssl

import pytest

import tether
from tether.testing import (
    assert_checkpoints,
    check_two_way_stream,
    lockstep_stream_pair,
    memory_stream_pair,
    wait_all_tasks_blocked,
)

trustme = pytest.importorskip("trustme")

pytestmark = pytest.mark.tether

HOSTNAME = "tls.example"


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def server_context(ca):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOSTNAME).configure_cert(context)
    return context


@pytest.fixture(params=["TLSv1.2", "TLSv1.3"])
def client_context(request, ca):
    context = ssl.create_default_context()
    ca.configure_trust(context)
    context.maximum_version = ssl.TLSVersion[request.param.replace(".", "_")]
    return context


def tls_pair(client_context, server_context, transport_pair=memory_stream_pair, **kwargs):
    client_transport, server_transport = transport_pair()
    client = tether.SSLStream(client_transport, client_context, server_hostname=HOSTNAME, **kwargs)
    server = tether.SSLStream(server_transport, server_context, server_side=True, **kwargs)
    return client, server


async def handshake_both(client, server):
    async with tether.open_nursery() as nursery:
        nursery.start_soon(client.do_handshake)
        nursery.start_soon(server.do_handshake)


async def close_while_the_peer_reads_the_end(stream, peer):
    """Close `stream` while `peer` receives the end of the stream, then
    closes too. Concurrently: a lockstep transport holds the close_notify
    until the peer reads it."""

    async def peer_sees_the_end():
        assert await peer.receive_some() == b""
        await peer.aclose()

    async with tether.open_nursery() as nursery:
        nursery.start_soon(peer_sees_the_end)
        await stream.aclose()


async def echo_once(server):
    data = await server.receive_some()
    await server.send_all(data)


@pytest.mark.parametrize("transport_pair", [memory_stream_pair, lockstep_stream_pair])
async def test_echo(client_context, server_context, transport_pair):
    client, server = tls_pair(client_context, server_context, transport_pair)
    async with tether.open_nursery() as nursery:
        nursery.start_soon(echo_once, server)
        await client.send_all(b"hello over TLS")
        assert await client.receive_some() == b"hello over TLS"
    # The transport carried ciphertext, not the message.
    assert isinstance(client.transport_stream, tether.StapledStream)
    assert client.version() == client_context.maximum_version.name.replace("_", ".")

    await close_while_the_peer_reads_the_end(client, server)


@pytest.mark.parametrize("https_compatible", [False, True])
async def test_stream_rules_hold(client_context, server_context, https_compatible):
    async def maker():
        return tls_pair(client_context, server_context, https_compatible=https_compatible)

    async def clogged_maker():
        client, server = tls_pair(
            client_context,
            server_context,
            lockstep_stream_pair,
            https_compatible=https_compatible,
        )
        # Over a lockstep transport the handshake must be done first, or a
        # receive_some meant to unclog the peer would itself start the
        # handshake and wait for the clogged side.
        await handshake_both(client, server)
        return client, server

    await check_two_way_stream(maker, clogged_maker)


async def test_tls_over_tls(client_context, server_context):
    outer_client, outer_server = tls_pair(client_context, server_context)
    inner_client = tether.SSLStream(outer_client, client_context, server_hostname=HOSTNAME)
    inner_server = tether.SSLStream(outer_server, server_context, server_side=True)
    async with tether.open_nursery() as nursery:
        nursery.start_soon(echo_once, inner_server)
        await inner_client.send_all(b"nested")
        assert await inner_client.receive_some() == b"nested"
    assert inner_client.transport_stream is outer_client

    await close_while_the_peer_reads_the_end(inner_client, inner_server)
    with pytest.raises(tether.ClosedResourceError):
        await outer_client.send_all(b"x")  # closing the inner closed the outer


async def test_transport_errors_during_the_handshake_propagate_and_break_the_stream(
    client_context,
):
    class FailingTransport(tether.abc.Stream):
        async def send_all(self, data):
            await tether.lowlevel.checkpoint()

        async def wait_send_all_might_not_block(self):
            await tether.lowlevel.checkpoint()

        async def receive_some(self, max_bytes=None):
            await tether.lowlevel.checkpoint()
            raise KeyError("transport failed")

        async def aclose(self):
            await tether.lowlevel.checkpoint()

    client = tether.SSLStream(FailingTransport(), client_context, server_hostname=HOSTNAME)
    with pytest.raises(KeyError, match="transport failed"):
        await client.do_handshake()
    with pytest.raises(tether.BrokenResourceError):
        await client.receive_some()
    await client.aclose()


async def test_connection_details_need_the_handshake(client_context, server_context):
    client_context.set_alpn_protocols(["h2", "http/1.1"])
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    client, server = tls_pair(client_context, server_context)
    # Available at once: the settings, not the connection.
    assert client.server_hostname == HOSTNAME
    assert client.server_side is False
    assert server.server_side is True
    assert client.context is client_context
    assert "getpeercert" in dir(client)
    with pytest.raises(tether.NeedHandshakeError, match="do_handshake"):
        client.getpeercert()
    with pytest.raises(tether.NeedHandshakeError):
        client.selected_alpn_protocol()
    with pytest.raises(AttributeError):
        client.no_such_attribute  # noqa: B018


async def test_peer_certificate_and_alpn_after_the_handshake(ca, client_context):
    client_context.set_alpn_protocols(["h2", "http/1.1"])
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOSTNAME).configure_cert(server_context)
    server_context.set_alpn_protocols(["http/1.1"])
    client, server = tls_pair(client_context, server_context)
    await handshake_both(client, server)
    assert client.selected_alpn_protocol() == "http/1.1"
    assert server.selected_alpn_protocol() == "http/1.1"
    subject = dict(item[0] for item in client.getpeercert()["subject"])
    assert subject["organizationalUnitName"]  # trustme fills it in
    assert ("DNS", HOSTNAME) in client.getpeercert()["subjectAltName"]
    assert server.getpeercert() is None  # the client sent no certificate
    assert client.cipher() == server.cipher()
    assert client.get_channel_binding() == server.get_channel_binding()
    # do_handshake again is a checkpoint that does nothing.
    with assert_checkpoints():
        await client.do_handshake()


async def test_wrong_hostname_fails_verification_on_both_ends(client_context, server_context):
    client_transport, server_transport = memory_stream_pair()
    client = tether.SSLStream(client_transport, client_context, server_hostname="other.example")
    server = tether.SSLStream(server_transport, server_context, server_side=True)

    async def server_side():
        with pytest.raises(tether.BrokenResourceError) as server_error:
            await server.do_handshake()
        # Closing the client shipped the alert saying why.
        assert "ALERT" in str(server_error.value.__cause__).upper()
        await server.aclose()

    async with tether.open_nursery() as nursery:
        nursery.start_soon(server_side)
        with pytest.raises(tether.BrokenResourceError) as excinfo:
            await client.do_handshake()
        assert isinstance(excinfo.value.__cause__, ssl.SSLCertVerificationError)
        assert "other.example" in str(excinfo.value.__cause__)
        # The stream stays broken; closing it is still fine.
        with pytest.raises(tether.BrokenResourceError):
            await client.send_all(b"x")
        await client.aclose()


async def test_the_default_context_does_not_trust_an_unknown_ca(server_context):
    # Verification is on by default: ssl.create_default_context() trusts the
    # system's CAs, not the one this test made.
    client, server = tls_pair(ssl.create_default_context(), server_context)
    async with tether.open_nursery() as nursery:
        nursery.start_soon(_expect_broken, server.do_handshake)
        with pytest.raises(tether.BrokenResourceError) as excinfo:
            await client.do_handshake()
        await client.aclose()
    assert isinstance(excinfo.value.__cause__, ssl.SSLCertVerificationError)


async def _expect_broken(operation):
    with pytest.raises(tether.BrokenResourceError):
        await operation()


# "faß.de" is two different hosts under the two IDNA standards: IDNA 2008,
# which tether's name resolution uses, keeps the "ß"; the standard library's
# IDNA 2003 codec, which the ssl module would use, maps it to "ss".
NON_ASCII_HOSTNAME = "faß.de"
ITS_IDNA_2008_NAME = "xn--fa-hia.de"
ITS_IDNA_2003_NAME = "fass.de"


async def test_a_non_ascii_hostname_is_sent_and_verified_as_it_is_resolved(ca):
    assert NON_ASCII_HOSTNAME.encode("idna").decode() == ITS_IDNA_2003_NAME
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(ITS_IDNA_2008_NAME).configure_cert(server_context)
    names_asked_for = []
    server_context.sni_callback = lambda ssl_object, name, context: names_asked_for.append(name)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    client_transport, server_transport = memory_stream_pair()
    client = tether.SSLStream(client_transport, client_context, server_hostname=NON_ASCII_HOSTNAME)
    server = tether.SSLStream(server_transport, server_context, server_side=True)
    assert client.server_hostname == ITS_IDNA_2008_NAME
    await handshake_both(client, server)  # the certificate verifies
    assert names_asked_for == [ITS_IDNA_2008_NAME]


async def test_the_idna_2003_name_does_not_pass_for_the_idna_2008_one(ca):
    # The check above is a real one: a certificate for the IDNA 2003 name
    # is refused for the non-ASCII name.
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(ITS_IDNA_2003_NAME).configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    client_transport, server_transport = memory_stream_pair()
    client = tether.SSLStream(client_transport, client_context, server_hostname=NON_ASCII_HOSTNAME)
    server = tether.SSLStream(server_transport, server_context, server_side=True)
    async with tether.open_nursery() as nursery:
        nursery.start_soon(_expect_broken, server.do_handshake)
        with pytest.raises(tether.BrokenResourceError) as excinfo:
            await client.do_handshake()
        await client.aclose()  # tells the server why
    assert isinstance(excinfo.value.__cause__, ssl.SSLCertVerificationError)


def test_a_server_name_that_cannot_be_made_ascii_is_refused():
    with pytest.raises(ValueError, match="IDNA"):
        tether.SSLStream(
            memory_stream_pair()[0], ssl.create_default_context(), server_hostname="☃.example"
        )
    with pytest.raises(ValueError, match="not ASCII"):
        tether.SSLStream(
            memory_stream_pair()[0],
            ssl.create_default_context(),
            server_hostname=NON_ASCII_HOSTNAME.encode(),
        )


def test_a_client_context_that_checks_hostnames_needs_one():
    with pytest.raises(ValueError, match="server_hostname"):
        tether.SSLStream(memory_stream_pair()[0], ssl.create_default_context())


def test_bad_arguments_are_reported():
    with pytest.raises(TypeError, match=r"tether\.abc\.Stream"):
        tether.SSLStream(object(), ssl.create_default_context(), server_hostname="x")
    with pytest.raises(TypeError, match=r"ssl\.SSLContext"):
        tether.SSLStream(memory_stream_pair()[0], None, server_hostname="x")


async def test_a_failed_handshake_wakes_the_task_waiting_for_it(server_context):
    # Two tasks need the handshake; the second waits for the first's. When
    # it fails, both must hear of it (not wait forever).
    client, server = tls_pair(ssl.create_default_context(), server_context)
    async with tether.open_nursery() as nursery:
        nursery.start_soon(_expect_broken, server.do_handshake)
        async with tether.open_nursery() as client_tasks:
            client_tasks.start_soon(_expect_broken, lambda: client.send_all(b"x"))
            client_tasks.start_soon(_expect_broken, client.receive_some)
        await client.aclose()


async def test_cancelled_handshake_breaks_the_stream(
    client_context, server_context, autojump_clock
):
    client, _server = tls_pair(client_context, server_context)
    # The server never answers: the client's handshake waits for it.
    with tether.move_on_after(1) as scope:
        await client.do_handshake()
    assert scope.cancelled_caught
    with pytest.raises(tether.BrokenResourceError):
        await client.do_handshake()
    with pytest.raises(tether.BrokenResourceError):
        await client.send_all(b"x")
    with pytest.raises(tether.NeedHandshakeError):
        client.getpeercert()
    await client.aclose()
    with pytest.raises(tether.ClosedResourceError):
        await client.receive_some()


async def test_cancelled_send_breaks_the_stream(client_context, server_context, autojump_clock):
    client, server = tls_pair(client_context, server_context, lockstep_stream_pair)
    await handshake_both(client, server)
    # Nobody reads: the lockstep transport holds the send.
    with tether.move_on_after(1) as scope:
        await client.send_all(b"never read")
    assert scope.cancelled_caught
    with pytest.raises(tether.BrokenResourceError):
        await client.send_all(b"x")
    with pytest.raises(tether.BrokenResourceError):
        await client.receive_some()
    await client.aclose()


async def test_aclose_does_not_wait_for_a_send_blocked_on_a_silent_peer(
    client_context, server_context, autojump_clock
):
    client, server = tls_pair(client_context, server_context, lockstep_stream_pair)
    await handshake_both(client, server)
    sender_saw = []

    async def send_to_nobody():
        try:
            await client.send_all(b"never read")
        except (tether.ClosedResourceError, tether.BrokenResourceError) as error:
            sender_saw.append(type(error))

    async with tether.open_nursery() as nursery:
        nursery.start_soon(send_to_nobody)
        await wait_all_tasks_blocked()
        # The peer never reads, so no close_notify can get through: aclose
        # closes the transport instead of queueing behind the blocked send.
        with tether.fail_after(60):
            await client.aclose()
    assert sender_saw == [tether.ClosedResourceError]
    with pytest.raises(tether.ClosedResourceError):
        await client.send_all(b"x")
    await server.aclose()


async def test_cancelled_receive_after_the_handshake_loses_nothing(
    client_context, server_context, autojump_clock
):
    client, server = tls_pair(client_context, server_context)
    await handshake_both(client, server)
    with tether.move_on_after(1):
        await client.receive_some()
    await server.send_all(b"still fine")
    assert await client.receive_some() == b"still fine"


async def test_close_notify_gives_the_peer_a_clean_end(client_context, server_context):
    client, server = tls_pair(client_context, server_context)
    await handshake_both(client, server)
    await client.aclose()
    assert await server.receive_some() == b""
    assert await server.receive_some() == b""


async def test_a_connection_cut_without_close_notify_is_broken(client_context, server_context):
    client, server = tls_pair(client_context, server_context)
    await handshake_both(client, server)
    await client.transport_stream.aclose()  # the TLS layer is bypassed
    with pytest.raises(tether.BrokenResourceError) as excinfo:
        await server.receive_some()
    assert isinstance(excinfo.value.__cause__, ssl.SSLError)


async def test_https_compatible_sends_no_close_notify_and_accepts_none(
    client_context, server_context
):
    client_transport, server_transport = memory_stream_pair()
    client = tether.SSLStream(
        client_transport, client_context, server_hostname=HOSTNAME, https_compatible=True
    )
    strict_server = tether.SSLStream(server_transport, server_context, server_side=True)
    await handshake_both(client, strict_server)
    await client.aclose()
    # The strict peer sees a truncated connection...
    with pytest.raises(tether.BrokenResourceError):
        await strict_server.receive_some()

    # ...an https_compatible one an ordinary end of stream.
    client, server = tls_pair(client_context, server_context, https_compatible=True)
    await handshake_both(client, server)
    await client.aclose()
    assert await server.receive_some() == b""


async def test_https_compatible_peer_leaving_before_the_handshake_is_an_end_of_stream(
    server_context,
):
    client_transport, server_transport = memory_stream_pair()
    server = tether.SSLStream(
        server_transport, server_context, server_side=True, https_compatible=True
    )
    await client_transport.aclose()
    assert await server.receive_some() == b""


async def test_unwrap_returns_the_transport_for_plain_talk(client_context, server_context):
    client, server = tls_pair(client_context, server_context)
    await handshake_both(client, server)
    await client.send_all(b"secret")
    assert await server.receive_some() == b"secret"

    async def server_unwraps():
        transport, trailing = await server.unwrap()
        # The client may have spoken in clear right after its close_notify.
        data = bytes(trailing) or await transport.receive_some()
        assert data == b"plain"
        await transport.send_all(b"plain reply")

    async with tether.open_nursery() as nursery:
        nursery.start_soon(server_unwraps)
        transport, trailing = await client.unwrap()
        assert trailing == b""
        assert transport is client.transport_stream
        await transport.send_all(b"plain")
        assert await transport.receive_some() == b"plain reply"
    with pytest.raises(tether.ClosedResourceError):
        await client.send_all(b"x")
    await client.aclose()  # the transport is the caller's now: untouched
    await transport.send_all(b"still open")


async def test_aclose_is_idempotent_and_a_checkpoint(client_context, server_context):
    client, _server = tls_pair(client_context, server_context, https_compatible=True)
    with assert_checkpoints():
        await client.aclose()
    with assert_checkpoints():
        await client.aclose()
    with pytest.raises(tether.ClosedResourceError):
        await client.do_handshake()


async def test_listener_wraps_each_accepted_connection(client_context, server_context):
    class PairListener(tether.abc.Listener):
        def __init__(self):
            self.clients = []
            self.closed = False

        async def accept(self):
            await tether.lowlevel.checkpoint()
            client_end, server_end = memory_stream_pair()
            self.clients.append(client_end)
            return server_end

        async def aclose(self):
            self.closed = True

    transport_listener = PairListener()
    listener = tether.SSLListener(transport_listener, server_context, https_compatible=True)
    assert listener.transport_listener is transport_listener
    server = await listener.accept()
    assert isinstance(server, tether.SSLStream)
    assert server.server_side
    client = tether.SSLStream(
        transport_listener.clients[0], client_context, server_hostname=HOSTNAME
    )
    async with tether.open_nursery() as nursery:
        nursery.start_soon(echo_once, server)
        await client.send_all(b"ping")
        assert await client.receive_some() == b"ping"
    await client.aclose()
    assert await server.receive_some() == b""  # https_compatible was passed on
    await listener.aclose()
    assert transport_listener.closed

    with pytest.raises(TypeError, match="Listener"):
        tether.SSLListener(memory_stream_pair()[0], server_context)


async def test_handshake_over_an_unbuffered_transport_does_not_deadlock(
    client_context, server_context
):
    # On TLS 1.3 the server's handshake produces session tickets nobody asked
    # for; over a lockstep transport, shipping them during the handshake
    # would wait for a client that is done and not reading.
    client, server = tls_pair(client_context, server_context, lockstep_stream_pair)
    await handshake_both(client, server)

    async def client_reads():
        assert await client.receive_some() == b"after"

    async with tether.open_nursery() as nursery:
        nursery.start_soon(client_reads)
        await server.send_all(b"after")


async def test_concurrent_sends_collide_but_send_and_receive_may_overlap(
    client_context, server_context
):
    client, server = tls_pair(client_context, server_context)
    await handshake_both(client, server)
    async with tether.open_nursery() as nursery:
        nursery.start_soon(echo_once, server)
        nursery.start_soon(client.send_all, b"both ways")
        assert await client.receive_some() == b"both ways"

    with pytest.RaisesGroup(tether.BusyResourceError):
        async with tether.open_nursery() as nursery:
            nursery.start_soon(client.receive_some)
            nursery.start_soon(client.receive_some)


async def test_large_transfer_in_both_directions(client_context, server_context):
    client, server = tls_pair(client_context, server_context, lockstep_stream_pair)
    payload = bytes(range(256)) * 400  # several TLS records

    async def send_and_check(sender, receiver):
        async with tether.open_nursery() as nursery:
            nursery.start_soon(sender.send_all, payload)
            got = bytearray()
            while len(got) < len(payload):
                got += await receiver.receive_some()
            assert got == payload

    async with tether.open_nursery() as nursery:
        nursery.start_soon(send_and_check, client, server)
        nursery.start_soon(send_and_check, server, client)
    await wait_all_tasks_blocked()


async def test_closing_during_a_handshake_leaves_the_stream_closed_not_broken(
    client_context, server_context
):
    client, _server = tls_pair(client_context, server_context)

    async def handshake_cut_short():
        with pytest.raises(tether.ClosedResourceError):
            await client.do_handshake()  # the server never answers

    async with tether.open_nursery() as nursery:
        nursery.start_soon(handshake_cut_short)
        await wait_all_tasks_blocked()
        await tether.aclose_forcefully(client)
    with pytest.raises(tether.ClosedResourceError):
        await client.send_all(b"x")
