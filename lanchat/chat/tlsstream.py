"""TLS for the client's socket, through memory buffers, so that one thread may read while
others write.

An `ssl.SSLSocket` must not be read by one thread and written by another, and the
client's reader thread sits in `recv` while the model's thread sends. `TlsStream` keeps
the socket plain and runs TLS in an `ssl.SSLObject` between two `ssl.MemoryBIO`s: the
socket is read and written as before (the kernel takes both at once), and the TLS state
is touched only under one lock. There is no certificate authority on a LAN: the context
checks nothing, and the caller compares the certificate's fingerprint with the one it
trusts (`chat.trust`) before it logs in.
"""

from __future__ import annotations

import socket
import ssl
import threading

from lanchat import tls

RECV_SIZE = 65536
_TLS_RECORD_TYPES = (0x15, 0x16)  # alert, handshake: how a TLS server's first bytes begin


class PlainAnswer(Exception):
    """The server answered the TLS handshake in plain text; `data` is what it sent."""

    def __init__(self, data: bytes) -> None:
        super().__init__("the server answered in plain text")
        self.data = data


def client_context() -> ssl.SSLContext:
    """A TLS 1.2+ client context that accepts any certificate (it is checked by hand)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class TlsStream:
    """TLS over a connected socket: `handshake()` once (then `fingerprint` is the server
    certificate's), then `recv` and `sendall` from any thread (`recv` from one at a time),
    `close_notify()` at the end."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext) -> None:
        self.sock = sock
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=False)
        self._lock = threading.Lock()
        self.fingerprint = ""  # the server certificate's, `SHA256:...`, once shaken hands

    def handshake(self) -> None:
        """Shake hands within the socket's timeout and note the certificate's fingerprint;
        PlainAnswer if the server speaks no TLS, ssl.SSLError if the handshake fails (or
        brings no certificate), OSError (socket.timeout) as recv does."""
        first = True
        while True:
            with self._lock:
                try:
                    self._tls.do_handshake()
                    done = True
                except ssl.SSLWantReadError:
                    done = False
                self._flush()
            if done:
                der = self._tls.getpeercert(binary_form=True)
                if der is None:  # a TLS server always sends one: without it, nothing to trust
                    raise ssl.SSLError("the server sent no certificate")
                self.fingerprint = tls.fingerprint_of_der(der)
                return
            data = self.sock.recv(RECV_SIZE)
            if first and data and data[0] not in _TLS_RECORD_TYPES:
                raise PlainAnswer(data)
            first = False
            if not data:
                raise ssl.SSLEOFError("the server closed the connection during the handshake")
            self._incoming.write(data)

    def recv(self, size: int = RECV_SIZE) -> bytes:
        """Up to `size` bytes of plain text; b"" at the end. Raises as the socket's recv
        does (socket.timeout when nothing came), or ssl.SSLError for a damaged record."""
        while True:
            with self._lock:
                try:
                    data = self._tls.read(size)
                except ssl.SSLWantReadError:
                    data = None
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    return b""  # close_notify, or the end of the stream without it
                self._flush()  # reading may answer (a key update)
            if data is not None:
                return data
            raw = self.sock.recv(RECV_SIZE)
            if raw:
                self._incoming.write(raw)
            else:
                self._incoming.write_eof()

    def sendall(self, data: bytes) -> None:
        """Encrypt and send it all (within the socket's timeout)."""
        with self._lock:
            self._tls.write(data)
            self._flush()

    def close_notify(self) -> None:
        """Tell the server that nothing more comes (TLS close_notify), as a FIN does."""
        with self._lock:
            try:
                self._tls.unwrap()
            except (ssl.SSLWantReadError, ssl.SSLError):
                pass  # the server's own close_notify is not awaited
            self._flush()

    def _flush(self) -> None:
        """Send what TLS wants sent (under the lock, so records go out in order)."""
        pending = self._outgoing.read()
        if pending:
            self.sock.sendall(pending)
