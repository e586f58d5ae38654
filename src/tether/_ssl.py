"""TLS over any tether stream: `SSLStream`, `SSLListener`,
`NeedHandshakeError`.

How it works. The standard library's `ssl.SSLObject` is a TLS state
machine with no I/O of its own: it reads the peer's bytes from one
`ssl.MemoryBIO` (``_from_peer``) and writes bytes for the peer to another
(``_to_peer``). Each of its operations (``do_handshake``, ``read``,
``write``, ``unwrap``) either answers, or raises ``SSLWantReadError``
meaning "I need more bytes from the peer, call me again with the same
arguments". In both cases it may have left records in ``_to_peer``.

Design. The stream is built in three layers, each a method or two:

* `_attempt`: one call of an operation, no I/O. It turns the TLS object's
  three outcomes into an answer, a NEED_INPUT marker, or a broken stream.
* `_ship` and `_refill`: the only I/O. `_ship` sends records under the
  shipping lock; `_refill` receives once under the receiving lock, unless
  another task's receive completed meanwhile.
* `_pump`: the loop between them. Each round attempts the operation, then
  does at most one thing that may block (ship the records it made, or
  else refill if it needs input), then attempts again, until it answers.

Above them, the handshake runs once (`_ensure_handshake`) and the stream
methods are short. The TLS logic never touches a socket, which is why it
can be tested over in-memory streams.

Invariants:

* Outgoing bytes are shipped in the order the TLS object produced them. A
  send task and a receive task may both need to ship bytes (a receive can
  produce a reply; a handshake started by either produces both), so
  shipping happens under a strict-FIFO lock, joined as soon as the bytes
  are taken out of ``_to_peer``.
* At most one task calls the transport's ``receive_some``. A task that
  waited for another's receive does not receive again itself: it retries its
  operation first, since the bytes it needed may have just arrived
  (``_receives_done`` tells it whether a receive happened meanwhile).
* Once bytes taken from ``_to_peer`` may not all have reached the
  transport (a send failed or was cancelled), the peer can never decode
  the rest of the connection: the stream is *broken* and every later
  operation raises `BrokenResourceError`. The same holds for a handshake
  that failed or was cancelled, and for any TLS protocol error.
* The handshake runs once, in whichever task first needs it; others wait for
  it. ``read``/``write`` never start it implicitly (OpenSSL would, but then
  Python's hostname check would be skipped).
"""

from __future__ import annotations

import enum
import operator
import ssl
from collections.abc import Callable
from typing import Any, Final, Generic, TypeVar, final

from ._conflict_detector import ConflictDetector
from ._core import (
    BrokenResourceError,
    BusyResourceError,
    ClosedResourceError,
    cancel_shielded_checkpoint,
    checkpoint,
    checkpoint_if_cancelled,
)
from ._highlevel_generic import aclose_forcefully
from ._socket_names import encode_hostname
from ._sync import Event, Lock, StrictFIFOLock
from .abc import Listener, Stream

__all__ = ["NeedHandshakeError", "SSLListener", "SSLStream"]

T = TypeVar("T")
StreamT = TypeVar("StreamT", bound=Stream)

# What `receive_some()` without max_bytes asks of the TLS object at first
# (the largest TLS record's payload); it grows to the largest chunk the
# transport has delivered.
STARTING_RECEIVE_SIZE: Final = 16384


class NeedHandshakeError(Exception):
    """Raised when asking an `SSLStream` about its connection (the peer's
    certificate, the chosen protocol, the cipher, ...) before the TLS
    handshake has completed, when there is nothing meaningful to answer.
    Call `SSLStream.do_handshake` first."""


class _Phase(enum.Enum):
    """Where the stream is in its life; it only ever moves down the list
    (OPEN to CLOSED directly by `aclose`)."""

    OPEN = "open"
    BROKEN = "broken"
    CLOSED = "closed"


class _NeedInput(enum.Enum):
    """What `_attempt` answers for ``SSLWantReadError`` (an enum, so that
    type checkers can tell it from the operation's own answer)."""

    NEED_INPUT = enum.auto()


def _at_least_one(max_bytes: int) -> int:
    size = operator.index(max_bytes)
    if size < 1:
        raise ValueError(f"max_bytes must be at least 1 (or None for any amount), got {size}")
    return size


def _peer_left_without_goodbye(cause: BaseException | None, handshake_done: bool) -> bool:
    """Whether a TLS failure only says that the peer went away without a
    close_notify, which an HTTPS peer may do: by cutting the transport
    (an unexpected EOF), or, before the handshake ended, by leaving
    without a word (OpenSSL reports that as a failed system call)."""
    if not handshake_done and isinstance(cause, ssl.SSLSyscallError):
        return True
    return _is_unexpected_eof(cause)


def _is_unexpected_eof(error: BaseException | None) -> bool:
    """Whether a TLS error means the transport ended without the peer's
    close_notify (a truncated connection)."""
    if isinstance(error, ssl.SSLEOFError):
        return True
    # OpenSSL 3 reports it as a generic SSL error with this reason.
    return isinstance(error, ssl.SSLError) and "UNEXPECTED_EOF_WHILE_READING" in str(error)


def _ascii_hostname(hostname: str | bytes) -> str:
    """The ASCII form of a server name, as name resolution computes it.

    Given a non-ASCII name, the ssl module would encode it with the
    standard library's IDNA 2003 codec, while tether resolves it with IDNA
    2008: for a name like "faß.de" those are two different hosts. Encoding
    it here, the IDNA 2008 way, makes the name sent for SNI and checked
    against the certificate the one that was connected to."""
    if isinstance(hostname, bytes):
        try:
            return hostname.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError(
                f"server_hostname {hostname!r} is bytes but not ASCII: pass an "
                "IDNA-encoded name (b'xn--...'), or the name as str to have it encoded"
            ) from None
    try:
        return encode_hostname(hostname).decode("ascii")
    except UnicodeError as error:  # idna.IDNAError is one
        raise ValueError(
            f"server_hostname {hostname!r} is not a valid internationalized host "
            f"name (IDNA 2008): {error}"
        ) from error


# Methods and properties of the SSLObject that SSLStream offers as its own.
_FORWARDED: Final = frozenset(
    {
        "cipher",
        "compression",
        "context",
        "get_channel_binding",
        "getpeercert",
        "pending",
        "selected_alpn_protocol",
        "selected_npn_protocol",
        "server_hostname",
        "server_side",
        "session",
        "session_reused",
        "shared_ciphers",
        "version",
    }
)
# Those of them that only mean something once the handshake is done.
_NEED_HANDSHAKE: Final = frozenset(
    {
        "cipher",
        "compression",
        "get_channel_binding",
        "getpeercert",
        "selected_alpn_protocol",
        "selected_npn_protocol",
        "session_reused",
        "shared_ciphers",
        "version",
    }
)


@final
class SSLStream(Stream, Generic[StreamT]):
    """Encrypted communication with TLS over another stream.

    ``SSLStream(transport_stream, ssl_context, *, server_hostname=None,
    server_side=False, https_compatible=False)`` wraps any `tether.abc.Stream`
    (a TCP `SocketStream`, a pipe, an in-memory test stream): `send_all`
    encrypts and sends on it, `receive_some` receives from it and decrypts.

    Args:
      transport_stream: the stream that carries the encrypted bytes.
      ssl_context: the `ssl.SSLContext` with the settings and certificates.
        For a client, ``ssl.create_default_context()`` verifies the server's
        certificate and name against the system's trusted CAs; turning
        verification off has to be done on the context, explicitly.
      server_hostname: the name of the server (clients): sent for SNI and
        checked against the certificate. A non-ASCII name is encoded with
        IDNA 2008, as tether's name resolution does (not with the standard
        library's IDNA 2003 codec); ``server_hostname`` then reads as that
        ASCII form. Required when the context checks
        host names (the default): leaving it out is a `ValueError` here.
      server_side: True for the server end of the connection.
      https_compatible: True to interoperate with HTTPS peers, which commonly
        close the connection without a TLS ``close_notify``: then `aclose`
        does not send one, and a connection that ends without one reads as
        an ordinary end of stream instead of `BrokenResourceError`. Only for
        protocols that detect truncation themselves, as HTTP does. (The
        standard library's `ssl.SSLSocket` behaves this way by default.)

    The handshake happens on the first `send_all`, `receive_some`,
    `unwrap` or `aclose`, or when `do_handshake` is called. Once it is
    done, the `ssl.SSLObject` methods and attributes describing the
    connection are available on the stream itself: `getpeercert`,
    `selected_alpn_protocol`, `cipher`, `version`, `shared_ciphers`,
    `compression`, `get_channel_binding`, `session_reused`,
    `selected_npn_protocol`; before it they raise `NeedHandshakeError`.
    ``context``, ``server_side``, ``server_hostname``, ``session`` and
    ``pending`` are available at any time.

    One task may send while another receives; two tasks sending (or two
    receiving) at once get `BusyResourceError`.

    Cancellation: every method is a checkpoint. Cancelling a handshake, or a
    `send_all` while it is sending, leaves the stream *broken* (the peer
    can no longer decode it): later calls raise `BrokenResourceError`, and
    the only thing left to do is `aclose`. A `receive_some` cancelled after
    the handshake loses no data. Renegotiation (TLS 1.2 and older) is handled
    as the `ssl` module allows, but nothing here starts one.

    Errors: a TLS failure (a certificate that does not verify, a protocol
    error, a connection that ends without ``close_notify`` when not
    https_compatible) raises `BrokenResourceError` whose ``__cause__`` is
    the `ssl.SSLError`; so does any later use of the stream. Errors of the
    transport propagate as they are (and break the stream if they happen
    while sending).

    Attributes:
      transport_stream: the underlying stream.
    """

    # transport_stream and the private fields are real attributes;
    # __getattr__ only runs for names not found (the forwarded ones).
    transport_stream: StreamT

    def __init__(
        self,
        transport_stream: StreamT,
        ssl_context: ssl.SSLContext,
        *,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        https_compatible: bool = False,
    ) -> None:
        if not isinstance(transport_stream, Stream):
            raise TypeError(
                f"SSLStream needs a tether.abc.Stream to carry its data, got {transport_stream!r}"
            )
        if not isinstance(ssl_context, ssl.SSLContext):
            raise TypeError(
                f"ssl_context must be an ssl.SSLContext (for example from "
                f"ssl.create_default_context()), got {ssl_context!r}"
            )
        if server_hostname is None and not server_side and ssl_context.check_hostname:
            raise ValueError(
                "this ssl_context checks the server's host name (check_hostname is "
                "True), so SSLStream needs server_hostname= (the name to verify)"
            )
        if server_hostname is not None:
            server_hostname = _ascii_hostname(server_hostname)
        self.transport_stream = transport_stream
        self._https_compatible = https_compatible
        self._phase = _Phase.OPEN
        self._from_peer = ssl.MemoryBIO()
        self._to_peer = ssl.MemoryBIO()
        self._ssl_object = ssl_context.wrap_bio(
            self._from_peer, self._to_peer, server_hostname=server_hostname, server_side=server_side
        )
        # Server side, TLS 1.3: bytes the handshake's last step produced
        # (session tickets), held back until this side next sends. OpenSSL
        # emits them unasked the moment the handshake completes; shipping
        # them then would make the handshake wait for a peer that may only
        # be sending (on an unbuffered transport, a deadlock).
        self._held_back = b""
        # The alert OpenSSL queued for the peer when a TLS error broke the
        # stream, for `aclose` to ship.
        self._alert = b""
        self._handshake_begun = False
        self._handshake_done = False
        self._handshake_over = Event()  # set on success and on failure
        self._ship_lock = StrictFIFOLock()
        self._transport_receive_lock = Lock()
        self._receives_done = 0
        self._receive_size = STARTING_RECEIVE_SIZE
        self._send_guard = ConflictDetector("another task is already sending on this SSLStream")
        self._receive_guard = ConflictDetector(
            "another task is already receiving on this SSLStream"
        )

    def __repr__(self) -> str:
        return f"<tether.SSLStream {self._phase.value} over {self.transport_stream!r}>"

    # Attributes of the SSLObject.

    def __getattr__(self, name: str) -> Any:
        if name in _FORWARDED:
            if name in _NEED_HANDSHAKE and not self._handshake_done:
                raise NeedHandshakeError(
                    f"SSLStream.{name} is only meaningful after the TLS handshake: "
                    f"await stream.do_handshake() first"
                )
            return getattr(self._ssl_object, name)
        raise AttributeError(f"'SSLStream' object has no attribute {name!r}")

    def __setattr__(self, name: str, value: object) -> None:
        # The forwarded names that can be set (``context``, ``session``)
        # are set on the SSLObject, which checks them.
        if name not in _FORWARDED:
            object.__setattr__(self, name, value)
            return
        setattr(self._ssl_object, name, value)

    def __dir__(self) -> list[str]:
        return sorted(_FORWARDED.union(super().__dir__()))

    # The engine: a TLS operation driven to its end over the transport.

    def _break(self) -> None:
        # A stream closed meanwhile (by another task) stays closed: being
        # told "closed" is the more useful of the two errors.
        if self._phase is _Phase.OPEN:
            self._phase = _Phase.BROKEN

    def _raise_unless_usable(self) -> None:
        if self._phase is _Phase.OPEN:
            return
        if self._phase is _Phase.CLOSED:
            raise ClosedResourceError("this SSLStream was closed")
        raise BrokenResourceError("this SSLStream is broken (an earlier error or cancellation)")

    def _attempt(self, operation: Callable[..., T], args: tuple[object, ...]) -> T | _NeedInput:
        """One call of a TLS operation, no I/O: its answer, or NEED_INPUT
        when it has to see more of the peer's bytes first. A TLS failure
        breaks the stream."""
        try:
            return operation(*args)
        except ssl.SSLWantReadError:
            return _NeedInput.NEED_INPUT
        except (ssl.SSLError, ssl.CertificateError) as error:
            self._break()
            # OpenSSL usually queued an alert telling the peer why; `aclose`
            # ships it (shipping it here could block the error).
            self._alert = self._to_peer.read()
            raise BrokenResourceError(f"TLS error: {error}") from error

    def _tickets_wait_for_our_next_send(self) -> bool:
        # See `_held_back`: only a TLS 1.3 server sends tickets unasked.
        tls = self._ssl_object
        return tls.server_side and tls.version() == "TLSv1.3"

    async def _ship(self, records: bytes, *, queue: bool) -> None:
        """Send TLS records on the transport, after those made before them.
        With ``queue=False``, refuse (`BusyResourceError`) rather than wait
        for another task's send, which a peer that does not read may block
        for ever."""
        if not queue and self._ship_lock.locked():
            raise BusyResourceError("another task is sending on the transport")
        try:
            async with self._ship_lock:
                # Held-back tickets were made first, so they go first.
                records, self._held_back = self._held_back + records, b""
                await self.transport_stream.send_all(records)
        except BaseException:
            # Some records may be lost: the peer cannot decrypt what follows.
            self._break()
            raise

    async def _refill(self) -> None:
        """Give the TLS object the transport's next bytes (an end of file if
        the transport ended). Skipped if another task's receive finished
        while this one waited for its turn: what it brought may be what we
        need, so the caller tries its operation again first."""
        receives_before = self._receives_done
        async with self._transport_receive_lock:
            if receives_before != self._receives_done:
                return
            chunk = await self.transport_stream.receive_some()
            if not chunk:
                self._from_peer.write_eof()
            else:
                self._from_peer.write(chunk)
                self._receive_size = max(len(chunk), self._receive_size)
            self._receives_done += 1

    async def _pump(
        self,
        operation: Callable[..., T],
        *args: object,
        handshake: bool = False,
        send_only: bool = False,
        queue_behind_senders: bool = True,
    ) -> T | None:
        """Drive `operation` until it answers, shipping what it writes and
        feeding it what the transport brings. With `send_only`, stop once
        its output is shipped, whatever it would like to read next. Each
        round does one thing that may block, then tries again: another task
        may have moved the connection on meanwhile. A checkpoint either
        way; the answer, or None after a `send_only` run."""
        await checkpoint_if_cancelled()
        blocked = False
        while True:
            answer = self._attempt(operation, args)
            ended = send_only or answer is not _NeedInput.NEED_INPUT
            records = self._to_peer.read()
            if handshake and ended and self._tickets_wait_for_our_next_send():
                self._held_back += records
                records = b""
            # Shipping comes first: our records must reach the transport in
            # the order the TLS object made them.
            if records:
                blocked = True
                await self._ship(records, queue=queue_behind_senders)
            elif not ended:
                blocked = True
                await self._refill()
            if ended:
                break
        if not blocked:
            await cancel_shielded_checkpoint()
        return None if answer is _NeedInput.NEED_INPUT else answer

    async def _ensure_handshake(self) -> None:
        """Run the handshake if nobody began it, or wait for the task that
        did. Raises `BrokenResourceError` if it failed (here or there)."""
        if self._handshake_done:
            return
        if self._handshake_begun:
            await self._handshake_over.wait()
            self._raise_unless_usable()
            return
        self._handshake_begun = True
        try:
            await self._pump(self._ssl_object.do_handshake, handshake=True)
            self._handshake_done = True
        except BaseException:
            self._break()
            raise
        finally:
            self._handshake_over.set()

    # The stream methods.

    async def do_handshake(self) -> None:
        """Perform the TLS handshake now, if it has not happened yet.

        There is no need to call it: the first operation that needs the
        handshake performs it. Call it to look at the connection (the peer's
        certificate, the negotiated ALPN protocol) before exchanging data.
        If another task is performing the handshake, this waits for it.

        A checkpoint, also when the handshake is already done. If it is
        cancelled during the handshake, the stream is broken.

        Raises:
          BrokenResourceError: if the handshake failed (here or in another
            task), for example because the certificate does not verify; the
            `ssl.SSLError` is its ``__cause__``.
          ClosedResourceError: if the stream was closed.
        """
        self._raise_unless_usable()
        if self._handshake_done:
            await checkpoint()
        else:
            await self._ensure_handshake()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        """Receive and decrypt some data: at least one byte and at most
        `max_bytes` (if given), or ``b""`` once the peer has closed the TLS
        connection cleanly (with https_compatible, also when the transport
        simply ended).

        A checkpoint. If cancelled during the handshake, the stream is
        broken; if cancelled after it, no data is lost.

        Raises:
          ValueError: if `max_bytes` is less than 1.
          BusyResourceError: if another task is receiving on this stream.
          BrokenResourceError: on a TLS error or a broken stream, or if the
            transport ended without the peer's ``close_notify`` (unless
            https_compatible).
          ClosedResourceError: if the stream was closed.
        """
        limit = None if max_bytes is None else _at_least_one(max_bytes)
        with self._receive_guard:
            self._raise_unless_usable()
            handshake_done = False
            try:
                await self._ensure_handshake()
                handshake_done = True
                if limit is None:
                    limit = max(self._receive_size, self._from_peer.pending)
                data = await self._pump(self._ssl_object.read, limit)
            except BrokenResourceError as error:
                if not (
                    self._https_compatible
                    and _peer_left_without_goodbye(error.__cause__, handshake_done)
                ):
                    raise
                await checkpoint()
                return b""
            assert data is not None
            return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Encrypt `data` and send it all on the transport.

        A checkpoint. If it is cancelled during the handshake or while
        sending, the stream is broken (part of the data may have been sent
        and the peer cannot decode the rest).

        Raises:
          BusyResourceError: if another task is sending on this stream.
          BrokenResourceError: on a TLS error or a broken stream.
          ClosedResourceError: if the stream was closed.
        """
        remaining = memoryview(data)
        with self._send_guard:
            self._raise_unless_usable()
            await self._ensure_handshake()
            if not remaining:
                await checkpoint()
                return
            while remaining:
                # With memory BIOs a write takes everything, but nothing in
                # the ssl module's contract promises it.
                written = await self._pump(self._ssl_object.write, remaining)
                assert written is not None
                remaining = remaining[written:]

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until the transport could take data (see
        `tether.abc.SendStream.wait_send_all_might_not_block`). A
        checkpoint.

        Raises `BusyResourceError` if another task is sending on this
        stream, and what `send_all` raises for a broken or closed stream.
        """
        with self._send_guard:
            self._raise_unless_usable()
            # Under the shipping lock: a receiving task may be shipping on the
            # transport, and two send-side calls on it would collide. That
            # ship finishing is what we would be waiting for anyway.
            async with self._ship_lock:
                await self.transport_stream.wait_send_all_might_not_block()

    async def unwrap(self) -> tuple[StreamT, bytes | bytearray]:
        """End TLS on the connection without closing the transport, to go
        on talking in clear over it (rarely needed: some protocols
        downgrade this way).

        Sends ``close_notify`` and waits for the peer's. Returns
        ``(transport_stream, trailing_bytes)``: `trailing_bytes` are bytes
        already received from the transport after the peer's
        ``close_notify``; treat them as the start of what the transport
        says next. The `SSLStream` is closed afterwards (but not the
        transport, which now belongs to the caller).

        A checkpoint. If cancelled, the stream is broken.

        Raises:
          BusyResourceError: if another task is sending or receiving.
          BrokenResourceError: on a TLS error, a broken stream, or a
            transport that ends first.
          ClosedResourceError: if the stream was closed.
        """
        with self._receive_guard, self._send_guard:
            self._raise_unless_usable()
            await self._ensure_handshake()
            try:
                await self._pump(self._ssl_object.unwrap)
            except BaseException:
                self._break()
                raise
            self._phase = _Phase.CLOSED
            return self.transport_stream, self._from_peer.read()

    async def aclose(self) -> None:
        """Close the TLS connection and the transport. Idempotent.

        Unless https_compatible, it first completes the handshake if needed
        and sends ``close_notify`` (without waiting for the peer's, which a
        peer busy sending might never send); then it closes the transport.
        With https_compatible it just closes the transport. On a stream
        broken by a TLS error it first ships the alert OpenSSL prepared for
        the peer (saying why: an unknown CA, a bad record, ...) if the
        transport is not tied up by a blocked send.

        If another task is sending on the transport (a `send_all` blocked by
        a peer that does not read), no ``close_notify`` is sent: the
        transport is closed at once, which wakes that task with
        `ClosedResourceError`.

        A checkpoint. If it is cancelled (or anything fails), the transport
        is closed forcefully and the error propagates; the stream is closed
        either way. Tasks blocked on the stream wake with an error from the
        closed transport.
        """
        if self._phase is _Phase.CLOSED:
            await checkpoint()
            return
        try:
            if self._phase is _Phase.BROKEN:
                self._phase = _Phase.CLOSED
                await self._ship_alert()
            elif not self._https_compatible:
                await self._say_goodbye()
        except BaseException:
            self._phase = _Phase.CLOSED
            await aclose_forcefully(self.transport_stream)
            raise
        self._phase = _Phase.CLOSED
        await self.transport_stream.aclose()

    async def _say_goodbye(self) -> None:
        """Complete the handshake if needed (its failure propagates), then
        one step of SSL_shutdown: queue our close_notify and ship it,
        without waiting for the peer's (a peer busy sending might never
        send it) and without queueing behind a send that a peer which does
        not read may block for ever (closing the transport is what wakes
        that send, with ClosedResourceError)."""
        await self._ensure_handshake()
        try:
            await self._pump(self._ssl_object.unwrap, send_only=True, queue_behind_senders=False)
        except (BrokenResourceError, BusyResourceError):
            # The peer may have closed first (nothing left to say), or the
            # transport is tied up: the transport is closed all the same.
            pass

    async def _ship_alert(self) -> None:
        """Best effort: tell the peer why the connection failed (a
        certificate it rejected, ...), unless the transport is tied up by a
        blocked send."""
        # Held-back records go first: the alert is numbered after them.
        to_ship = self._held_back + self._alert
        self._held_back = self._alert = b""
        if not to_ship or self._ship_lock.locked():
            return
        try:
            async with self._ship_lock:
                await self.transport_stream.send_all(to_ship)
        except (BrokenResourceError, BusyResourceError, ClosedResourceError):
            pass  # the peer is gone, or the transport is busy: nothing to tell


@final
class SSLListener(Listener[SSLStream[StreamT]], Generic[StreamT]):
    """A `tether.abc.Listener` of TLS connections: it accepts connections
    from another listener and wraps each in a server-side `SSLStream`.

    ``SSLListener(transport_listener, ssl_context, *, https_compatible=False)``;
    `https_compatible` is passed to every `SSLStream`. `accept` does not
    perform the handshake (the stream does it when first used), so a slow
    client cannot hold up the accept loop.

    Attributes:
      transport_listener: the underlying listener.
    """

    def __init__(
        self,
        transport_listener: Listener[StreamT],
        ssl_context: ssl.SSLContext,
        *,
        https_compatible: bool = False,
    ) -> None:
        if not isinstance(transport_listener, Listener):
            raise TypeError(f"SSLListener needs a tether.abc.Listener, got {transport_listener!r}")
        if not isinstance(ssl_context, ssl.SSLContext):
            raise TypeError(f"ssl_context must be an ssl.SSLContext, got {ssl_context!r}")
        self.transport_listener = transport_listener
        # Every accepted connection gets the same server-side settings.
        self._server_settings = (ssl_context, https_compatible)

    def __repr__(self) -> str:
        return f"<tether.SSLListener over {self.transport_listener!r}>"

    async def aclose(self) -> None:
        """Close the transport listener (streams already accepted stay
        open). Idempotent; closes even when cancelled."""
        await self.transport_listener.aclose()

    async def accept(self) -> SSLStream[StreamT]:
        """Accept the next connection from the transport listener and wrap
        it in a server-side `SSLStream`. A checkpoint; cancellation and
        errors are those of the transport listener's ``accept``."""
        context, https_compatible = self._server_settings
        return SSLStream(
            await self.transport_listener.accept(),
            context,
            https_compatible=https_compatible,
            server_side=True,
        )
