"""The web transport: HTTP for the page's files, and lanchat frames over a WebSocket.

A `WebCodec` is what the web port's listener speaks. Its decoder starts in HTTP: a GET or
HEAD of a static file is answered and ends the connection, which so never becomes a
session; a GET of `/ws` with a good handshake (same origin, version 13) is answered with
101, and from then on each WebSocket text message is one lanchat frame and the decoder
is `opened` (the server starts a session). What the transport answers itself (the HTTP
response, pongs, the close handshake) it hands out with `take_reply`; `ending` says the
connection ends, and why. Events go out as one text frame each, encoded once per flavour.
"""

from __future__ import annotations

import collections
from typing import Deque, Dict, List, Optional

from lanchat import protocol
from lanchat.core import events
from lanchat.core.transport import LANCHAT, LanchatCodec
from lanchat.protocol import Frame
from lanchat.web import http, websocket
from lanchat.web.http import BadRequest, Request, Site

WS_PATH = "/ws"

# The close code for each way the server ends a session; the rest get POLICY_VIOLATION.
CLOSE_CODES = {"quit": websocket.NORMAL, "timeout": websocket.NORMAL, "shutdown": 1001}


class WebCodec:
    """The lanchat frames of one flavour (`LanchatCodec`), one per WebSocket text frame.
    `scheme` is the page's: "https" where the web port speaks TLS."""

    def __init__(self, site: Site, flavour: LanchatCodec = LANCHAT, scheme: str = "http") -> None:
        self.site = site
        self.flavour = flavour
        self.scheme = scheme
        self.name = "websocket+" + flavour.name
        self.rooms = flavour.rooms
        self.minor = flavour.minor
        self._siblings: Dict[str, WebCodec] = {flavour.name: self}  # shared by all flavours

    def for_login(self, speaks_rooms: bool, version: str) -> WebCodec:
        """The same flavour as the lanchat codec would pick, over the WebSocket."""
        flavour = self.flavour.for_login(speaks_rooms, version)
        sibling = self._siblings.get(flavour.name)
        if sibling is None:
            sibling = WebCodec(self.site, flavour, self.scheme)
            sibling._siblings = self._siblings
            self._siblings[flavour.name] = sibling
        return sibling

    def decoder(self) -> WebDecoder:
        """HTTP first, then the WebSocket."""
        return WebDecoder(self.site, self.scheme)

    def encode(self, event: events.Event) -> bytes:
        """One text frame holding the JSON frame (without the newline)."""
        return websocket.server_frame(websocket.TEXT, self.flavour.encode(event)[:-1])

    def refusal(self, hello: events.Hello, error: events.Error) -> bytes:
        """A connection over the limits, before any request: 503 with the error's text."""
        return http.error(503, error.message)

    def tls_refusal(self, received: bytes) -> bytes:
        """A plain http request to the https port: a redirect to the same address over
        https (400 if its head is not whole in the first bytes); a silent one waits."""
        if not received:
            return b""
        return http.to_https(received)


class WebDecoder:
    """One web connection's bytes: an HTTP request, then WebSocket frames."""

    def __init__(self, site: Site, scheme: str = "http") -> None:
        self.site = site
        self.scheme = scheme  # of the page's origin, the only one whose WebSocket is let in
        self.opened = False  # the WebSocket is up: lanchat frames flow
        self.ending: Optional[str] = None  # a leave reason once the transport is done
        self._head = bytearray()
        self._reader = websocket.MessageReader(protocol.MAX_FRAME)
        self._replies: List[bytes] = []
        self._frames: Deque[bytes] = collections.deque()  # messages not yet handed out

    def feed(self, data: bytes) -> None:
        """Take bytes: the request's head until it is whole, then WebSocket frames."""
        if self.ending:
            return  # a file was served or a close sent: what follows is ignored
        if not self.opened:
            data = self._request(data)
            if not self.opened or not data:
                return
        self._reader.feed(data)
        self._read_messages()

    def next_frame(self) -> Optional[Frame]:
        """The next message as a frame; ProtocolError for one that is not a JSON object."""
        if not self._frames:
            return None
        return protocol.decode_line(self._frames.popleft())

    def take_reply(self) -> bytes:
        """What the transport answers itself, once."""
        reply = b"".join(self._replies)
        self._replies = []
        return reply

    def farewell(self, reason: str) -> bytes:
        """What goes out before the server closes the connection for `reason`: a close
        frame, or before the request is in, 408 (on a timeout) or 503."""
        if self.ending:
            return b""  # it said goodbye already
        self.ending = reason
        if not self.opened:
            return http.error(408 if reason == "timeout" else 503, "Closing.")
        code = CLOSE_CODES.get(reason, websocket.POLICY_VIOLATION)
        return websocket.close_frame(code, reason)

    # -- HTTP ----------------------------------------------------------------------------

    def _request(self, data: bytes) -> bytes:
        """Gather the head; answer it once whole; return the bytes after it."""
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0 or end + 4 > http.MAX_HEAD:
            if len(self._head) >= http.MAX_HEAD:
                self._finish(http.error(431, "The request head is over 8 KiB."), "error")
            return b""
        head, rest = bytes(self._head[:end]), bytes(self._head[end + 4 :])
        self._head = bytearray()
        try:
            request = http.parse_request(head)
            if request.method not in ("GET", "HEAD"):
                raise BadRequest(405, "Only GET and HEAD.")
            if request.path == WS_PATH:
                self._replies.append(self._upgrade(request))
                self.opened = True
                return rest
            self._finish(self.site.answer(request), "quit")
        except BadRequest as exc:
            self._finish(http.error(exc.status, exc.message), "error")
        return b""

    def _upgrade(self, request: Request) -> bytes:
        """The 101 that opens the WebSocket; raises BadRequest for a handshake we refuse."""
        if request.method != "GET":
            raise BadRequest(405, "The WebSocket opens with GET.")
        if not (
            request.has_token("upgrade", "websocket") and request.has_token("connection", "upgrade")
        ):
            raise BadRequest(426, "This is a WebSocket: upgrade to it.")
        if request.header("sec-websocket-version") != "13":
            raise BadRequest(426, "WebSocket version 13 only.")
        key = request.header("sec-websocket-key")
        if not websocket.valid_key(key):
            raise BadRequest(400, "A bad Sec-WebSocket-Key.")
        origin = request.header("origin")
        # A browser always sends Origin: a page of another site must not join as its reader.
        if origin and origin != f"{self.scheme}://" + request.header("host"):
            raise BadRequest(403, "Cross-origin WebSockets are refused.")
        accept = websocket.accept_key(key)
        upgrade = (("Upgrade", "websocket"), ("Connection", "Upgrade"))
        return http.response(101, (*upgrade, ("Sec-WebSocket-Accept", accept)))

    def _finish(self, reply: bytes, reason: str) -> None:
        self._replies.append(reply)
        self.ending = reason

    # -- WebSocket -----------------------------------------------------------------------

    def _read_messages(self) -> None:
        """Turn whole frames into messages, pongs and the close handshake."""
        try:
            while not self.ending:
                event = self._reader.next_event()
                if event is None:
                    return
                kind, value = event
                if kind == "text":
                    assert isinstance(value, bytes)
                    self._frames.append(value)
                elif kind == "ping":
                    assert isinstance(value, bytes)
                    self._replies.append(websocket.server_frame(websocket.PONG, value))
                elif kind == "close":
                    assert isinstance(value, tuple)
                    code = websocket.NORMAL if value[0] == websocket.NO_STATUS else value[0]
                    self._finish(websocket.close_frame(code), "quit")
        except websocket.Violation as exc:
            self._finish(websocket.close_frame(exc.code, exc.reason), "error")
