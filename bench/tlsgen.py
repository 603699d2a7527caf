"""TLS mode of the load generator: lanchat's frames over TLS, as `lanchat server --tls` serves.

`TlsLoadGen` is `LoadGen` with every connection wrapped in TLS. The wrapping is done in
memory (`ssl.MemoryBIO`, one `TlsChannel` per connection, free of sockets) rather than
with `ssl.SSLSocket`, for two reasons: the hot loop keeps calling `recvmsg` on the plain
socket, so a delivery's latency still ends at the kernel's receive stamp of the bytes
(the ciphertext) that completed it; and an `SSLSocket` refuses `recvmsg` altogether.
Decrypting is the generator's own work, after that stamp: it shows in `gen CPU%` and the
read lag, never in the server's latency.

The client sends its ClientHello as soon as it connects (a TLS listener waits for it);
the server's `hello` comes once the handshake is done, and from there on the frames,
schedule and measurements are the TCP mode's. There is no certificate authority on a
LAN: like lanchat's own client, the generator checks the certificate's SHA-256
fingerprint itself (`fingerprint=`, as `openssl x509 -fingerprint -sha256` prints it),
and a connection to any other certificate is dropped (`tls:fingerprint`).
"""

from __future__ import annotations

import ssl
from typing import Any, Dict, List, Optional

from bench.loadgen import RECV_SIZE, Conn, LoadGen
from lanchat.tls import fingerprint_of_der


class TlsError(Exception):
    """The TLS layer of one connection failed; `reason` names it in the disconnect counts."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def client_context() -> ssl.SSLContext:
    """A client context that takes any certificate: the fingerprint is checked instead."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class TlsChannel:
    """One client's TLS in memory: ciphertext in (`feed`), plaintext out; plaintext in
    (`encrypt`), ciphertext out. `outgoing()` is what TLS itself has to send (handshake
    messages), to be sent before anything else."""

    __slots__ = ("_incoming", "_outgoing", "_tls", "established", "expected", "waiting")

    def __init__(self, context: ssl.SSLContext, expected: Optional[str] = None) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=False)
        self.expected = expected  # the certificate's fingerprint, or None: any
        self.established = False
        self.waiting = bytearray()  # plaintext written before the handshake finished

    def start(self) -> bytes:
        """The ClientHello: the first bytes the client sends."""
        self._handshake()
        return self.outgoing()

    def outgoing(self) -> bytes:
        """The ciphertext TLS has produced and nobody has sent yet."""
        return self._outgoing.read()

    def encrypt(self, data: bytes) -> bytes:
        """The ciphertext that carries `data` (b"" while the handshake is unfinished: it
        waits and goes out with the first bytes after)."""
        if not self.established:
            self.waiting += data
            return b""
        self._tls.write(data)
        return self.outgoing()

    def feed(self, data: bytes) -> bytes:
        """The plaintext that the ciphertext `data` completes (b"" for none yet).

        Raises TlsError when the handshake or a record fails, the certificate is not the
        expected one, or the server closed the TLS session."""
        self._incoming.write(data)
        if not self.established and not self._handshake():
            return b""
        chunks: List[bytes] = []
        while True:
            try:
                chunk = self._tls.read(RECV_SIZE)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                raise TlsError("tls:close_notify") from None
            except ssl.SSLError as exc:
                raise TlsError(f"tls:{exc.reason or 'error'}") from None
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def _handshake(self) -> bool:
        """Take the handshake one step; True once it is done (and the certificate checked)."""
        try:
            self._tls.do_handshake()
        except ssl.SSLWantReadError:
            return False
        except ssl.SSLError as exc:
            raise TlsError(f"tls:{exc.reason or 'handshake'}") from None
        der = self._tls.getpeercert(binary_form=True)
        if self.expected is not None and (der is None or fingerprint_of_der(der) != self.expected):
            raise TlsError("tls:fingerprint")
        self.established = True
        if self.waiting:
            self._tls.write(bytes(self.waiting))
            self.waiting.clear()
        return True


class TlsLoadGen(LoadGen):
    """N lanchat clients over TLS to the server's lanchat port, on the load generator's
    loop and schedule; `fingerprint` is the server certificate's (None: take any)."""

    def __init__(self, *args: Any, fingerprint: Optional[str] = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fingerprint = fingerprint
        self._context = client_context()
        self._channels: Dict[int, TlsChannel] = {}  # by client index

    def _on_connect(self, conn: Conn) -> None:
        # A TLS listener waits for the ClientHello; bytes written before the connection
        # completes wait in the output buffer.
        channel = TlsChannel(self._context, self.fingerprint)
        self._channels[conn.index] = channel
        super()._write(conn, channel.start())

    def _write(self, conn: Conn, data: bytes) -> None:
        """Send lanchat bytes (frames) encrypted."""
        channel = self._channels.get(conn.index)
        if channel is not None:  # None: the connection was dropped
            super()._write(conn, channel.encrypt(data))

    def _split(self, conn: Conn, data: bytes) -> List[bytes]:
        """The whole lanchat lines in the plaintext that the ciphertext received completes."""
        channel = self._channels[conn.index]
        try:
            plain = channel.feed(data)
        except TlsError as exc:
            self._drop(conn, exc.reason)
            return []
        reply = channel.outgoing()  # the client's Finished, or frames that waited for it
        if reply:
            super()._write(conn, reply)
        return super()._split(conn, plain) if plain else []

    def _drop(self, conn: Conn, reason: str) -> None:
        super()._drop(conn, reason)
        self._channels.pop(conn.index, None)
