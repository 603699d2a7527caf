"""The client's settings kept across runs: whom it ignores, and when the bell rings.

They live in `settings.json` in the config folder (`chat.keyfile.config_dir()`), a file
only its owner may read (0600), written whole each time a setting changes (to a temporary
file first, so a crash leaves the old one). A damaged file is reported and ignored: the
client starts with the defaults and writes a good file at the next change.

    {"bell": "mentions", "ignore": [{"name": "bob", "fingerprint": "3f9a 0c12 77be 41d0"}]}

An ignored person is kept by name and, once the client has seen it, by the fingerprint
of their registered identity (protocol 4.3), so that they stay ignored under a new name.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from lanchat import names
from lanchat.chat.keyfile import config_dir, make_private_dir

SETTINGS_FILE = "settings.json"
BELL_MODES = ("off", "mentions", "all")


@dataclass
class Ignored:
    """One person ignored: their name as last known and their fingerprint, if seen."""

    name: str
    fingerprint: Optional[str] = None

    def matches(self, name: str, fingerprint: Optional[str]) -> bool:
        """True for a sender of this name or fingerprint. The same name with another
        key's fingerprint is somebody else."""
        if fingerprint is not None and fingerprint == self.fingerprint:
            return True
        other_key = fingerprint is not None and self.fingerprint is not None
        return not other_key and names.name_key(name) == names.name_key(self.name)


@dataclass
class Settings:
    """The settings, and the file they are kept in (None: kept nowhere, as in tests)."""

    path: Optional[str] = None
    bell: str = "mentions"
    ignored: List[Ignored] = field(default_factory=list)

    def find_ignored(self, name: str, fingerprint: Optional[str] = None) -> Optional[Ignored]:
        """The ignore entry this sender matches, if any."""
        return next((item for item in self.ignored if item.matches(name, fingerprint)), None)

    def to_json(self) -> str:
        """The settings as the file holds them."""
        ignored = [
            {"name": item.name, **({"fingerprint": item.fingerprint} if item.fingerprint else {})}
            for item in self.ignored
        ]
        return json.dumps({"bell": self.bell, "ignore": ignored}, indent=1) + "\n"

    def save(self) -> Optional[str]:
        """Write the file (if there is one); a one-line problem, or None when saved."""
        if self.path is None:
            return None
        temporary = self.path + ".tmp"
        try:
            make_private_dir(os.path.dirname(os.path.abspath(self.path)))
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(self.to_json())
            os.replace(temporary, self.path)
        except OSError as exc:
            return f"cannot save the settings in {self.path}: {exc.strerror}"
        return None


def default_path() -> str:
    """Where the settings are kept."""
    return os.path.join(config_dir(), SETTINGS_FILE)


def load(path: Optional[str] = None) -> Tuple[Settings, Optional[str]]:
    """The settings of the file at `path` (default: `default_path()`), and a one-line
    problem if it could not be read (then the defaults, saved to the same file later)."""
    path = path or default_path()
    settings = Settings(path)
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except FileNotFoundError:
        return settings, None
    except (OSError, ValueError) as exc:
        return settings, f"settings file {path} ignored: {_why(exc)}"
    if not isinstance(data, dict):
        return settings, f"settings file {path} ignored: it holds no settings"
    bell = data.get("bell")
    if bell in BELL_MODES:
        settings.bell = bell
    ignore = data.get("ignore")
    for item in ignore if isinstance(ignore, list) else []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            fingerprint = item.get("fingerprint")
            fingerprint = fingerprint if isinstance(fingerprint, str) else None
            settings.ignored.append(Ignored(item["name"], fingerprint))
    return settings, None


def _why(exc: Exception) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return "it is damaged"
