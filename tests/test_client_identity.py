"""The client's identity key (protocol 4.3): the key file in the config folder, and the
login's proof of it when the server's hello has a challenge."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest
from conftest import free_port, pyz_command
from test_client_rooms import ADDRESS, HELLO, NOW, receive

from lanchat import ed25519, identity, protocol
from lanchat.chat import keyfile
from lanchat.chat.actions import Action, Exit, GiveUp, Send
from lanchat.chat.connection import Connected
from lanchat.chat.keyfile import KeyFileError
from lanchat.chat.model import NAMING, STOPPED, ClientModel
from lanchat.protocol import Frame

CHALLENGE = "5f2b8c0e9d1a4e7f6a3b2c1d0e9f8a7b"
SECRET = bytes(range(32))


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config folder of this test's own: $XDG_CONFIG_HOME in a temporary folder."""
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --------------------------------------------------------------------------- the key file


def test_the_first_run_makes_a_key_only_its_owner_can_read_in_a_folder_only_they_enter(
    config_home: Path,
) -> None:
    secret = keyfile.load_or_create()
    path = config_home / "lanchat" / "identity.key"
    assert keyfile.default_path() == str(path)
    assert len(secret) == 32
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    assert secret.hex() in path.read_text(), "the file holds the secret, in hex"
    assert keyfile.load_or_create() == secret, "the next run uses the same key"


def test_without_xdg_config_home_the_key_goes_to_dot_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert keyfile.default_path() == str(tmp_path / ".config" / "lanchat" / "identity.key")


def test_a_key_file_others_could_read_is_tightened_and_kept(config_home: Path) -> None:
    secret = keyfile.load_or_create()
    path = Path(keyfile.default_path())
    path.chmod(0o644)
    assert keyfile.load_or_create() == secret
    assert mode(path) == 0o600


def test_a_damaged_key_file_is_an_error_and_is_never_replaced(config_home: Path) -> None:
    path = Path(keyfile.default_path())
    path.parent.mkdir(parents=True)
    path.write_text("not a key\n")
    with pytest.raises(KeyFileError, match="damaged"):
        keyfile.load_or_create()
    assert path.read_text() == "not a key\n", "the user's identity is never overwritten"


def test_an_unreadable_key_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.mkdir()  # unreadable as a file, for root too
    with pytest.raises(KeyFileError, match="cannot read the identity key"):
        keyfile.load_or_create(str(path))
    assert path.is_dir()


def test_another_key_file_is_made_where_asked(tmp_path: Path, config_home: Path) -> None:
    path = tmp_path / "keys" / "work.key"
    secret = keyfile.load_or_create(str(path))
    assert mode(path) == 0o600
    assert keyfile.load_or_create(str(path)) == secret
    assert not (config_home / "lanchat" / "identity.key").exists()


def _client(config_home: Path, *extra: str) -> subprocess.CompletedProcess:
    env: Dict[str, str] = {**os.environ, "XDG_CONFIG_HOME": str(config_home)}
    argv = pyz_command("client", "--plain", "--host", "127.0.0.1", "--port", str(free_port()))
    return subprocess.run(
        [*argv, *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


def test_the_pyz_client_stops_with_one_line_on_a_damaged_key_file(
    pyz: Path, tmp_path: Path
) -> None:
    damaged = tmp_path / "damaged.key"
    damaged.write_text("0123\n")
    done = _client(tmp_path, "--identity", str(damaged))
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "damaged.key is damaged" in done.stderr
    assert damaged.read_text() == "0123\n"


def test_the_pyz_client_makes_its_key_on_the_first_run_even_when_no_server_answers(
    pyz: Path, tmp_path: Path
) -> None:
    done = _client(tmp_path)
    assert done.returncode == 1 and "cannot connect" in done.stderr
    assert mode(tmp_path / "lanchat" / "identity.key") == 0o600


# --------------------------------------------------------------------------- the login's proof


def connect(model: ClientModel, **hello: object) -> List[Action]:
    return model.handle_event(Connected({**HELLO, "version": "4.3.0", **hello}, ADDRESS), NOW)


def login_of(actions: List[Action]) -> Frame:
    (send,) = [a for a in actions if isinstance(a, Send)]
    assert send.frame["type"] == "login"
    return send.frame


def test_the_login_proves_the_key_when_the_hello_has_a_challenge() -> None:
    model = ClientModel("bob", *ADDRESS, secret=SECRET)
    login = login_of(connect(model, challenge=CHALLENGE))
    assert login["version"] == protocol.VERSION == "4.4.0"
    proof = login["identity"]
    assert proof["key"] == ed25519.public_key(SECRET).hex()
    assert identity.check(proof, CHALLENGE, "bob") == proof["key"], "the server would take it"
    assert identity.check(proof, "0" * 32, "bob") is None, "good for this challenge only"


def test_no_proof_without_a_challenge_or_without_a_key() -> None:
    assert "identity" not in login_of(connect(ClientModel("bob", *ADDRESS, secret=SECRET)))
    assert "identity" not in login_of(connect(ClientModel("bob", *ADDRESS), challenge=CHALLENGE))
    bad = ClientModel("bob", *ADDRESS, secret=SECRET)
    assert "identity" not in login_of(connect(bad, challenge="not hex"))


def test_each_login_proves_the_name_it_sends_for_the_challenge_of_its_link() -> None:
    model = ClientModel("bob", *ADDRESS, secret=SECRET, ask_password=True)
    connect(model, challenge=CHALLENGE)
    receive(model, {"type": "error", "code": "name_registered", "message": "registered"})
    assert model.login == NAMING, "a registered name is asked again, as a taken one"
    model.input, model.cursor = "", 0
    again = [a.frame for a in model.submit("bobby", NOW) if isinstance(a, Send)]
    assert identity.check(again[0]["identity"], CHALLENGE, "bobby") is not None
    fresh = "a" * 32
    login = login_of(connect(model, challenge=fresh))
    assert identity.check(login["identity"], fresh, "bobby") is not None


def test_a_refused_identity_is_fatal() -> None:
    model = ClientModel("bob", *ADDRESS, secret=SECRET)
    connect(model, challenge=CHALLENGE)
    actions = receive(
        model, {"type": "error", "code": "bad_identity", "message": "The identity proof is wrong."}
    )
    assert any(isinstance(a, GiveUp) for a in actions) and Exit(1) in actions
    assert model.link == STOPPED and model.fatal
    assert "identity key" in model.exit_note
