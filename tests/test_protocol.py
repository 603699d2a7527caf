"""Tests for lanchat.protocol and lanchat.names: framing, validation, names, text, versions, frames.

Decoder cases come from tables and are fed three ways, h11-style: whole, one byte at a
time, and followed by trailing data. Hypothesis then checks the decoder against a small
reference model for any bytes in any chunking.
"""

from __future__ import annotations

import ast
import hashlib
import hmac
import json
import unicodedata
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Tuple, Union

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lanchat import names, protocol
from lanchat.protocol import FrameDecoder, ProtocolError

Frame = Dict[str, Any]
Outcome = Union[Frame, str]  # a decoded frame, or the code of the error a line raised

PING = {"type": "ping"}
PING_LINE = b'{"type":"ping"}\n'


# ---------------------------------------------------------------------------
# Helpers


def drain(decoder: FrameDecoder) -> List[Outcome]:
    """Every outcome the decoder can give now: frames, and error codes for bad lines."""
    out: List[Outcome] = []
    while True:
        try:
            frame = decoder.next_frame()
        except ProtocolError as exc:
            out.append(exc.code)
            continue
        if frame is None:
            return out
        out.append(frame)


def feed_in_chunks(
    data: bytes, chunks: Sequence[int], max_frame: int = protocol.MAX_FRAME
) -> Tuple[List[Outcome], FrameDecoder]:
    """Feed `data` cut at the given sizes (the rest in one piece), draining after each."""
    decoder = FrameDecoder(max_frame)
    out: List[Outcome] = []
    start = 0
    for size in chunks:
        decoder.feed(data[start : start + size])
        start += size
        out += drain(decoder)
        # After a drain only an unfinished line is left, and never a whole max_frame of it.
        assert decoder.buffered < max_frame
    decoder.feed(data[start:])
    out += drain(decoder)
    assert decoder.buffered < max_frame
    return out, decoder


def feed_whole(data: bytes, max_frame: int = protocol.MAX_FRAME) -> List[Outcome]:
    """Feed everything at once."""
    return feed_in_chunks(data, [], max_frame)[0]


def feed_bytewise(data: bytes, max_frame: int = protocol.MAX_FRAME) -> List[Outcome]:
    """Feed one byte at a time, draining after every byte."""
    return feed_in_chunks(data, [1] * len(data), max_frame)[0]


def reference_outcomes(data: bytes, max_frame: int) -> List[Outcome]:
    """What the contract says a stream decodes to, written as plainly as possible."""
    *lines, tail = data.split(b"\n")
    out: List[Outcome] = []
    for line in lines:
        if len(line) + 1 > max_frame:
            out.append("too_long")
            continue
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line.strip(b" \t\r"):
            continue
        try:
            out.append(protocol.decode_line(line))
        except ProtocolError as exc:
            out.append(exc.code)
    if len(tail) >= max_frame:  # can never end within max_frame: reported at once
        out.append("too_long")
    return out


def say_line(total: int, ending: bytes = b"\n") -> bytes:
    """A valid `say` line of exactly `total` bytes, line ending included."""
    head, tail = b'{"type":"say","text":"', b'"}' + ending
    line = head + b"a" * (total - len(head) - len(tail)) + tail
    assert len(line) == total
    return line


def nested(depth: int) -> bytes:
    """A frame whose outermost object is level 1 and whose innermost array is `depth`."""
    return b'{"type":"x","v":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}\n"


def codes(error: Callable[[], Any]) -> str:
    """Call and return the code of the ProtocolError raised; fail if none."""
    with pytest.raises(ProtocolError) as info:
        error()
    return info.value.code


# ---------------------------------------------------------------------------
# Decoder: table of cases, each fed three ways

DecoderCase = Tuple[str, bytes, List[Outcome]]

DECODER_CASES: List[DecoderCase] = [
    # framing
    ("lf", PING_LINE, [PING]),
    ("crlf", b'{"type":"ping"}\r\n', [PING]),
    ("two frames", PING_LINE + b'{"type":"who"}\r\n', [PING, {"type": "who"}]),
    ("no newline yet", b'{"type":"ping"}', []),
    ("blank lines", b"\n\r\n  \n\t\r\n \t \n", []),
    ("blank lines between", b"\n" + PING_LINE + b"\r\n\n" + PING_LINE, [PING, PING]),
    ("spaces around json", b'  {"type":"ping"}  \r\n', [PING]),
    ("lone cr is no terminator", b'{"type":"ping"}\r{"type":"ping"}\n', ["bad_frame"]),
    (
        "utf-8 as is",
        '{"type":"say","text":"李雷 Žofie"}\n'.encode(),
        [{"type": "say", "text": "李雷 Žofie"}],
    ),
    (
        "escaped utf-16 pair",
        b'{"type":"say","text":"\\ud83d\\ude00 \\u674e"}\n',
        [{"type": "say", "text": "\U0001f600 \u674e"}],
    ),
    (
        "unknown fields kept",
        b'{"type":"ping","x":[1,{"y":null}]}\n',
        [{**PING, "x": [1, {"y": None}]}],
    ),
    # invalid UTF-8
    ("invalid utf-8 byte", b'{"type":"say","text":"\xff"}\n', ["bad_frame"]),
    ("utf-8 surrogate", b'{"type":"say","text":"\xed\xa0\x80"}\n', ["bad_frame"]),
    ("overlong utf-8", b'{"type":"say","text":"\xc0\xaf"}\n', ["bad_frame"]),
    ("truncated utf-8", b'{"type":"say","text":"\xe6\x9d"}\n', ["bad_frame"]),
    ("latin-1 text", '{"type":"say","text":"é"}\n'.encode("latin-1"), ["bad_frame"]),
    ("byte order mark", b'\xef\xbb\xbf{"type":"ping"}\n', ["bad_frame"]),
    # not JSON
    ("plain text", b"hello\n", ["bad_frame"]),
    ("unclosed object", b'{"type":"ping"\n', ["bad_frame"]),
    ("single quotes", b"{'type':'ping'}\n", ["bad_frame"]),
    ("trailing garbage", b'{"type":"ping"} x\n', ["bad_frame"]),
    ("two objects on a line", b'{"type":"ping"}{"type":"ping"}\n', ["bad_frame"]),
    ("trailing comma", b'{"type":"ping",}\n', ["bad_frame"]),
    # JSON, but not an object
    ("array", b"[]\n", ["bad_frame"]),
    ("array of frames", b'[{"type":"ping"}]\n', ["bad_frame"]),
    ("number", b"42\n", ["bad_frame"]),
    ("float", b"4.5\n", ["bad_frame"]),
    ("string", b'"ping"\n', ["bad_frame"]),
    ("null", b"null\n", ["bad_frame"]),
    ("true", b"true\n", ["bad_frame"]),
    # type
    ("empty object", b"{}\n", ["bad_frame"]),
    ("missing type", b'{"text":"hi"}\n', ["bad_frame"]),
    ("type number", b'{"type":1}\n', ["bad_frame"]),
    ("type null", b'{"type":null}\n', ["bad_frame"]),
    ("type list", b'{"type":["ping"]}\n', ["bad_frame"]),
    ("type object", b'{"type":{"a":1}}\n', ["bad_frame"]),
    ("type bool", b'{"type":true}\n', ["bad_frame"]),
    ("type any string", b'{"type":""}\n', [{"type": ""}]),
    # numbers that do not round-trip
    ("NaN", b'{"type":"ping","token":NaN}\n', ["bad_frame"]),
    ("Infinity", b'{"type":"ping","token":Infinity}\n', ["bad_frame"]),
    ("-Infinity", b'{"type":"ping","token":-Infinity}\n', ["bad_frame"]),
    ("1e400", b'{"type":"ping","token":1e400}\n', ["bad_frame"]),
    ("-1e400", b'{"type":"ping","token":-1e400}\n', ["bad_frame"]),
    ("nested 1e400", b'{"type":"ping","x":[{"y":1e400}]}\n', ["bad_frame"]),
    ("1e300 is fine", b'{"type":"ping","token":1e300}\n', [{**PING, "token": 1e300}]),
    (
        "big int is fine",
        b'{"type":"ping","token":' + b"9" * 100 + b"}\n",
        [{**PING, "token": int("9" * 100)}],
    ),
    # lone surrogates
    ("lone high surrogate", b'{"type":"say","text":"\\ud800"}\n', ["bad_frame"]),
    ("lone low surrogate", b'{"type":"say","text":"a\\udfffb"}\n', ["bad_frame"]),
    ("reversed pair", b'{"type":"say","text":"\\ude00\\ud83d"}\n', ["bad_frame"]),
    ("surrogate in key", b'{"type":"ping","\\ud800":1}\n', ["bad_frame"]),
    ("surrogate in type", b'{"type":"\\udbff"}\n', ["bad_frame"]),
    ("surrogate deep", b'{"type":"ping","x":[[{"y":["\\ud800"]}]]}\n', ["bad_frame"]),
    # nesting
    ("nesting 32", nested(32), [{"type": "x", "v": json.loads(b"[" * 31 + b"]" * 31)}]),
    ("nesting 33", nested(33), ["bad_frame"]),
    (
        "nesting 33 in objects",
        b'{"type":"x","v":' + b'{"a":' * 32 + b"1" + b"}" * 33 + b"\n",
        ["bad_frame"],
    ),
    ("nesting 30000", b'{"type":"x","v":' + b"[" * 30000 + b"]" * 30000 + b"}\n", ["bad_frame"]),
    # recovery: a bad line is consumed and decoding goes on
    ("bad then good", b"nope\n" + PING_LINE, ["bad_frame", PING]),
    ("good bad good", PING_LINE + b"[1]\n" + PING_LINE, [PING, "bad_frame", PING]),
    # line length: max_frame counts the newline (and a CR before it)
    ("exactly max_frame", say_line(65536), [json.loads(say_line(65536))]),
    ("exactly max_frame crlf", say_line(65536, b"\r\n"), [json.loads(say_line(65536, b"\r\n"))]),
    ("max_frame plus one", say_line(65537), ["too_long"]),
    ("max_frame plus one crlf", say_line(65537, b"\r\n"), ["too_long"]),
    ("long garbage line", b"x" * 70000 + b"\n", ["too_long"]),
    ("too long then good", say_line(65537) + PING_LINE, ["too_long", PING]),
    ("good too long good", PING_LINE + b"y" * 200000 + b"\n" + PING_LINE, [PING, "too_long", PING]),
    ("two too long", say_line(65537) + say_line(70000), ["too_long", "too_long"]),
    ("unfinished max_frame minus one", b"z" * 65535, []),
    ("unfinished max_frame is reported", b"z" * 65536, ["too_long"]),
]

SMALL_CASES = [case for case in DECODER_CASES if len(case[1]) <= 70000]


def _case_id(case: DecoderCase) -> str:
    return case[0]


@pytest.mark.parametrize("case", DECODER_CASES, ids=_case_id)
def test_decode_whole(case: DecoderCase) -> None:
    """Each case fed in one piece."""
    _, data, expected = case
    assert feed_whole(data) == expected


@pytest.mark.parametrize("case", SMALL_CASES, ids=_case_id)
def test_decode_one_byte_at_a_time(case: DecoderCase) -> None:
    """Each case fed one byte at a time, draining after every byte."""
    _, data, expected = case
    assert feed_bytewise(data) == expected


@pytest.mark.parametrize("case", DECODER_CASES, ids=_case_id)
def test_decode_with_trailing_data(case: DecoderCase) -> None:
    """A case followed by a good frame and the start of another: both are left intact."""
    _, data, expected = case
    partial = b'{"type":"pi'
    if data.endswith(b"\n"):
        outcomes, decoder = feed_in_chunks(data + PING_LINE + partial, [])
        assert outcomes == [*expected, PING]
        assert decoder.buffered == len(partial)
    else:
        # An unfinished line swallows what follows until its newline.
        outcomes, decoder = feed_in_chunks(data + PING_LINE + partial, [])
        assert outcomes == reference_outcomes(data + PING_LINE + partial, protocol.MAX_FRAME)


@pytest.mark.parametrize("case", DECODER_CASES, ids=_case_id)
def test_decode_agrees_with_reference_model(case: DecoderCase) -> None:
    """The tables and the plain reference model say the same thing."""
    _, data, expected = case
    assert reference_outcomes(data, protocol.MAX_FRAME) == expected


def test_error_is_a_protocol_error_with_a_known_code() -> None:
    """Bad lines raise ProtocolError carrying a contract code and a message for a person."""
    decoder = FrameDecoder()
    decoder.feed(b"[]\n")
    with pytest.raises(ProtocolError) as info:
        decoder.next_frame()
    assert info.value.code == "bad_frame"
    assert info.value.message
    assert decoder.next_frame() is None


def test_frames_drains_frames_and_errors_in_order() -> None:
    """`frames()` returns every complete line's frame or error, in stream order."""
    decoder = FrameDecoder()
    decoder.feed(PING_LINE + b"{}\n" + b"x" * 70000 + b"\n" + b'{"type":"who"}\n{"ty')
    out = decoder.frames()
    assert [o.code if isinstance(o, ProtocolError) else o for o in out] == [
        PING,
        "bad_frame",
        "too_long",
        {"type": "who"},
    ]
    assert decoder.frames() == []
    assert decoder.buffered == 4


def test_missing_type_error_carries_a_valid_ref() -> None:
    """A frame without a type but with a ref gets its ref back in the error."""
    assert codes(lambda: protocol.decode_line(b'{"ref":"r1"}')) == "bad_frame"
    with pytest.raises(ProtocolError) as info:
        protocol.decode_line(b'{"ref":"r1","type":5}')
    assert info.value.ref == "r1"


# ---------------------------------------------------------------------------
# Decoder: over-long lines and the bounded buffer

MIB = 1024 * 1024


@pytest.mark.parametrize("chunk", [1, 7, 4096, 65536, 65537, MIB])
def test_endless_line_is_too_long_and_buffer_stays_bounded(chunk: int) -> None:
    """A 1 MiB line without newline: one too_long, and never more than max_frame held."""
    decoder = FrameDecoder()
    data = b"a" * MIB
    # One byte at a time for the first stretch only: a million feeds would be slow.
    limit = 200000 if chunk == 1 else MIB
    reported: List[Outcome] = []
    for start in range(0, limit, chunk):
        decoder.feed(data[start : start + chunk])
        assert decoder.buffered <= decoder.max_frame
        reported += drain(decoder)
        assert decoder.buffered < decoder.max_frame
    assert reported == ["too_long"]
    # The line ends, and decoding goes on correctly after it.
    decoder.feed(b"still the long line\n" + PING_LINE + b'{"type":"who"}')
    assert drain(decoder) == [PING]
    decoder.feed(b"\r\n")
    assert drain(decoder) == [{"type": "who"}]
    assert decoder.buffered == 0


def test_endless_line_is_bounded_without_draining() -> None:
    """A caller that feeds a long line without pulling frames still holds max_frame at most."""
    decoder = FrameDecoder()
    for _ in range(256):
        decoder.feed(b"b" * 4096)
        assert decoder.buffered <= decoder.max_frame
    decoder.feed(b"\n" + PING_LINE)
    assert drain(decoder) == ["too_long", PING]


def test_too_long_is_reported_as_soon_as_the_line_cannot_fit() -> None:
    """65535 bytes without newline may still be a frame; one byte more never can."""
    decoder = FrameDecoder()
    decoder.feed(b"c" * 65535)
    assert drain(decoder) == []
    assert decoder.buffered == 65535
    decoder.feed(b"c")
    assert drain(decoder) == ["too_long"]
    assert decoder.buffered == 0


def test_line_of_exactly_max_frame_completes_after_waiting() -> None:
    """A max_frame line arriving in two halves decodes once its newline comes."""
    line = say_line(65536)
    decoder = FrameDecoder()
    decoder.feed(line[:-1])
    assert drain(decoder) == []
    decoder.feed(line[-1:])
    assert drain(decoder) == [json.loads(line)]


def test_max_frame_is_configurable() -> None:
    """A decoder built with a smaller max_frame applies it, newline included."""
    assert feed_whole(b'{"type":"ping"}\n', max_frame=16) == [PING]
    assert feed_whole(b'{"type":"ping"} \n', max_frame=16) == ["too_long"]
    assert feed_bytewise(b'{"type":"ping"} \n' + PING_LINE, max_frame=16) == ["too_long", PING]


# ---------------------------------------------------------------------------
# Decoder: properties for any input and any chunking

json_leaf = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
)
json_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
json_value = st.recursive(
    json_leaf | json_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(json_text, inner, max_size=4),
    max_leaves=20,
)
frames_strategy = st.builds(
    lambda type_, fields: {**fields, "type": type_},
    json_text,
    st.dictionaries(json_text, json_value, max_size=5),
)


@st.composite
def chunkings(draw: st.DrawFn, size: int) -> List[int]:
    """Chunk sizes that add up to at most `size` (the rest is fed in one piece)."""
    sizes: List[int] = draw(st.lists(st.integers(0, max(1, size)), max_size=30))
    return sizes


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=st.lists(frames_strategy, max_size=8), endings=st.data())
def test_any_chunking_of_valid_frames_gives_the_same_frames(
    frames: List[Frame], endings: st.DataObject
) -> None:
    """Encoded frames, with CRLF endings and blank lines mixed in, survive any chunking."""
    data = b""
    for frame in frames:
        line = protocol.encode(frame)
        if endings.draw(st.booleans(), label="crlf"):
            line = line[:-1] + b"\r\n"
        data += endings.draw(st.sampled_from([b"", b"\n", b"\r\n", b" \t\n"]), label="blank")
        data += line
    chunks = endings.draw(chunkings(len(data)), label="chunks")
    outcomes, decoder = feed_in_chunks(data, chunks)
    assert outcomes == frames
    assert decoder.buffered == 0


noisy_bytes = st.lists(
    st.sampled_from(
        [b"\n", b"\r\n", b"\r", b" ", b"{", b"}", b"[", b'"type"', b":", b'"ping"', b",", b"\xff"]
    )
    | st.binary(max_size=40)
    | st.just(PING_LINE),
    max_size=40,
).map(b"".join)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=noisy_bytes, max_frame=st.integers(2, 80), chunk_data=st.data())
def test_any_bytes_in_any_chunks_raise_only_protocol_errors(
    data: bytes, max_frame: int, chunk_data: st.DataObject
) -> None:
    """Any bytes: only ProtocolError escapes, the buffer stays bounded, and chunking does
    not change what comes out (it matches the reference model)."""
    chunks = chunk_data.draw(chunkings(len(data)), label="chunks")
    # feed_in_chunks lets nothing but ProtocolError be caught, and checks the bound.
    outcomes, _ = feed_in_chunks(data, chunks, max_frame)
    assert outcomes == reference_outcomes(data, max_frame)
    assert feed_whole(data, max_frame) == outcomes


@settings(deadline=None)
@given(data=noisy_bytes, max_frame=st.integers(2, 80), chunk_data=st.data())
def test_feeding_many_chunks_before_draining_gives_the_same_outcomes(
    data: bytes, max_frame: int, chunk_data: st.DataObject
) -> None:
    """A caller may feed several chunks and drain once: the outcomes do not change."""
    chunks = chunk_data.draw(chunkings(len(data)), label="chunks")
    decoder = FrameDecoder(max_frame)
    start = 0
    for size in chunks:
        decoder.feed(data[start : start + size])
        start += size
    decoder.feed(data[start:])
    assert drain(decoder) == reference_outcomes(data, max_frame)
    assert decoder.buffered < max_frame


@settings(deadline=None)
@given(frame=frames_strategy)
def test_decode_of_encode_is_identity(frame: Frame) -> None:
    """decode(encode(x)) == x for every frame of JSON values."""
    assert feed_whole(protocol.encode(frame)) == [frame]


# ---------------------------------------------------------------------------
# encode


def test_encode_is_compact_utf8_with_one_newline() -> None:
    """No spaces between tokens, characters not \\u-escaped, one newline at the end."""
    data = protocol.encode({"type": "say", "text": "李雷 Žofie\nnext", "n": [1, 2.5]})
    assert data == '{"type":"say","text":"李雷 Žofie\\nnext","n":[1,2.5]}\n'.encode()
    assert data.count(b"\n") == 1 and data.endswith(b"\n")


def test_encode_refuses_nan() -> None:
    """A frame that could not be decoded again is never sent."""
    with pytest.raises(ValueError):
        protocol.encode({"type": "ping", "token": float("nan")})


def test_a_full_text_fits_in_max_frame_even_escaped() -> None:
    """A max_text text of astral characters, \\u-escaped by a client, still fits."""
    frame = protocol.say("\U0001f600" * protocol.MAX_TEXT, to="\u674e" * 24, ref="r" * 64)
    data = json.dumps(frame, ensure_ascii=True).encode() + b"\n"
    assert len(data) <= protocol.MAX_FRAME
    assert feed_whole(data) == [frame]
    assert len(protocol.encode(frame)) <= protocol.MAX_FRAME


# ---------------------------------------------------------------------------
# validate: client frames

# The client frames of the contract, written out here rather than read from the module.
CLIENT_SCHEMA: Dict[str, Dict[str, Tuple[str, bool]]] = {
    "login": {
        "name": ("str", True),
        "version": ("str", True),
        "auth": ("str", False),
        "last_id": ("int", False),
        "history_id": ("str", False),
        "resume": ("str", False),
        "presence": ("str", False),  # 4.1: "batch"
        "rooms": ("names", False),  # 4.2
        "identity": ("object", False),  # 4.3
        "name_password": ("str", False),  # 4.4
    },
    "say": {
        "text": ("str", True),
        "to": ("str", False),
        "ref": ("token", False),
        "room": ("str", False),
        "notice": ("bool", False),  # 4.4
    },
    "who": {"room": ("str", False)},
    "join": {"room": ("str", True), "ref": ("token", False)},
    "part": {"room": ("str", True), "ref": ("token", False)},
    "topic": {"room": ("str", True), "text": ("str", False), "ref": ("token", False)},
    "rooms": {},
    "register": {"ref": ("token", False)},  # 4.3
    "unregister": {"name": ("str", False), "ref": ("token", False)},
    "nick": {"name": ("str", True), "ref": ("token", False)},
    "away": {"text": ("str", False), "ref": ("token", False)},
    "whois": {"name": ("str", True), "ref": ("token", False)},
    "kick": {"name": ("str", True), "reason": ("str", False), "ref": ("token", False)},
    "ban": {
        "target": ("str", True),
        "duration": ("number", False),
        "reason": ("str", False),
        "ref": ("token", False),
    },
    "unban": {"target": ("str", True), "ref": ("token", False)},
    "bans": {"ref": ("token", False)},
    "mute": {"name": ("str", True), "duration": ("number", False), "ref": ("token", False)},
    "unmute": {"name": ("str", True), "ref": ("token", False)},
    "motd": {"text": ("str", True), "ref": ("token", False)},
    "name_password": {"password": ("str", False), "ref": ("token", False)},  # 4.4
    "ping": {"token": ("token", False)},
    "pong": {"token": ("token", False)},
    "quit": {},
}

GOOD_VALUES = {
    "str": "x",
    "int": 7,
    "token": "t1",
    "names": ["#a"],
    "object": {},
    "number": 1.5,
    "bool": True,
}
OTHER_GOOD_VALUES = {
    "str": "",
    "int": 0,
    "token": 1.5,
    "names": [],
    "object": {"k": 1},
    "number": 3,
    "bool": False,
}
WRONG_VALUES: Dict[str, List[Any]] = {
    "str": [1, 1.5, True, None, [], {}, ["x"]],
    "int": ["1", 1.5, True, False, None, [], {}],
    "token": [True, False, None, [], {}, ["t"]],
    "names": ["#a", 1, None, {}, [1], [None], [["#a"]]],
    "object": ["x", 1, None, [], [{}]],
    "number": ["1", True, None, [], {}],
    "bool": ["true", 1, 0, None, [], {}],
}


def full_client_frame(frame_type: str) -> Frame:
    """A frame of this type with every field, required and optional."""
    return {
        "type": frame_type,
        **{f: GOOD_VALUES[k] for f, (k, _) in CLIENT_SCHEMA[frame_type].items()},
    }


def test_client_frame_types_are_the_contracts() -> None:
    """The module knows exactly the client frames of the contract and its extensions."""
    assert set(protocol.CLIENT_FRAMES) == set(CLIENT_SCHEMA)
    for frame_type, fields in CLIENT_SCHEMA.items():
        assert protocol.CLIENT_FRAMES[frame_type] == fields


@pytest.mark.parametrize("frame_type", sorted(CLIENT_SCHEMA))
def test_validate_accepts_full_and_minimal_frames(frame_type: str) -> None:
    """Every field present, only the required ones, other good values, unknown extras."""
    full = full_client_frame(frame_type)
    assert protocol.validate(full, protocol.CLIENT_FRAMES) is full
    required = {f: GOOD_VALUES[k] for f, (k, r) in CLIENT_SCHEMA[frame_type].items() if r}
    protocol.validate({"type": frame_type, **required}, protocol.CLIENT_FRAMES)
    other = {f: OTHER_GOOD_VALUES[k] for f, (k, _) in CLIENT_SCHEMA[frame_type].items()}
    protocol.validate({"type": frame_type, **other}, protocol.CLIENT_FRAMES)
    protocol.validate({**full, "future_field": [1, {"a": None}]}, protocol.CLIENT_FRAMES)


WRONG_FIELD_CASES = [
    (frame_type, field, value)
    for frame_type, fields in sorted(CLIENT_SCHEMA.items())
    for field, (kind, _) in fields.items()
    for value in WRONG_VALUES[kind]
]


@pytest.mark.parametrize(
    ("frame_type", "field", "value"),
    WRONG_FIELD_CASES,
    ids=[f"{t}.{f}={v!r}" for t, f, v in WRONG_FIELD_CASES],
)
def test_validate_rejects_a_wrong_field_type(frame_type: str, field: str, value: Any) -> None:
    """A field of another type is bad_frame."""
    frame = {**full_client_frame(frame_type), field: value}
    assert codes(lambda: protocol.validate(frame, protocol.CLIENT_FRAMES)) == "bad_frame"


MISSING_CASES = [
    (frame_type, field)
    for frame_type, fields in sorted(CLIENT_SCHEMA.items())
    for field, (_, required) in fields.items()
    if required
]


@pytest.mark.parametrize(("frame_type", "field"), MISSING_CASES)
def test_validate_rejects_a_missing_required_field(frame_type: str, field: str) -> None:
    """A required field that is absent is bad_frame."""
    frame = full_client_frame(frame_type)
    del frame[field]
    assert codes(lambda: protocol.validate(frame, protocol.CLIENT_FRAMES)) == "bad_frame"


@pytest.mark.parametrize(
    "frame_type", ["", "hello", "welcome", "message", "Say", "discover", "x" * 100]
)
def test_validate_rejects_an_unknown_type(frame_type: str) -> None:
    """A type the server does not take from clients is unknown_type."""
    frame = {"type": frame_type}
    assert codes(lambda: protocol.validate(frame, protocol.CLIENT_FRAMES)) == "unknown_type"


@pytest.mark.parametrize(
    ("frame", "code", "ref"),
    [
        ({"type": "nope", "ref": "r1"}, "unknown_type", "r1"),
        ({"type": "nope", "ref": 17}, "unknown_type", 17),
        ({"type": "nope", "ref": 2.5}, "unknown_type", 2.5),
        ({"type": "nope", "ref": True}, "unknown_type", None),
        ({"type": "nope", "ref": [1]}, "unknown_type", None),
        ({"type": "nope"}, "unknown_type", None),
        ({"type": "say", "text": 5, "ref": "r2"}, "bad_frame", "r2"),
        ({"type": "say", "ref": 9}, "bad_frame", 9),
        ({"type": "say", "text": "hi", "ref": {"a": 1}}, "bad_frame", None),
        ({"type": "login", "name": "bob", "version": 4, "ref": "r3"}, "bad_frame", "r3"),
    ],
)
def test_error_carries_the_ref_when_it_is_valid(frame: Frame, code: str, ref: Any) -> None:
    """An error caused by a frame with a string or number ref carries that ref."""
    with pytest.raises(ProtocolError) as info:
        protocol.validate(frame, protocol.CLIENT_FRAMES)
    assert (info.value.code, info.value.ref) == (code, ref)
    assert protocol.error_from(info.value).get("ref") == ref


# ---------------------------------------------------------------------------
# Frame constructors: each builds the contract's frame, which validates


def test_hello_is_the_contracts_example() -> None:
    """hello() without a password is the frame PROTOCOL.md shows."""
    assert protocol.hello("den", ["alice", "carol"]) == {
        "type": "hello",
        "app": "lanchat",
        "version": protocol.VERSION,
        "server": "den",
        "online": ["alice", "carol"],
        "auth": "none",
        "limits": {
            "max_frame": 65536,
            "max_server_frame": 4194304,
            "max_text": 2000,
            "max_name": 24,
        },
    }


def test_hello_with_a_nonce_asks_for_a_password_and_hides_who_is_online() -> None:
    """A password server sends auth password, the nonce and an empty online list."""
    frame = protocol.hello("den", ["alice"], nonce="ab" * 16)
    assert frame["auth"] == "password"
    assert frame["nonce"] == "ab" * 16
    assert frame["online"] == []


SERVER_FRAME_CASES: List[Tuple[str, Frame, Frame]] = [
    (
        "welcome",
        protocol.welcome("bob", ["alice", "bob"], [protocol.message(1, 1.5, "alice", "hi")]),
        {
            "type": "welcome",
            "name": "bob",
            "online": ["alice", "bob"],
            "history": [{"type": "message", "id": 1, "ts": 1.5, "from": "alice", "text": "hi"}],
        },
    ),
    (
        "welcome extensions",
        protocol.welcome(
            "bob", [], [], resume="s3cret", history_id="h1", truncated=True, other=None
        ),
        {
            "type": "welcome",
            "name": "bob",
            "online": [],
            "history": [],
            "resume": "s3cret",
            "history_id": "h1",
            "truncated": True,
        },
    ),
    (
        "join",
        protocol.join("bob", 1764000000.25),
        {"type": "join", "name": "bob", "ts": 1764000000.25},
    ),
    (
        "leave",
        protocol.leave("bob", 12, "timeout"),
        {"type": "leave", "name": "bob", "ts": 12, "reason": "timeout"},
    ),
    (
        "message",
        protocol.message(17, 1764000000.25, "bob", "hello all"),
        {"type": "message", "id": 17, "ts": 1764000000.25, "from": "bob", "text": "hello all"},
    ),
    (
        "private message",
        protocol.message(18, 2.0, "bob", "psst", to="alice", ref=3),
        {
            "type": "message",
            "id": 18,
            "ts": 2.0,
            "from": "bob",
            "text": "psst",
            "to": "alice",
            "ref": 3,
        },
    ),
    ("online", protocol.online(("a", "b")), {"type": "online", "names": ["a", "b"]}),
    ("ping", protocol.ping("t"), {"type": "ping", "token": "t"}),
    ("pong", protocol.pong(5), {"type": "pong", "token": 5}),
    ("bare ping", protocol.ping(), {"type": "ping"}),
    ("bare pong", protocol.pong(), {"type": "pong"}),
    (
        "error",
        protocol.error("name_taken", ref="r"),
        {
            "type": "error",
            "code": "name_taken",
            "message": "That name is already online.",
            "ref": "r",
        },
    ),
    (
        "error extra",
        protocol.error("incompatible_version", "Speak 4.", server_version="4.0.0"),
        {
            "type": "error",
            "code": "incompatible_version",
            "message": "Speak 4.",
            "server_version": "4.0.0",
        },
    ),
    ("shutdown", protocol.shutdown("bye"), {"type": "shutdown", "message": "bye"}),
]


@pytest.mark.parametrize(
    ("name", "frame", "expected"), SERVER_FRAME_CASES, ids=[c[0] for c in SERVER_FRAME_CASES]
)
def test_server_frame_constructors(name: str, frame: Frame, expected: Frame) -> None:
    """Each server frame is exactly the contract's and validates as a server frame."""
    assert frame == expected
    protocol.validate(frame, protocol.SERVER_FRAMES)
    assert feed_whole(protocol.encode(frame)) == [frame]


CLIENT_FRAME_CASES: List[Tuple[str, Frame, Frame]] = [
    ("login", protocol.login("bob"), {"type": "login", "name": "bob", "version": protocol.VERSION}),
    (
        "login full",
        protocol.login("bob", auth="ab", last_id=17, history_id="h1", resume="tok"),
        {
            "type": "login",
            "name": "bob",
            "version": protocol.VERSION,
            "auth": "ab",
            "last_id": 17,
            "history_id": "h1",
            "resume": "tok",
        },
    ),
    (
        "login last_id 0",
        protocol.login("bob", last_id=0),
        {"type": "login", "name": "bob", "version": protocol.VERSION, "last_id": 0},
    ),
    ("say", protocol.say("hello all"), {"type": "say", "text": "hello all"}),
    (
        "say private",
        protocol.say("psst", to="alice", ref="c1"),
        {"type": "say", "text": "psst", "to": "alice", "ref": "c1"},
    ),
    ("who", protocol.who(), {"type": "who"}),
    ("ping", protocol.ping(1.5), {"type": "ping", "token": 1.5}),
    ("pong", protocol.pong("x"), {"type": "pong", "token": "x"}),
    ("quit", protocol.quit(), {"type": "quit"}),
]


@pytest.mark.parametrize(
    ("name", "frame", "expected"), CLIENT_FRAME_CASES, ids=[c[0] for c in CLIENT_FRAME_CASES]
)
def test_client_frame_constructors(name: str, frame: Frame, expected: Frame) -> None:
    """Each client frame is exactly the contract's and validates as a client frame."""
    assert frame == expected
    protocol.validate(frame, protocol.CLIENT_FRAMES)


def test_discovery_frames() -> None:
    """The UDP probe and answer are the contract's and validate."""
    probe = protocol.discover()
    assert probe == {"type": "discover", "app": "lanchat", "version": protocol.VERSION}
    answer = protocol.server_info("den", 42070, 3, 50)
    assert answer == {
        "type": "server",
        "app": "lanchat",
        "version": protocol.VERSION,
        "server": "den",
        "port": 42070,
        "users": 3,
        "max_users": 50,
    }
    protocol.validate(probe, protocol.DISCOVERY_FRAMES)
    protocol.validate(answer, protocol.DISCOVERY_FRAMES)


def test_discovery_answer_of_a_tls_server_with_irc() -> None:
    """(4.4) The IRC port, and TLS with the certificate's fingerprint, when on."""
    answer = protocol.server_info("den", 42070, 3, 50, irc_port=6697, fingerprint="SHA256:AB")
    assert (answer["irc_port"], answer["tls"], answer["fingerprint"]) == (6697, True, "SHA256:AB")
    protocol.validate(answer, protocol.DISCOVERY_FRAMES)


@pytest.mark.parametrize("reason", ["quit", "disconnect", "timeout", "slow", "error"])
def test_leave_takes_every_contract_reason(reason: str) -> None:
    """Every leave reason of the contract is accepted."""
    assert protocol.leave("bob", 1, reason)["reason"] == reason


def test_leave_refuses_an_unknown_reason() -> None:
    """A reason outside the contract is a programming error."""
    with pytest.raises(ValueError):
        protocol.leave("bob", 1, "shutdown")


# The error table of PROTOCOL.md: code -> the server always closes after it.
CONTRACT_ERRORS = {
    "bad_frame": False,  # closed only before login: the server decides
    "too_long": False,  # closed for a frame, kept for a text: the server decides
    "unknown_type": False,
    "not_logged_in": False,
    "invalid_name": False,
    "name_taken": False,
    "incompatible_version": True,
    "auth_failed": True,
    "server_full": True,
    "rate_limited": False,
    "too_many_connections": True,
    "flooding": True,
    "timeout": True,
    "bad_text": False,
    "no_such_user": False,
    # 4.1 extensions (docs/protocol.md)
    "not_stored": False,
    "name_reclaimed": True,
    "server_error": True,
    # 4.2: rooms, all keep the connection
    "invalid_room": False,
    "no_such_room": False,
    "not_in_room": False,
    "last_room": False,
    "too_many_rooms": False,
    "too_many_joined": False,
    "room_full": False,
    # 4.3: identity, registered names, operators
    "bad_identity": True,
    "no_identity": False,
    "name_registered": False,
    "not_operator": False,
    "kicked": True,
    "banned": True,
    "muted": False,
    # 4.4: name passwords, TLS
    "invalid_password": False,
    "not_registered": False,
    "tls_required": True,
}


def test_error_codes_are_the_contracts() -> None:
    """Exactly the contract's codes, each with a message and the contract's close rule."""
    assert set(protocol.ERROR_CODES) == set(CONTRACT_ERRORS)
    for code, closes in CONTRACT_ERRORS.items():
        assert protocol.closes_connection(code) is closes
        assert protocol.error(code)["message"]


def test_unknown_error_code_is_refused() -> None:
    """Neither an error frame nor a ProtocolError can carry a code outside the contract."""
    with pytest.raises(ValueError):
        protocol.error("oops")
    with pytest.raises(ValueError):
        ProtocolError("oops")


def test_error_from_carries_code_message_ref_and_extras() -> None:
    """error_from turns a ProtocolError into its error frame."""
    exc = ProtocolError("rate_limited", "Slow down.", ref="r9")
    assert protocol.error_from(exc, retry_after=1.5) == {
        "type": "error",
        "code": "rate_limited",
        "message": "Slow down.",
        "ref": "r9",
        "retry_after": 1.5,
    }


def test_contract_constants() -> None:
    """The numbers PROTOCOL.md fixes."""
    assert (protocol.APP, protocol.VERSION, protocol.MAJOR) == ("lanchat", "4.4.0", 4)
    assert (protocol.DEFAULT_PORT, protocol.PORT_SPAN) == (42069, 30)
    assert protocol.MAX_FRAME == 65536
    assert protocol.MAX_SERVER_FRAME == 4 * 1024 * 1024
    assert (protocol.MAX_TEXT, protocol.MAX_NAME) == (2000, 24)
    assert (protocol.MAX_ROOM, protocol.MAX_TOPIC) == (32, 300)  # 4.2
    assert (protocol.LOGIN_TIMEOUT, protocol.IDLE_TIMEOUT) == (30, 120)
    assert protocol.MIN_HISTORY >= 50


def test_protocol_module_does_no_io() -> None:
    """protocol.py imports nothing that opens sockets, starts threads or reads the clock."""
    tree = ast.parse(Path(protocol.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"socket", "select", "selectors", "threading", "time", "asyncio", "os"}


# ---------------------------------------------------------------------------
# Versions


@pytest.mark.parametrize(
    ("version", "compatible"),
    [
        ("4.0.0", True),
        ("4.1.0", True),
        ("4.99.7", True),
        ("4", True),
        ("4.0.0-rc1", True),
        ("3.9.9", False),
        ("5.0.0", False),
        ("40.0.0", False),
        ("0.4.0", False),
        ("", False),
        ("four", False),
        (".4", False),
        ("v4.0.0", False),
        ("-4.0.0", False),
        ("\u0664.0.0", False),  # ARABIC-INDIC DIGIT FOUR is a digit, not ASCII
        ("\uff14.0.0", False),  # FULLWIDTH DIGIT FOUR
    ],
)
def test_is_compatible_compares_major_numbers(version: str, compatible: bool) -> None:
    """Compatible exactly when the MAJOR number is 4."""
    assert protocol.is_compatible(version) is compatible


def test_major_of() -> None:
    """The MAJOR number, or None when there is none."""
    assert protocol.major_of("4.2.1") == 4
    assert protocol.major_of("12") == 12
    assert protocol.major_of("x.1") is None
    assert protocol.major_of("") is None


# ---------------------------------------------------------------------------
# Names

VALID_NAMES = [
    "bob",
    "Bob",
    "a",
    "7",
    "a.b-c_d",
    "bob2",
    "\u017dofie",  # Žofie
    "\u674e\u96f7",  # 李雷
    "\u7530\u4e2d\u3055\u3093",  # 田中さん
    "\u30e9\u30fc\u30e1\u30f3",  # ラーメン, with the script-less prolonged sound mark
    "\u0939\u093f\u0928\u094d\u0926\u0940",  # हिन्दी, with combining vowel signs
    "\u0414\u043c\u0438\u0442\u0440\u0438\u0439",  # Дмитрий
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629",  # Arabic
    "\u0e44\u0e17\u0e22",  # Thai
    "\u03b1\u03b2\u03b3",  # Greek
    "Tanaka\u7530\u4e2d\u3055\u3093",  # Latin + Han + Hiragana
    "Tanaka\u7530\u4e2d\u30e9\u30fc\u30e1\u30f3",  # Latin + Han + Katakana
    "Kim\u91d1\ubbfc\uc218",  # Latin + Han + Hangul
    "Lin\u6797\u3105",  # Latin + Han + Bopomofo
    "\uff42\uff4f\uff42",  # fullwidth bob
    "q\u0307",  # a mark after a letter (no precomposed form)
    "a\u0301\u0323",  # two marks after a letter
    "\u0661\u0662\u0663",  # Arabic-Indic digits only
    "a" * 24,
    "e\u0301" * 24,  # 48 code points, 24 after NFC
    "_a_",
    "-1-",
]

INVALID_NAMES = [
    ("empty", ""),
    ("too long", "a" * 25),
    ("too long after NFC", "e\u0301" * 25),
    ("latin with cyrillic a", "p\u0430ul"),
    ("latin + cyrillic", "Paul\u0432\u0430\u0441\u044f"),
    ("latin + greek", "a\u03b1"),
    ("hangul + katakana", "\ubbfc\uc218\u30e9\u30fc\u30e1\u30f3"),
    ("hangul + hiragana", "\ubbfc\u3055"),
    ("bopomofo + hiragana", "\u3105\u3055"),
    ("space", "bo b"),
    ("leading space", " bob"),
    ("no-break space", "bo\u00a0b"),
    ("ideographic space", "bo\u3000b"),
    ("zero width joiner", "bo\u200db"),
    ("zero width non-joiner", "bo\u200cb"),
    ("zero width space", "bo\u200bb"),
    ("soft hyphen", "bo\u00adb"),
    ("bidi override", "bo\u202eb"),
    ("nul", "bo\x00b"),
    ("tab", "bo\tb"),
    ("newline", "bob\n"),
    ("del", "bob\x7f"),
    ("c1 control", "bob\x85"),
    ("line separator", "a\u2028b"),
    ("emoji", "bob\U0001f600"),
    ("emoji only", "\U0001f600"),
    ("at sign", "bob@home"),
    ("slash", "a/b"),
    ("mark first", "\u0301a"),
    ("mark after digit", "1\u0301"),
    ("mark after punctuation", "_\u0301"),
    ("only punctuation", "_-."),
    ("only dots", "..."),
    ("roman numeral", "\u2160"),
]


@pytest.mark.parametrize("name", VALID_NAMES)
def test_valid_name(name: str) -> None:
    """Names the contract allows come back in NFC."""
    assert names.validate_name(name) == unicodedata.normalize("NFC", name)


@pytest.mark.parametrize("name", [n for _, n in INVALID_NAMES], ids=[i for i, _ in INVALID_NAMES])
def test_invalid_name(name: str) -> None:
    """Names that break a rule are invalid_name, with a message saying why."""
    with pytest.raises(ProtocolError) as info:
        names.validate_name(name)
    assert info.value.code == "invalid_name"
    assert info.value.message


def test_name_keeps_its_nfc_spelling() -> None:
    """A decomposed name is returned composed, not case-folded."""
    assert names.validate_name("Zo\u0301e") == "Z\u00f3e"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Bob", "bob"),
        ("Bob", "\uff42\uff4f\uff42"),  # fullwidth
        ("bob", "BOB"),
        ("\u00e9mile", "e\u0301mile"),  # NFC and NFD spellings
        ("Stra\u00dfe", "strasse"),  # full case folding
        ("\U0001d41b\U0001d428\U0001d41b", "bob"),  # mathematical bold letters
    ],
)
def test_name_key_collides(a: str, b: str) -> None:
    """Names that must not be online together share a key."""
    assert names.name_key(a) == names.name_key(b)


@pytest.mark.parametrize(("a", "b"), [("bob", "rob"), ("bob", "bob2"), ("p\u0430ul", "paul")])
def test_name_key_keeps_different_names_apart(a: str, b: str) -> None:
    """Different names keep different keys."""
    assert names.name_key(a) != names.name_key(b)


# ---------------------------------------------------------------------------
# Text


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("hello all", "hello all"),
        ("a\tb\rc\nd", "a b c d"),
        ("a\r\nb", "a  b"),
        ("".join(chr(c) for c in range(0x20) if c not in (9, 10, 13)) + "x", "x"),
        ("a\x7fb", "ab"),
        ("".join(chr(c) for c in range(0x80, 0xA0)) + "y", "y"),
        ("x\u202ay\u202bz\u202c1\u202d2\u202e3", "xyz123"),
        ("x\u2066y\u2067z\u2068w\u2069v", "xyzwv"),
        ("a\u2065b\u206ac\u202fd\u2029e", "a\u2065b\u206ac\u202fd\u2029e"),  # neighbours stay
        ("  padded  ", "padded"),
        ("\t\nindented\r\n", "indented"),
        ("\u3000wide\u00a0", "wide"),
        ("inner  spaces kept", "inner  spaces kept"),
        ("\u674e\u96f7 \U0001f600", "\u674e\u96f7 \U0001f600"),
        ("x" * 2000, "x" * 2000),
        (" " * 1999 + "x", "x"),
    ],
)
def test_clean_text(text: str, cleaned: str) -> None:
    """Controls become spaces or go, bidi overrides go, the ends are trimmed."""
    assert names.clean_text(text) == cleaned


@pytest.mark.parametrize("text", ["", " ", "\t\r\n", "\x00\x01\x7f\x85", "\u202e\u2066", " \x1b "])
def test_text_empty_after_cleaning_is_bad_text(text: str) -> None:
    """Nothing left to relay is bad_text."""
    assert codes(lambda: names.clean_text(text)) == "bad_text"


@pytest.mark.parametrize("text", ["x" * 2001, "\x00" * 2001, "\u674e" * 2001])
def test_text_over_max_text_as_sent_is_too_long(text: str) -> None:
    """The limit counts code points as sent, before cleaning."""
    assert codes(lambda: names.clean_text(text)) == "too_long"


def test_strip_controls_keeps_white_space_at_the_ends() -> None:
    """strip_controls only replaces and removes; trimming is clean_text's."""
    assert names.strip_controls("\ta\x00b\u202e ") == " ab "


# ---------------------------------------------------------------------------
# Passwords


def expected_proof(password: str, nonce: str, name: str) -> str:
    """The contract's proof, computed here with hmac directly."""
    message = bytes.fromhex(nonce) + name.encode("utf-8")
    return hmac.new(password.encode("utf-8"), message, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("password", "nonce", "name", "proof"),
    [
        # Computed with `openssl dgst -sha256 -hmac`, independently of Python.
        (
            "hunter2",
            "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
            "bob",
            "7799e9ce2010c1eacb43ab1ea32f44fd1237936d61a9cac39a9599ceb9a49bfa",
        ),
        (
            "p\u00e4ssw\u00f6rd",
            "00112233445566778899aabbccddeeff",
            "\u017dofie",
            "f0553799dc9c6f730459a4bb1d385965f24c393b4dd45a837230fc97099a3955",
        ),
    ],
)
def test_password_proof_known_vectors(password: str, nonce: str, name: str, proof: str) -> None:
    """Fixed vectors: lower-case hex HMAC-SHA256 over nonce bytes then the UTF-8 name."""
    assert protocol.password_proof(password, nonce, name) == proof
    assert expected_proof(password, nonce, name) == proof


@settings(deadline=None)
@given(
    password=st.text(st.characters(blacklist_categories=("Cs",))),
    nonce=st.binary(min_size=16, max_size=16).map(bytes.hex),
    name=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=24),
)
def test_password_proof_matches_hmac(password: str, nonce: str, name: str) -> None:
    """For any password, nonce and name the proof is the HMAC computed here."""
    proof = protocol.password_proof(password, nonce, name)
    assert proof == expected_proof(password, nonce, name)
    assert len(proof) == 64 and proof == proof.lower()


def test_password_proof_depends_on_every_input() -> None:
    """Another password, nonce or name gives another proof."""
    base = protocol.password_proof("pw", "00" * 16, "bob")
    assert protocol.password_proof("pW", "00" * 16, "bob") != base
    assert protocol.password_proof("pw", "00" * 15 + "01", "bob") != base
    assert protocol.password_proof("pw", "00" * 16, "Bob") != base


def test_protocol_error_message_defaults_to_the_tables() -> None:
    """A ProtocolError without a message gets the plain English of its code."""
    exc = ProtocolError("no_such_user")
    assert exc.message == protocol.ERROR_CODES["no_such_user"][0]
    assert exc.ref is None
    assert "no_such_user" in str(exc)


def test_consecutive_over_long_lines_are_each_reported_in_order() -> None:
    decoder = FrameDecoder(max_frame=100)
    decoder.feed(b"x" * 150 + b"\n" + b"y" * 150 + b"\n" + b'{"type":"a"}\n')
    out = decoder.frames()
    assert [getattr(item, "code", None) for item in out] == ["too_long", "too_long", None]
    assert out[2] == {"type": "a"}


def test_the_buffer_stays_bounded_while_a_too_long_waits_to_be_reported() -> None:
    decoder = FrameDecoder(max_frame=100)
    decoder.feed(b"x" * 150 + b"\n")
    for _ in range(10):  # no frames pulled in between
        decoder.feed(b"y" * 60)
        assert decoder.buffered < 100
