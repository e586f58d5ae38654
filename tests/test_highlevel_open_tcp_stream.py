"""open_tcp_stream: happy eyeballs against a fake network (a fake resolver
and socket factory, virtual time), plus real loopback connections."""

import pytest

import tether
from tether import socket as tsocket

pytestmark = [pytest.mark.tether, pytest.mark.timeout(20)]

PORT = 443


class FakeSocket(tsocket.SocketType):
    """Connects to `network.hosts[ip]` = (seconds, outcome)."""

    def __init__(self, network, family, type_, proto):
        self.network = network
        self._family = family
        self._type = type_
        self.ip = None
        self.closed = False
        self.bound_to = None

    @property
    def family(self):
        return self._family

    @property
    def type(self):
        return self._type

    def setsockopt(self, level, optname, value, optlen=None):
        pass

    async def bind(self, address):
        if (":" in address[0]) != (self._family == tsocket.AF_INET6):
            raise OSError("address of the wrong family")
        self.bound_to = address

    async def connect(self, sockaddr):
        self.ip = sockaddr[0]
        assert sockaddr[1] == PORT
        self.network.started[self.ip] = tether.current_time()
        seconds, outcome = self.network.hosts[self.ip]
        await tether.sleep(seconds)
        if outcome == "refused":
            raise ConnectionRefusedError(f"{self.ip} refused")

    def close(self):
        self.closed = True


class FakeNetwork(tether.abc.SocketFactory, tether.abc.HostnameResolver):
    def __init__(self, hosts, *, families=(tsocket.AF_INET, tsocket.AF_INET6)):
        self.hosts = dict(hosts)  # ip -> (seconds to answer, "ok" | "refused")
        self.families = families
        self.sockets = []
        self.started = {}  # ip -> virtual time its connect started

    def socket(self, family=tsocket.AF_INET, type=tsocket.SOCK_STREAM, proto=0):
        if family not in self.families:
            raise OSError(f"address family {family!r} not supported")
        sock = FakeSocket(self, family, type, proto)
        self.sockets.append(sock)
        return sock

    async def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        assert host == b"service.test"
        return [
            (
                tsocket.AF_INET6 if ":" in ip else tsocket.AF_INET,
                tsocket.SOCK_STREAM,
                tsocket.IPPROTO_TCP,
                "",
                (ip, port, 0, 0) if ":" in ip else (ip, port),
            )
            for ip in self.hosts
        ]

    async def getnameinfo(self, sockaddr, flags):
        raise NotImplementedError

    def install(self):
        tsocket.set_custom_hostname_resolver(self)
        tsocket.set_custom_socket_factory(self)
        return self

    def assert_only_winner_open(self, winner):
        for sock in self.sockets:
            assert sock.closed == (sock is not winner), sock.ip


async def test_first_address_answering_in_time_wins_alone(autojump_clock):
    network = FakeNetwork({"10.0.0.1": (0.1, "ok"), "10.0.0.2": (0.1, "ok")}).install()
    stream = await tether.open_tcp_stream("service.test", PORT)
    assert stream.socket.ip == "10.0.0.1"
    assert tether.current_time() == pytest.approx(0.1)
    assert network.started == {"10.0.0.1": 0}
    network.assert_only_winner_open(stream.socket)


async def test_slow_attempts_are_staggered_and_the_first_to_connect_wins(autojump_clock):
    network = FakeNetwork(
        {"10.0.0.1": (5, "ok"), "10.0.0.2": (5, "ok"), "10.0.0.3": (0.1, "ok")}
    ).install()
    stream = await tether.open_tcp_stream("service.test", PORT)
    assert stream.socket.ip == "10.0.0.3"
    assert network.started == pytest.approx({"10.0.0.1": 0, "10.0.0.2": 0.25, "10.0.0.3": 0.5})
    assert tether.current_time() == pytest.approx(0.6)
    network.assert_only_winner_open(stream.socket)


async def test_a_failure_starts_the_next_attempt_at_once(autojump_clock):
    network = FakeNetwork({"10.0.0.1": (0.05, "refused"), "10.0.0.2": (0.01, "ok")}).install()
    stream = await tether.open_tcp_stream("service.test", PORT, happy_eyeballs_delay=10)
    assert stream.socket.ip == "10.0.0.2"
    assert network.started == pytest.approx({"10.0.0.1": 0, "10.0.0.2": 0.05})
    network.assert_only_winner_open(stream.socket)


async def test_second_attempt_uses_the_other_address_family(autojump_clock):
    network = FakeNetwork(
        {"10.0.0.1": (9, "ok"), "10.0.0.2": (9, "ok"), "fd00::3": (0.1, "ok")}
    ).install()
    stream = await tether.open_tcp_stream("service.test", PORT, happy_eyeballs_delay=1)
    assert stream.socket.ip == "fd00::3"
    assert network.started == {"10.0.0.1": 0, "fd00::3": 1}


async def test_an_unsupported_family_counts_as_a_quick_failure(autojump_clock):
    network = FakeNetwork(
        {"fd00::1": (0, "ok"), "10.0.0.2": (0.5, "ok")}, families=(tsocket.AF_INET,)
    ).install()
    stream = await tether.open_tcp_stream("service.test", PORT)
    assert stream.socket.ip == "10.0.0.2"
    assert network.started == {"10.0.0.2": 0}


async def test_when_all_fail_every_error_is_reported(autojump_clock):
    network = FakeNetwork(
        {"10.0.0.1": (0.1, "refused"), "10.0.0.2": (3, "refused"), "fd00::3": (0.2, "refused")}
    ).install()
    expected = r"^all attempts to connect to service\.test:443 failed$"
    with pytest.raises(OSError, match=expected) as info:
        await tether.open_tcp_stream("service.test", PORT)
    group = info.value.__cause__
    assert isinstance(group, ExceptionGroup)
    assert sorted(str(error) for error in group.exceptions) == [
        "10.0.0.1 refused",
        "10.0.0.2 refused",
        "fd00::3 refused",
    ]
    # 10.0.0.1 fails at 0.1, fd00::3 then runs 0.1-0.3, 10.0.0.2 0.3-3.3.
    assert tether.current_time() == pytest.approx(3.3)
    network.assert_only_winner_open(None)


async def test_cancelled_midway_closes_every_socket(autojump_clock):
    network = FakeNetwork({f"10.0.0.{i}": (100, "ok") for i in range(1, 5)}).install()
    with tether.move_on_after(0.6) as scope:
        await tether.open_tcp_stream("service.test", PORT)
    assert scope.cancelled_caught
    assert len(network.sockets) == 3  # started at 0, 0.25, 0.5
    network.assert_only_winner_open(None)


async def test_local_address_is_bound_before_connecting(autojump_clock):
    network = FakeNetwork({"fd00::1": (0.1, "ok"), "10.0.0.2": (0.1, "ok")}).install()
    stream = await tether.open_tcp_stream("service.test", PORT, local_address="10.9.9.9")
    assert stream.socket.ip == "10.0.0.2"
    assert stream.socket.bound_to == ("10.9.9.9", 0)
    # The IPv6 attempt failed at bind (wrong family), and said why.
    network.hosts = {"10.0.0.1": (0.1, "ok")}
    with pytest.raises(OSError) as info:
        await tether.open_tcp_stream("service.test", PORT, local_address="::1")
    (error,) = info.value.__cause__.exceptions
    assert "local_address='::1' is incompatible" in str(error)


async def test_input_is_checked():
    with pytest.raises(ValueError, match="host must be str or bytes"):
        await tether.open_tcp_stream(None, 80)
    with pytest.raises(TypeError, match="port must be int"):
        await tether.open_tcp_stream("127.0.0.1", "80")


async def test_no_addresses_is_an_error():
    class EmptyResolver(FakeNetwork):
        async def getaddrinfo(self, *args):
            return []

    EmptyResolver({}).install()
    with pytest.raises(OSError, match=r"no results found for hostname lookup: service\.test:80"):
        await tether.open_tcp_stream("service.test", 80)


async def test_numeric_ipv6_hosts_skip_the_resolver_and_are_bracketed_in_errors(autojump_clock):
    FakeNetwork({"fd00::9": (0.1, "refused")}).install()
    with pytest.raises(OSError, match=r"connect to \[fd00::9\]:443 failed"):
        await tether.open_tcp_stream("fd00::9", PORT)


async def test_real_loopback_connection_with_a_local_address():
    with tsocket.socket() as listener:
        await listener.bind(("127.0.0.1", 0))
        listener.listen()
        host, port = listener.getsockname()
        async with await tether.open_tcp_stream(host, port, local_address="127.0.0.1") as client:
            server, peer = await listener.accept()
            with server:
                assert peer == client.socket.getsockname()
                await client.send_all(b"ping")
                assert await server.recv(4) == b"ping"
        server.close()
    # Nothing listens there now.
    with pytest.raises(OSError, match="all attempts to connect"):
        await tether.open_tcp_stream(host, port)
