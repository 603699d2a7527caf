"""The rules for names and text: what a name may hold, when two names collide, and how a
message text is cleaned.

Pure code, like `protocol` (whose limits and error codes it uses): both the server and
the client judge names and texts by these rules.
"""

from __future__ import annotations

import bisect
import unicodedata
from typing import Dict, FrozenSet, Iterable, Optional, Tuple

from lanchat.protocol import MAX_NAME, MAX_ROOM, MAX_TEXT, MAX_TOPIC, ProtocolError

# The mixes of scripts that Unicode TS #39 calls highly restrictive.
_ALLOWED_MIXES: Tuple[FrozenSet[str], ...] = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)

# The stdlib has no Script property: a character's script is read off its Unicode name.
# Prefixes that do not start with the script's own name come first.
_SCRIPT_BY_PREFIX: Tuple[Tuple[str, Optional[str]], ...] = (
    ("KATAKANA-HIRAGANA", None),  # the prolonged sound mark ー belongs to no script
    ("HALFWIDTH KATAKANA", "KATAKANA"),
    ("HALFWIDTH HANGUL", "HANGUL"),
    ("FULLWIDTH LATIN", "LATIN"),
    ("CJK", "HAN"),
    ("IDEOGRAPHIC", "HAN"),
    ("MODIFIER LETTER", None),
)

_NAME_PUNCTUATION = frozenset("_-.")

# Default_Ignorable_Code_Point: characters that draw as nothing, so `bob\ufe0f` would look
# like `bob`. The stdlib has no such property; these are the ranges of
# https://www.unicode.org/Public/14.0.0/ucd/DerivedCoreProperties.txt (the Unicode version
# of Python 3.11's unicodedata; 15.0 to 16.0 list the same ranges), adjacent lines joined.
_DEFAULT_IGNORABLE: Tuple[Tuple[int, int], ...] = (
    (0x00AD, 0x00AD),  # soft hyphen
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x061C, 0x061C),  # Arabic letter mark
    (0x115F, 0x1160),  # Hangul choseong and jungseong fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels
    (0x180B, 0x180F),  # Mongolian free variation selectors and vowel separator
    (0x200B, 0x200F),  # zero width space, joiners, LRM, RLM
    (0x202A, 0x202E),  # bidi embeddings and overrides
    (0x2060, 0x206F),  # word joiner, invisible operators, bidi isolates, deprecated formats
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors 1-16
    (0xFEFF, 0xFEFF),  # zero width no-break space (BOM)
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler
    (0xFFF0, 0xFFF8),  # reserved
    (0x1BCA0, 0x1BCA3),  # shorthand format controls
    (0x1D173, 0x1D17A),  # musical symbol beam and phrase controls
    (0xE0000, 0xE0FFF),  # tags, variation selectors 17-256, reserved
)
_DEFAULT_IGNORABLE_STARTS = [start for start, _ in _DEFAULT_IGNORABLE]


def is_default_ignorable(char: str) -> bool:
    """True for a Default_Ignorable_Code_Point: a character that is drawn as nothing."""
    code = ord(char)
    index = bisect.bisect_right(_DEFAULT_IGNORABLE_STARTS, code) - 1
    return index >= 0 and code <= _DEFAULT_IGNORABLE[index][1]


def script_of(char: str) -> Optional[str]:
    """The script of a letter, as the first word(s) of its Unicode name; None if none."""
    name = unicodedata.name(char, "")
    for prefix, script in _SCRIPT_BY_PREFIX:
        if name.startswith(prefix):
            return script
    return name.split(" ", 1)[0] or None


def scripts_mix_ok(scripts: Iterable[str]) -> bool:
    """True for one script, or for a mix TS #39 calls highly restrictive."""
    found = frozenset(scripts)
    return len(found) <= 1 or any(found <= mix for mix in _ALLOWED_MIXES)


def validate_name(name: str) -> str:
    """Return the name in NFC, or raise invalid_name saying which rule it breaks."""
    return _checked(name, MAX_NAME, "invalid_name", "A name")


def validate_room(room: str) -> str:
    """Return the room name (`#` and a name of up to MAX_ROOM characters) in NFC, or raise
    invalid_room saying which rule it breaks (protocol 4.2)."""
    if not room.startswith("#"):
        raise ProtocolError("invalid_room", "A room name starts with '#'.")
    return "#" + _checked(room[1:], MAX_ROOM, "invalid_room", "A room name after '#'")


def _checked(name: str, longest: int, code: str, what: str) -> str:
    """The name in NFC if it keeps the name rules (docs/protocol.md, Names), else raise
    `code`, with a message about `what` was given."""
    nfc = unicodedata.normalize("NFC", name)
    if not 1 <= len(nfc) <= longest:
        raise ProtocolError(code, f"{what} is 1 to {longest} characters.")
    scripts = set()
    has_letter_or_digit = False
    previous_category = ""
    for char in nfc:
        if is_default_ignorable(char):
            raise ProtocolError(
                code, f"{what} may not hold the invisible character U+{ord(char):04X}."
            )
        category = unicodedata.category(char)
        if category.startswith("L"):
            has_letter_or_digit = True
            script = script_of(char)
            if script:
                scripts.add(script)
        elif category == "Nd":
            has_letter_or_digit = True
        elif category.startswith("M"):
            if not previous_category.startswith(("L", "M")):
                raise ProtocolError(code, "A combining mark must follow a letter.")
        elif char not in _NAME_PUNCTUATION:
            raise ProtocolError(
                code, f"{what} may hold letters, digits, '_', '-' and '.', not {char!r}."
            )
        previous_category = category
    if not has_letter_or_digit:
        raise ProtocolError(code, f"{what} needs at least one letter or digit.")
    if not scripts_mix_ok(scripts):
        raise ProtocolError(code, f"{what} may not mix letters of look-alike scripts.")
    return nfc


def name_key(name: str) -> str:
    """The key two names collide on: NFKC casefold, so `Bob`, `bob`, `ｂｏｂ` are one."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


def room_key(room: str) -> str:
    """The key two room names collide on, as names do: `#Dev` and `#dev` are one room."""
    return "#" + name_key(room[1:])


# Text

_SPACE_CONTROLS = "\t\r\n"
_REMOVED = (
    [chr(c) for c in range(0x20) if chr(c) not in _SPACE_CONTROLS]
    + [chr(c) for c in range(0x7F, 0xA0)]
    + [chr(c) for c in range(0x202A, 0x202F)]
    + [chr(c) for c in range(0x2066, 0x206A)]
)
_CLEAN_TABLE: Dict[int, Optional[str]] = {ord(c): " " for c in _SPACE_CONTROLS}
_CLEAN_TABLE.update({ord(c): None for c in _REMOVED})


def strip_controls(text: str) -> str:
    """Replace tab, CR and LF by a space and drop every other control or bidi override."""
    return text.translate(_CLEAN_TABLE)


def clean_text(text: str) -> str:
    """Apply the contract's text rules; raise too_long or bad_text."""
    if len(text) > MAX_TEXT:
        raise ProtocolError("too_long", f"A message is at most {MAX_TEXT} characters.")
    cleaned = strip_controls(text).strip()
    if not cleaned:
        raise ProtocolError("bad_text", "That message is empty once cleaned.")
    return cleaned


def clean_topic(text: str) -> str:
    """A room's topic as kept: cleaned like a message, at most MAX_TOPIC characters as
    sent; "" (also after cleaning) clears it."""
    if len(text) > MAX_TOPIC:
        raise ProtocolError("too_long", f"A topic is at most {MAX_TOPIC} characters.")
    return strip_controls(text).strip()
