"""Ed25519 signatures (RFC 8032), in pure Python: the stdlib has none, and lanchat ships
without dependencies.

This is the reference algorithm of RFC 8032 section 6, written out plainly: points in
extended coordinates (X, Y, Z, T) with x = X/Z, y = Y/Z, x*y = T/Z. It is not constant
time; it proves who a chat name belongs to, on a LAN, and never handles a long-lived
secret of the server (the server only verifies). `verify` never raises: malformed keys or
signatures, and a non-canonical S (S >= L), are simply not valid.
"""

from __future__ import annotations

import hashlib
from typing import Optional, Tuple

Point = Tuple[int, int, int, int]

P = 2**255 - 19  # the base field's prime
L = 2**252 + 27742317777372353535851937790883648493  # the order of the base point
D = -121665 * pow(121666, P - 2, P) % P  # the curve constant
SQRT_M1 = pow(2, (P - 1) // 4, P)  # a square root of -1
NEUTRAL: Point = (0, 1, 1, 0)

SECRET_SIZE = 32
PUBLIC_SIZE = 32
SIGNATURE_SIZE = 64


def _inverse(x: int) -> int:
    return pow(x, P - 2, P)


def _sha512_int(data: bytes) -> int:
    return int.from_bytes(hashlib.sha512(data).digest(), "little")


def _add(a: Point, b: Point) -> Point:
    """The sum of two points."""
    xa, ya, za, ta = a
    xb, yb, zb, tb = b
    p1 = (ya - xa) * (yb - xb) % P
    p2 = (ya + xa) * (yb + xb) % P
    p3 = 2 * ta * tb * D % P
    p4 = 2 * za * zb % P
    e, f, g, h = p2 - p1, p4 - p3, p4 + p3, p2 + p1
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _multiply(scalar: int, point: Point) -> Point:
    """scalar * point, by doubling and adding."""
    result = NEUTRAL
    while scalar > 0:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _equal(a: Point, b: Point) -> bool:
    """True when two points are the same (x1/z1 == x2/z2 and y1/z1 == y2/z2)."""
    return (a[0] * b[2] - b[0] * a[2]) % P == 0 and (a[1] * b[2] - b[1] * a[2]) % P == 0


def _recover_x(y: int, sign: int) -> Optional[int]:
    """The x of the point with this y whose low bit is `sign`; None if there is none."""
    if y >= P:
        return None
    x2 = (y * y - 1) * _inverse(D * y * y + 1) % P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if (x & 1) != sign:
        x = P - x
    return x


def _compress(point: Point) -> bytes:
    """A point as its 32-byte encoding: y, with the low bit of x in the top bit."""
    z_inverse = _inverse(point[2])
    x = point[0] * z_inverse % P
    y = point[1] * z_inverse % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _decompress(data: bytes) -> Optional[Point]:
    """The point of a 32-byte encoding; None if it encodes none."""
    if len(data) != 32:
        return None
    y = int.from_bytes(data, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % P)


_G_Y = 4 * _inverse(5) % P
_G_X = _recover_x(_G_Y, 0)
assert _G_X is not None
BASE: Point = (_G_X, _G_Y, 1, _G_X * _G_Y % P)


def _expand(secret: bytes) -> Tuple[int, bytes]:
    """The secret scalar and the nonce prefix of a 32-byte secret key."""
    if len(secret) != SECRET_SIZE:
        raise ValueError(f"an Ed25519 secret key is {SECRET_SIZE} bytes, not {len(secret)}")
    digest = hashlib.sha512(secret).digest()
    scalar = int.from_bytes(digest[:32], "little")
    scalar &= (1 << 254) - 8
    scalar |= 1 << 254
    return scalar, digest[32:]


def public_key(secret: bytes) -> bytes:
    """The 32-byte public key of a 32-byte secret key (ValueError for another size)."""
    scalar, _ = _expand(secret)
    return _compress(_multiply(scalar, BASE))


def sign(secret: bytes, message: bytes) -> bytes:
    """The 64-byte signature of `message` by a 32-byte secret key (deterministic)."""
    scalar, prefix = _expand(secret)
    public = _compress(_multiply(scalar, BASE))
    nonce = _sha512_int(prefix + message) % L
    r_encoded = _compress(_multiply(nonce, BASE))
    challenge = _sha512_int(r_encoded + public + message) % L
    s = (nonce + challenge * scalar) % L
    return r_encoded + s.to_bytes(32, "little")


def verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """True if `signature` is the key's valid signature of `message`; False for anything
    else, malformed input included (it never raises)."""
    if not all(isinstance(v, (bytes, bytearray)) for v in (public, message, signature)):
        return False
    if len(public) != PUBLIC_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    a = _decompress(bytes(public))
    if a is None:
        return False
    r_encoded = bytes(signature[:32])
    r = _decompress(r_encoded)
    if r is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= L:  # non-canonical: the same signature could be spelt twice
        return False
    challenge = _sha512_int(r_encoded + bytes(public) + bytes(message)) % L
    return _equal(_multiply(s, BASE), _add(r, _multiply(challenge, a)))
