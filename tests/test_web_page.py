"""The web page's own code, run in chromium: its SHA-256 and HMAC against Python's
hashlib and hmac (RFC 4231 vectors and random inputs), the password proof of
docs/protocol.md, and its pure functions (name suggestion, day separators, links,
commands, pacing)."""

from __future__ import annotations

import hashlib
import hmac
import random
import re
from pathlib import Path
from typing import Any, List, Tuple

import pytest
from browser import STATIC, NewPage, browser, load_scripts, new_page  # noqa: F401

from lanchat import protocol

# RFC 4231, test cases 1-7 (case 5 is a truncated output: compared here in full).
RFC4231: List[Tuple[bytes, bytes]] = [
    (b"\x0b" * 20, b"Hi There"),
    (b"Jefe", b"what do ya want for nothing?"),
    (b"\xaa" * 20, b"\xdd" * 50),
    (bytes(range(1, 26)), b"\xcd" * 50),
    (b"\x0c" * 20, b"Test With Truncation"),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First"),
    (
        b"\xaa" * 131,
        b"This is a test using a larger than block-size key and a larger than block-size"
        b" data. The key needs to be hashed before being used by the HMAC algorithm.",
    ),
]
# Their published HMAC-SHA256 values, so a wrong hmac module could not hide a wrong page.
RFC4231_SHA256 = [
    "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
    "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
    "a3b6167473100ee06e0c796c2955552bfa6f7c0a6a8aef8b93f860aab0cd20c5",
    "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
]


def _run(page: Any, script: str, *args: Any) -> Any:
    return page.evaluate(script, list(args))


def _hmac_in_page(page: Any, key: bytes, message: bytes) -> str:
    return str(
        _run(
            page,
            "([k, m]) => LanchatSha256.toHex(LanchatSha256.hmacSha256("
            "LanchatSha256.fromHex(k), LanchatSha256.fromHex(m)))",
            key.hex(),
            message.hex(),
        )
    )


@pytest.fixture
def crypto_page(new_page: NewPage) -> Any:  # noqa: F811
    page = new_page()
    load_scripts(page, "sha256.js")
    return page


@pytest.fixture
def core_page(new_page: NewPage) -> Any:  # noqa: F811
    page = new_page()
    load_scripts(page, "chatcore.js")
    return page


def test_hmac_matches_rfc4231_and_python(crypto_page: Any) -> None:
    for (key, message), expected in zip(RFC4231, RFC4231_SHA256):
        python = hmac.new(key, message, hashlib.sha256).hexdigest()
        assert python == expected
        assert _hmac_in_page(crypto_page, key, message) == expected


def test_sha256_and_hmac_match_python_on_random_inputs(crypto_page: Any) -> None:
    rng = random.Random(15)
    # Lengths around the 64-byte block and the 55/56-byte padding edge, and longer ones.
    lengths = [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 4099]
    for length in lengths:
        data = bytes(rng.randrange(256) for _ in range(length))
        page_digest = _run(
            crypto_page,
            "([d]) => LanchatSha256.toHex(LanchatSha256.sha256(LanchatSha256.fromHex(d)))",
            data.hex(),
        )
        assert page_digest == hashlib.sha256(data).hexdigest(), length
        key = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 32, 64, 65, 200])))
        assert (
            _hmac_in_page(crypto_page, key, data) == hmac.new(key, data, hashlib.sha256).hexdigest()
        )


def test_password_proof_matches_the_protocol(crypto_page: Any) -> None:
    cases = [
        ("hunter2", "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "bob"),
        ("pässwörd with spaces ", "00112233445566778899aabbccddeeff", "Žofie"),
        ("😀🔑", "ffffffffffffffffffffffffffffffff", "田中さん"),
    ]
    for password, nonce, name in cases:
        proof = _run(
            crypto_page,
            "([p, n, u]) => LanchatSha256.passwordProof(p, n, u)",
            password,
            nonce,
            name,
        )
        assert proof == protocol.password_proof(password, nonce, name)
    assert proof_of_docs(crypto_page) == (
        "7799e9ce2010c1eacb43ab1ea32f44fd1237936d61a9cac39a9599ceb9a49bfa"
    )
    bad = _run(crypto_page, "() => LanchatSha256.passwordProof('x', 'abc', 'bob')")
    assert bad is None  # a nonce that is not whole hex bytes makes no proof


def proof_of_docs(page: Any) -> str:
    """The worked example of docs/protocol.md, "Passwords"."""
    return str(
        _run(
            page,
            "() => LanchatSha256.passwordProof("
            "'hunter2', '0f1e2d3c4b5a69788796a5b4c3d2e1f0', 'bob')",
        )
    )


def test_suggest_name(core_page: Any) -> None:
    suggestions = {
        "bob": "bob2",
        "bob2": "bob3",
        "bob9": "bob10",
        "b o b": "b_o_b",
        "bob😀": "bob",
        "x" * 24: "x" * 23 + "2",
        "😀": "",
        "田中": "田中2",
    }
    for name, expected in suggestions.items():
        assert _run(core_page, "([n]) => LanchatCore.suggestName(n)", name) == expected, name


def test_day_separators(core_page: Any) -> None:
    # 2026-11-28 is a Saturday; times are local, so build them in the page's time zone.
    times = _run(
        core_page,
        "() => [new Date(2026, 10, 28, 23, 59).getTime() / 1000,"
        " new Date(2026, 10, 29, 0, 1).getTime() / 1000,"
        " new Date(2026, 10, 29, 9, 0).getTime() / 1000,"
        " new Date(2025, 0, 5, 12, 0).getTime() / 1000]",
    )
    sat, sun, sun_later, old = times
    sep = "([a, b, n]) => LanchatCore.daySeparator(a, b, n)"
    assert _run(core_page, sep, None, sat, sun) == "Saturday 28 November"
    assert _run(core_page, sep, None, sun, sun_later) is None  # the first line is from today
    assert _run(core_page, sep, sat, sun, sun) == "Sunday 29 November"
    assert _run(core_page, sep, sun, sun_later, sun) is None  # the same day
    assert _run(core_page, sep, None, old, sun) == "Sunday 5 January 2025"
    assert _run(core_page, "([t]) => LanchatCore.clock(t)", sun) == "00:01"


def test_links_are_only_http(core_page: Any) -> None:
    pieces = _run(
        core_page,
        "([t]) => LanchatCore.linkPieces(t)",
        "see https://example.org/a?b=1, javascript:alert(1) and http://x.lan/.",
    )
    links = [piece["href"] for piece in pieces if piece["href"]]
    assert links == ["https://example.org/a?b=1", "http://x.lan/"]
    assert "".join(piece["text"] for piece in pieces).startswith("see https://example.org/a?b=1,")


def test_mentions(core_page: Any) -> None:
    check = "([t, me]) => LanchatCore.mentions(t, me)"
    assert _run(core_page, check, "hi Bob!", "bob")
    assert _run(core_page, check, "@bob look", "bob")
    assert not _run(core_page, check, "bobby is here", "bob")
    assert not _run(core_page, check, "axb here", "a.b")  # the dot is literal, not "any"
    assert _run(core_page, check, "ask a.b", "a.b")


def test_parse_command(core_page: Any) -> None:
    parse = "([line, room]) => LanchatCore.parseCommand(line, room)"
    assert _run(core_page, parse, "hello", "#general") == {"kind": "say", "text": "hello"}
    assert _run(core_page, parse, "//etc", None) == {"kind": "say", "text": "/etc"}
    assert _run(core_page, parse, "/me waves", None) == {"kind": "me", "text": "/me waves"}
    assert _run(core_page, parse, "/msg bob  hi there", None) == {
        "kind": "msg",
        "to": "bob",
        "text": "hi there",
    }
    assert _run(core_page, parse, "/join dev", None) == {"kind": "join", "room": "#dev"}
    assert _run(core_page, parse, "/part", "#dev") == {"kind": "part", "room": "#dev"}
    assert _run(core_page, parse, "/who", "#dev") == {"kind": "who", "room": "#dev"}
    assert _run(core_page, parse, "/topic #dev #1 priority", "#general") == {
        "kind": "topic",
        "room": "#dev",
        "text": "#1 priority",
    }
    assert _run(core_page, parse, "/topic", "#general") == {
        "kind": "topic",
        "room": "#general",
        "text": None,
    }
    assert _run(core_page, parse, "/dance", None) == {"kind": "unknown", "command": "/dance"}
    assert _run(core_page, parse, "/msg bob", None)["kind"] == "usage"


def test_title_backoff_and_pace(core_page: Any) -> None:
    title = "([b, n, m]) => LanchatCore.tabTitle(b, n, m)"
    assert _run(core_page, title, "den", 0, False) == "den"
    assert _run(core_page, title, "den", 3, False) == "(3) den"
    assert _run(core_page, title, "den", 3, True) == "(3!) den"
    delays = [_run(core_page, "([a]) => LanchatCore.backoff(a, 0)", a) for a in range(8)]
    assert delays[0] == 0.5 and delays == sorted(delays) and delays[-1] == 15
    assert _run(core_page, "() => LanchatCore.announcedPace({rate: 5, burst: 30})") == {
        "rate": 5,
        "burst": 30,
    }
    assert _run(core_page, "() => LanchatCore.announcedPace({rate: 5})") is None
    # A bucket of burst 30 keeps one spare: 29 at once, then one per 1/rate seconds.
    waits = _run(
        core_page,
        "() => { const b = new LanchatCore.TokenBucket(5, 30, 0);"
        " const w = []; for (let i = 0; i < 30; i++) w.push(b.take(0)); w.push(b.take(0.2));"
        " return w; }",
    )
    assert waits[:29] == [0] * 29 and waits[29] == pytest.approx(0.2) and waits[30] == 0


def test_static_files_use_no_inline_script_or_style() -> None:
    """The server's CSP forbids inline script and style, and the page must load offline."""
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert not re.search(r"\sstyle=|<style|\son[a-z]+=", html, re.IGNORECASE)
    for path in Path(STATIC).iterdir():
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(?:src|href)=\"(?:https?:)?//", text), path.name
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text, path.name
        assert "document.write" not in text and "eval(" not in text, path.name
