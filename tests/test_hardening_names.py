"""Names may not hold Default_Ignorable_Code_Point characters: they draw as nothing, so
`bob\\ufe0f` would pass for `bob` (hardening issue, item 4)."""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import List

import pytest
from conftest import free_port
from wire import RawClient, login, start_pyz_server

from lanchat import names
from lanchat.protocol import ProtocolError

# The ranges of DerivedCoreProperties.txt, written out again here so that a changed table
# in the protocol module shows up as a failing boundary.
IGNORABLE_RANGES = [
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
]
INSIDE = sorted({code for low, high in IGNORABLE_RANGES for code in (low, high)})
OUTSIDE = sorted({code for low, high in IGNORABLE_RANGES for code in (low - 1, high + 1)})

# The issue's look-alikes of `bob`, and a name made only of Hangul fillers.
LOOK_ALIKES = [
    "bob\ufe0f",  # variation selector 16
    "bo\u034fb",  # combining grapheme joiner
    "bob\u3164",  # Hangul filler
    "bo\u17b4b",  # Khmer inherent vowel
    "\u115f\u1160\u3164\uffa0",  # Hangul fillers only
    "bob\U000e0062",  # a tag character
    "bob\U000e0100",  # variation selector 17
]


def _hex(codes: List[int]) -> List[str]:
    return [f"U+{code:04X}" for code in codes]


def test_the_table_is_sorted_and_its_ranges_apart() -> None:
    """Adjacent ranges are joined, so every boundary's neighbour outside is not ignorable."""
    assert list(names._DEFAULT_IGNORABLE) == IGNORABLE_RANGES
    for (_, high), (low, _) in zip(IGNORABLE_RANGES, IGNORABLE_RANGES[1:]):
        assert high + 1 < low


@pytest.mark.parametrize("code", INSIDE, ids=_hex(INSIDE))
def test_every_range_boundary_is_default_ignorable(code: int) -> None:
    assert names.is_default_ignorable(chr(code))


@pytest.mark.parametrize("code", OUTSIDE, ids=_hex(OUTSIDE))
def test_just_outside_every_range_is_not(code: int) -> None:
    assert not names.is_default_ignorable(chr(code))


@pytest.mark.parametrize("code", INSIDE, ids=_hex(INSIDE))
def test_a_name_with_an_ignorable_character_is_invalid(code: int) -> None:
    """Wherever the character stands, and say which one it is."""
    for name in (f"b{chr(code)}ob", f"bob{chr(code)}", f"{chr(code)}bob"):
        with pytest.raises(ProtocolError) as info:
            names.validate_name(name)
        assert info.value.code == "invalid_name"
        assert f"U+{code:04X}" in info.value.message


@pytest.mark.parametrize("name", LOOK_ALIKES, ids=ascii)
def test_the_look_alikes_of_the_issue_are_invalid(name: str) -> None:
    with pytest.raises(ProtocolError) as info:
        names.validate_name(name)
    assert info.value.code == "invalid_name"


@pytest.mark.parametrize(
    "name",
    [
        "\u1100\u1161",  # a Hangul choseong and jungseong that are not fillers
        "\u1780\u17b6",  # Khmer with a vowel sign just after the inherent vowels
        "\u1820\u1810",  # Mongolian letter and digit, next to the variation selectors
        "\ud55c\uae00",  # Hangul syllables
        "\uffa1\uffc2",  # halfwidth Hangul letters next to the halfwidth filler
    ],
    ids=ascii,
)
def test_visible_neighbours_of_the_ranges_are_still_fine(name: str) -> None:
    assert names.validate_name(name) == unicodedata.normalize("NFC", name)


@pytest.mark.pyz
def test_the_pyz_server_refuses_look_alikes_of_a_name_online(pyz: Path) -> None:
    proc, address = start_pyz_server(
        str(pyz), "--bind", "127.0.0.1", "--port", str(free_port()), "--no-discovery"
    )
    try:
        login(address, "bob")
        client = RawClient(address)
        client.expect("hello")
        for name in LOOK_ALIKES:  # invalid_name keeps the connection: try them all on it
            client.send({"type": "login", "name": name, "version": "4.0.0"})
            assert client.expect_error("invalid_name")["message"].startswith(
                "A name may not hold the invisible character"
            )
        client.send({"type": "login", "name": "bobby", "version": "4.0.0"})
        assert client.expect("welcome")["online"] == ["bob", "bobby"]
    finally:
        proc.kill()
        proc.communicate(timeout=10)
