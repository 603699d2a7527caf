"""The little HTTP/1.1 the web client needs: one GET or HEAD per connection, without I/O.

`parse_request(head)` reads a request's line and headers (the bytes before the blank
line). `Site` holds the static files of `lanchat/web/static/` in memory (a few small
files, read once at start-up) and answers a request for one of them, or an error, as
complete response bytes. Every response carries the security headers (`SECURITY`) and
`Connection: close`: each connection asks for one thing, then ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
MAX_HEAD = 8192  # bytes of a request line and its headers, the blank line included
STATIC = Path(__file__).parent / "static"

SECURITY = (
    (
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cache-Control", "no-cache"),
)

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".webmanifest": "application/manifest+json",
}

REASONS = {
    101: "Switching Protocols",
    200: "OK",
    301: "Moved Permanently",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    426: "Upgrade Required",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


class BadRequest(Exception):
    """A request that gets an error response: `status`, and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Request:
    """A request line and its headers (names in lower case; a repeated header's values
    joined by commas, as RFC 9110 allows)."""

    method: str
    path: str  # without the query
    headers: Dict[str, str]

    def header(self, name: str) -> str:
        """A header's value, "" when absent."""
        return self.headers.get(name, "")

    def has_token(self, name: str, token: str) -> bool:
        """Whether a comma-separated header (Connection, Upgrade) holds `token`."""
        values = self.header(name).lower().split(",")
        return token in (value.strip() for value in values)


def parse_request(head: bytes) -> Request:
    """A request from its head (without the blank line); raises BadRequest."""
    try:
        lines = head.decode("ascii").split("\r\n")
    except UnicodeDecodeError:
        raise BadRequest(400, "A request head is ASCII.") from None
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(400, "Not an HTTP/1.1 request line.")
    method, target, _ = parts
    if not target.startswith("/"):
        raise BadRequest(400, "The target is a path.")
    headers: Dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise BadRequest(400, "A malformed header line.")
        key = name.lower()
        value = value.strip(" \t")
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return Request(method, target.split("?", 1)[0], headers)


def response(
    status: int,
    headers: Tuple[Tuple[str, str], ...] = (),
    body: bytes = b"",
    head_only: bool = False,
) -> bytes:
    """A complete response: status line, the security headers, `headers`, the body."""
    lines = [f"HTTP/1.1 {status} {REASONS[status]}"]
    lines += [f"{name}: {value}" for name, value in SECURITY + headers]
    if status != 101:
        lines.append(f"Content-Length: {len(body)}")
        lines.append("Connection: close")
    text = "\r\n".join(lines) + "\r\n\r\n"
    return text.encode("latin-1") + (b"" if head_only else body)


def error(status: int, message: str, head_only: bool = False) -> bytes:
    """An error response with a one-line text body."""
    body = (message + "\n").encode("utf-8")
    extra: Tuple[Tuple[str, str], ...] = (("Content-Type", "text/plain; charset=utf-8"),)
    if status == 405:
        extra += (("Allow", "GET, HEAD"),)
    return response(status, extra, body, head_only)


def to_https(received: bytes) -> bytes:
    """The answer of an https port to a plain http request (its first bytes): 301 to
    the same host, port and path over https; 400 when the head is not whole or has no
    plain Host."""
    head, blank, _ = received.partition(b"\r\n\r\n")
    try:
        request = parse_request(head) if blank else None
    except BadRequest:
        request = None
    host = request.headers.get("host", "") if request else ""
    if request is None or not _HOST.fullmatch(host):
        return error(400, "This server speaks https only: open https://HOST:PORT/ instead.")
    location = f"https://{host}{request.path}"
    return response(301, (("Location", location),), (location + "\n").encode("ascii"))


class Site:
    """The static files, read once, and the answers to requests for them."""

    def __init__(self, folder: Path = STATIC) -> None:
        self.files: Dict[str, Tuple[str, bytes]] = {}  # "/name" -> (content type, bytes)
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.is_file() and not path.name.startswith("."):
                    kind = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
                    self.files["/" + path.name] = (kind, path.read_bytes())
        if "/index.html" in self.files:
            self.files["/"] = self.files["/index.html"]

    def answer(self, request: Request) -> bytes:
        """The response to a GET or HEAD of a file (the method is checked already)."""
        head_only = request.method == "HEAD"
        found: Optional[Tuple[str, bytes]] = self.files.get(request.path)
        if found is None:
            return error(404, "No such file.", head_only)
        kind, body = found
        return response(200, (("Content-Type", kind),), body, head_only)
