"""Ed25519 (lanchat/ed25519.py) against RFC 8032's test vectors (section 7.1), its refusal
of malformed and non-canonical input, and the login proof of lanchat/identity.py."""

from __future__ import annotations

import hashlib
from typing import Dict, List

import pytest

from lanchat import ed25519, identity, protocol

# RFC 8032, section 7.1: secret key, public key, message, signature (hex).
VECTORS: List[Dict[str, str]] = [
    {
        "name": "TEST 1",
        "secret": "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "public": "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "message": "",
        "signature": "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    },
    {
        "name": "TEST 2",
        "secret": "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "public": "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "message": "72",
        "signature": "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    },
    {
        "name": "TEST 3",
        "secret": "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "public": "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "message": "af82",
        "signature": "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
        "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    },
    {
        "name": "TEST 1024",
        "secret": "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
        "public": "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
        "message": (
            "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98"
            "fa6e264bf09efe12ee50f8f54e9f77b1e355f6c50544e23fb1433ddf73be84d8"
            "79de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d"
            "658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc"
            "1a858efcb8550ee3a5e1998bd177e93a7363c344fe6b199ee5d02e82d522c4fe"
            "ba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e"
            "06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbef"
            "efd75499da96bd68a8a97b928a8bbc103b6621fcde2beca1231d206be6cd9ec7"
            "aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1"
            "85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2"
            "d17ba70eb6248e594e1a2297acbbb39d502f1a8c6eb6f1ce22b3de1a1f40cc24"
            "554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270"
            "88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc"
            "2732e69485bbc9c90bfbd62481d9089beccf80cfe2df16a2cf65bd92dd597b07"
            "07e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba"
            "b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51a"
            "ddd3b75a2b1ae0784504df543af8969be3ea7082ff7fc9888c144da2af58429e"
            "c96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7"
            "51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c"
            "42f58c30c04aafdb038dda0847dd988dcda6f3bfd15c4b4c4525004aa06eeff8"
            "ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df"
            "f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08"
            "d78ff4ef5d63653a65040cf9bfd4aca7984a74d37145986780fc0b16ac451649"
            "de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4"
            "88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a3"
            "2ef5b52a1ecc820e308aa342721aac0943bf6686b64b2579376504ccc493d97e"
            "6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f"
            "b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b5"
            "0d334ba77c225bc307ba537152f3f1610e4eafe595f6d9d90d11faa933a15ef1"
            "369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d"
            "b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c"
            "0618983f8741c5ef68d3a101e8a3b8cac60c905c15fc910840b94c00a0b9d0"
        ),
        "signature": "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350"
        "aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03",
    },
    {
        "name": "TEST SHA(abc)",
        "secret": "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        "public": "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        "message": hashlib.sha512(b"abc").hexdigest(),
        "signature": "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589"
        "09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
    },
]
IDS = [v["name"] for v in VECTORS]
TEST_1 = VECTORS[0]


def test_the_long_vector_is_1023_bytes() -> None:
    assert len(bytes.fromhex(VECTORS[3]["message"])) == 1023


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_public_key_of_the_rfc_vectors(vector: Dict[str, str]) -> None:
    assert ed25519.public_key(bytes.fromhex(vector["secret"])).hex() == vector["public"]


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_sign_gives_the_rfc_signature(vector: Dict[str, str]) -> None:
    secret, message = bytes.fromhex(vector["secret"]), bytes.fromhex(vector["message"])
    assert ed25519.sign(secret, message).hex() == vector["signature"]


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_verify_accepts_the_rfc_signature(vector: Dict[str, str]) -> None:
    public, message, signature = (
        bytes.fromhex(vector[k]) for k in ("public", "message", "signature")
    )
    assert ed25519.verify(public, message, signature) is True


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_verify_refuses_a_changed_message_or_signature(vector: Dict[str, str]) -> None:
    public, message, signature = (
        bytes.fromhex(vector[k]) for k in ("public", "message", "signature")
    )
    assert not ed25519.verify(public, message + b"x", signature)
    for index in (0, 31, 32, 63):
        flipped = bytearray(signature)
        flipped[index] ^= 0x01
        assert not ed25519.verify(public, message, bytes(flipped)), index


def test_verify_refuses_another_key() -> None:
    other = bytes.fromhex(VECTORS[1]["public"])
    signature = bytes.fromhex(TEST_1["signature"])
    assert not ed25519.verify(other, b"", signature)


def test_verify_refuses_a_non_canonical_s() -> None:
    """S + L verifies under the group law, but RFC 8032 says to reject S >= L."""
    public, signature = bytes.fromhex(TEST_1["public"]), bytes.fromhex(TEST_1["signature"])
    s = int.from_bytes(signature[32:], "little")
    malleated = signature[:32] + (s + ed25519.L).to_bytes(32, "little")
    assert not ed25519.verify(public, b"", malleated)


@pytest.mark.parametrize(
    "public, message, signature",
    [
        (b"", b"", b""),
        (b"\x00" * 31, b"", b"\x00" * 64),
        (b"\x00" * 33, b"", b"\x00" * 64),
        (bytes.fromhex(TEST_1["public"]), b"", b"\x00" * 63),
        (bytes.fromhex(TEST_1["public"]), b"", b"\xff" * 64),
        (b"\xff" * 32, b"", bytes.fromhex(TEST_1["signature"])),  # y >= p: no point
        ("not bytes", b"", b"\x00" * 64),
        (bytes.fromhex(TEST_1["public"]), None, bytes.fromhex(TEST_1["signature"])),
        (bytes.fromhex(TEST_1["public"]), b"", 12345),
    ],
)
def test_verify_never_raises_on_malformed_input(
    public: object, message: object, signature: object
) -> None:
    assert ed25519.verify(public, message, signature) is False  # type: ignore[arg-type]


def test_a_secret_of_another_size_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        ed25519.public_key(b"\x01" * 31)
    with pytest.raises(ValueError):
        ed25519.sign(b"\x01" * 33, b"")


# -- identity: the login proof ----------------------------------------------------------

SECRET = bytes.fromhex(VECTORS[2]["secret"])
OTHER_SECRET = bytes.fromhex(VECTORS[1]["secret"])
CHALLENGE = "5f2b8c0e9d1a4e7f6a3b2c1d0e9f8a7b"


def test_fingerprint_is_the_first_16_hex_digits_of_the_keys_sha256() -> None:
    key = VECTORS[2]["public"]
    digits = hashlib.sha256(bytes.fromhex(key)).hexdigest()[:16]
    assert identity.fingerprint(key) == " ".join(digits[i : i + 4] for i in range(0, 16, 4))
    assert len(identity.fingerprint(key)) == 19


def test_a_proof_checks_and_gives_the_key() -> None:
    field = identity.prove(SECRET, CHALLENGE, "bob")
    assert set(field) == {"key", "proof"}
    assert identity.check(field, CHALLENGE, "bob") == VECTORS[2]["public"]


def test_the_proof_signs_the_documented_message() -> None:
    """docs/protocol.md: the label, the challenge's 16 bytes, the name in UTF-8."""
    field = identity.prove(SECRET, CHALLENGE, "bøb")
    message = b"lanchat identity\n" + bytes.fromhex(CHALLENGE) + "bøb".encode()
    assert protocol.identity_proof_message(CHALLENGE, "bøb") == message
    assert ed25519.verify(bytes.fromhex(field["key"]), message, bytes.fromhex(field["proof"]))


def test_a_proof_for_another_name_or_challenge_is_refused() -> None:
    field = identity.prove(SECRET, CHALLENGE, "bob")
    assert identity.check(field, CHALLENGE, "Bob") is None
    assert identity.check(field, "0" * 32, "bob") is None


def test_a_proof_by_another_key_is_refused() -> None:
    field = identity.prove(SECRET, CHALLENGE, "bob")
    other = identity.prove(OTHER_SECRET, CHALLENGE, "bob")
    assert identity.check({"key": field["key"], "proof": other["proof"]}, CHALLENGE, "bob") is None


def test_an_upper_case_key_is_checked_and_given_in_lower_case() -> None:
    field = identity.prove(SECRET, CHALLENGE, "bob")
    upper = {"key": field["key"].upper(), "proof": field["proof"].upper()}
    assert identity.check(upper, CHALLENGE, "bob") == field["key"]


GOOD = identity.prove(SECRET, CHALLENGE, "bob")


@pytest.mark.parametrize(
    "field",
    [
        None,
        "key",
        [GOOD["key"], GOOD["proof"]],
        {},
        {"key": GOOD["key"]},
        {"proof": GOOD["proof"]},
        {"key": 5, "proof": GOOD["proof"]},
        {"key": GOOD["key"], "proof": None},
        {"key": GOOD["key"][:-2], "proof": GOOD["proof"]},
        {"key": GOOD["key"], "proof": GOOD["proof"] + "00"},
        {"key": "zz" + GOOD["key"][2:], "proof": GOOD["proof"]},
        {"key": " " + GOOD["key"][1:], "proof": GOOD["proof"]},
        {"key": "f" * 64, "proof": GOOD["proof"]},
        {"key": GOOD["key"], "proof": "0" * 128},
    ],
)
def test_garbage_identity_fields_are_refused_without_raising(field: object) -> None:
    assert identity.check(field, CHALLENGE, "bob") is None


@pytest.mark.parametrize("challenge", ["", "xyz", CHALLENGE[:-2], CHALLENGE + "00"])
def test_a_bad_challenge_is_refused_without_raising(challenge: str) -> None:
    assert identity.check(GOOD, challenge, "bob") is None


def test_a_name_with_a_lone_surrogate_is_refused_without_raising() -> None:
    assert identity.check(GOOD, CHALLENGE, "bob\ud800") is None
