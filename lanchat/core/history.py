"""Where room messages are kept: in memory, or durably in an SQLite file.

The chat asks a history for the next message id, stores each room message before anybody
is sent it (`add`), and reads a room's messages back for a newcomer (`recent`) or for a
client that resumes after a drop (`after`). It also keeps each room's spelling and topic,
so a room that disappeared comes back as it was. Both kinds tell themselves apart from
any other history by a random `history_id`, so a client never trusts ids from a wiped or
different history.
Both also keep each name's resume token (hashed, for `TOKEN_LIFETIME` after its last use),
so that the person who had a name gets it back after a drop, even across a restart, and
the rooms that token's session was in. Since 4.3 they keep the registered names (a name
key and its identity key), the bans (`BanRow`s, for `lanchat.core.moderation`) and the
message of the day; since 4.4 a registered name's password hash beside its registration.

`SqliteHistory` commits every message before returning (WAL, synchronous=NORMAL: a
message survives a crash of the server process; a power cut may lose the last ones). It
holds an exclusive lock on its file for as long as it is open, so two servers never share
one. Every failure to open is a `HistoryError` with a sentence for a person; every later
failure (a full disk, an I/O error, a damaged page) is a `StorageError` that changed
nothing, and the first failed write of a run of them is logged, as is the recovery. The
file, and SQLite's files beside it, are for their owner's eyes only (mode 0600).
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import os
import re
import socket
import sqlite3
import stat
import uuid
from pathlib import Path
from typing import Any, Deque, Dict, List, Optional, Sequence, Tuple, Union

from lanchat import names, protocol
from lanchat.core.events import Topic
from lanchat.protocol import Frame, Token

log = logging.getLogger(__name__)

SCHEMA_VERSION = 6
RESUME_CAP = 1000  # room messages a resuming client gets at the most
ID_BLOCK = 1000  # ids are reserved on disk in blocks, so private messages need no write
TOKEN_LIFETIME = 7 * 24 * 3600.0  # seconds a resume token lasts after its last use
PRIVATE_DIR = 0o700  # a history folder lanchat creates
PRIVATE_FILE = 0o600  # the history file and SQLite's files next to it: chats stay private
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")

# Each entry takes the schema from version N to N+1, in one transaction.
MIGRATIONS: Tuple[str, ...] = (
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        sender TEXT NOT NULL,
        text TEXT NOT NULL,
        sender_key TEXT NOT NULL,
        ref TEXT
    );
    CREATE INDEX messages_by_ref ON messages (sender_key, ref) WHERE ref IS NOT NULL;
    """,
    """
    CREATE TABLE resume_tokens (
        name_key TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL,
        last_used REAL NOT NULL
    );
    CREATE INDEX resume_tokens_by_last_use ON resume_tokens (last_used);
    """,
    # 4.2: rooms. The messages of an older file belong to the default room.
    """
    ALTER TABLE messages ADD COLUMN room_key TEXT NOT NULL DEFAULT '';
    ALTER TABLE messages ADD COLUMN room TEXT NOT NULL DEFAULT '';
    UPDATE messages SET room_key = {default_key}, room = {default_room};
    CREATE INDEX messages_by_room ON messages (room_key, id);
    CREATE TABLE rooms (
        key TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        topic TEXT NOT NULL DEFAULT '',
        topic_by TEXT,
        topic_ts REAL
    );
    ALTER TABLE resume_tokens ADD COLUMN rooms TEXT NOT NULL DEFAULT '[]';
    """,
    # 4.3: registered names, bans, the message of the day (in meta), and the fingerprint
    # a message's sender had.
    """
    CREATE TABLE registrations (
        name_key TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        identity TEXT NOT NULL,
        ts REAL NOT NULL
    );
    CREATE TABLE bans (
        kind TEXT NOT NULL,
        match TEXT NOT NULL,
        target TEXT NOT NULL,
        by TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        until REAL,
        PRIMARY KEY (kind, match)
    );
    INSERT OR IGNORE INTO meta (key, value) VALUES ('motd', '');
    ALTER TABLE messages ADD COLUMN fingerprint TEXT;
    """,
    # 4.4: a registered name's password (its salted hash; NULL: none)
    """
    ALTER TABLE registrations ADD COLUMN password_hash TEXT;
    """,
    # 4.4: whether a message was sent as a notice
    """
    ALTER TABLE messages ADD COLUMN notice INTEGER NOT NULL DEFAULT 0;
    """,
)
DEFAULT_ROOM = "#general"


# A ban as kept: (kind, match, target, by, reason, until); see lanchat.core.moderation.
BanRow = Tuple[str, str, str, str, str, Optional[float]]


class HistoryError(Exception):
    """The history cannot be used; the message says why, for a person."""


class StorageError(Exception):
    """A read or a write of an open history failed; it changed nothing."""


def data_dir() -> str:
    """The folder where a server keeps its files: $XDG_DATA_HOME/lanchat."""
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return os.path.join(data_home, "lanchat")


def host_key(host: Optional[str] = None) -> str:
    """This machine's short host name (or `host`'s), lower case and safe in a file name."""
    name = (socket.gethostname() if host is None else host).split(".")[0].lower()
    return re.sub(r"[^a-z0-9_-]", "_", name) or "localhost"


def default_path(host: Optional[str] = None) -> str:
    """Where a server keeps its history: one file per host and listening port ({port} is
    filled in), so that machines that share one home directory each keep their own."""
    return os.path.join(data_dir(), f"history-{host_key(host)}-{{port}}.sqlite3")


def adopt_legacy_file(port: int, default_room: str = DEFAULT_ROOM) -> Optional[Path]:
    """Rename the default file of lanchat 4.0, keyed by port only, to this host's default
    file, if this host has none yet; return the new path, or None when nothing moved.

    The old file is renamed while this server holds its exclusive lock, so no other server
    is using it or can start to; one in use (e.g. by a 4.0 server on another machine of a
    shared home directory) is left where it is.
    """
    path = Path(default_path().replace("{port}", str(port)))
    legacy = Path(data_dir(), f"history-{port}.sqlite3")
    if path.exists() or not legacy.exists():
        return None
    try:
        old = SqliteHistory(legacy, default_room)
    except HistoryError as exc:
        log.warning("left the history of an older lanchat where it is: %s", exc)
        return None
    try:
        old._db.execute("PRAGMA journal_mode = DELETE")  # its -wal goes into the file itself
        os.rename(legacy, path)
    except (OSError, sqlite3.Error) as exc:  # e.g. Windows renames no open file
        log.warning("cannot rename %s to %s to keep its history: %s", legacy, path, exc)
        return None
    finally:
        old.close()
    log.info("moved the history in %s to %s (one file per host now)", legacy, path)
    return path


def _make_private(path: Path) -> None:
    """Create the history file for its owner's eyes only (its folder too, if missing), and
    tighten the file and SQLite's companions that an earlier run left readable to others.

    An existing folder is left as it is: it may be one the user chose (a home directory).
    SQLite gives the -wal, -shm and -journal files it creates the mode of the database.
    """
    path.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    os.close(os.open(str(path), os.O_RDWR | os.O_CREAT, PRIVATE_FILE))
    for name in (str(path), *(str(path) + suffix for suffix in SQLITE_COMPANIONS)):
        try:
            mode = os.stat(name).st_mode
        except FileNotFoundError:
            continue
        if stat.S_ISREG(mode) and mode & 0o077:  # never a device such as /dev/null
            os.chmod(name, PRIVATE_FILE)


_SELECT_MESSAGES = "SELECT id, ts, sender, text, room, fingerprint, notice FROM messages"


def _ref_text(ref: Optional[Token]) -> Optional[str]:
    """A ref as stored: JSON, so that 1 and "1" stay different."""
    return None if ref is None else json.dumps(ref)


def _sql_text(text: str) -> str:
    """A string as an SQL literal (for the migrations, which take no parameters)."""
    return "'" + text.replace("'", "''") + "'"


def hash_token(token: str) -> str:
    """A resume token as kept: its SHA-256, so a copy of the history holds no live token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class MemoryHistory:
    """Room messages in memory only: gone when the server stops."""

    def __init__(self, keep: int = RESUME_CAP) -> None:
        self.history_id = uuid.uuid4().hex
        self.last_id = 0
        self._keep = max(keep, RESUME_CAP)  # messages kept per room
        self._messages: Dict[str, Deque[Frame]] = {}  # by room key
        self._forgotten: Dict[str, int] = {}  # room key -> newest id pushed out of its deque
        self._rooms: Dict[str, Topic] = {}  # by room key: its spelling and topic
        self._tokens: Dict[
            str, Tuple[str, float, List[str]]
        ] = {}  # name key -> (hash, used, rooms)
        self._registrations: Dict[str, str] = {}  # name key -> identity key (hex)
        self._password_hashes: Dict[str, str] = {}  # name key -> its name password's hash
        self._bans: Dict[Tuple[str, str], BanRow] = {}  # by (kind, match)
        self._motd = ""

    def next_id(self) -> int:
        """A message id greater than every id handed out before."""
        self.last_id += 1
        return self.last_id

    def add(self, frame: Frame, sender_key: str, ref: Optional[Token]) -> None:
        """Keep a room message (its frame as relayed to the room, without `ref`)."""
        key = names.room_key(frame["room"])
        kept = self._messages.setdefault(key, collections.deque())
        kept.append(frame)
        if len(kept) > self._keep:
            self._forgotten[key] = kept.popleft()["id"]

    def recent(self, room_key: str, count: int) -> List[Frame]:
        """The room's last `count` messages, oldest first."""
        return list(self._messages.get(room_key, ()))[-count:] if count else []

    def after(self, room_key: str, last_id: int, cap: int = RESUME_CAP) -> Tuple[List[Frame], bool]:
        """The room's messages newer than `last_id` (the newest `cap`), and whether some
        were cut."""
        newer = [m for m in self._messages.get(room_key, ()) if m["id"] > last_id]
        cut = len(newer) > cap or self._forgotten.get(room_key, 0) > last_id
        return newer[-cap:], cut

    def find_ref(self, sender_key: str, ref: Token) -> Optional[Frame]:
        """Memory keeps no refs beyond the chat's own window (see Chat)."""
        return None

    def saved_room(self, room_key: str) -> Optional[Topic]:
        """The room's spelling and topic, if it existed before."""
        return self._rooms.get(room_key)

    def save_room(self, room_key: str, topic: Topic) -> None:
        """Keep the room's spelling (`topic.room`) and topic."""
        self._rooms[room_key] = topic

    def token_hash(self, name_key: str, now: float) -> Optional[str]:
        """The hash of the name's resume token, None if it has none that is still good."""
        held = self._tokens.get(name_key)
        return held[0] if held is not None and held[1] > now - TOKEN_LIFETIME else None

    def token_rooms(self, name_key: str) -> List[str]:
        """The rooms kept with the name's resume token (its owner checked the token)."""
        held = self._tokens.get(name_key)
        return list(held[2]) if held is not None else []

    def save_token(self, name_key: str, token: str, now: float, rooms: Sequence[str]) -> None:
        """Make this the name's resume token, with the rooms its session is in (and forget
        the tokens that have expired)."""
        self._tokens = {k: v for k, v in self._tokens.items() if v[1] > now - TOKEN_LIFETIME}
        self._tokens[name_key] = (hash_token(token), now, list(rooms))

    def save_rooms(self, name_key: str, token: str, rooms: Sequence[str]) -> None:
        """Keep the rooms the token's session is in now, if it is still the name's token."""
        held = self._tokens.get(name_key)
        if held is not None and held[0] == hash_token(token):
            self._tokens[name_key] = (held[0], held[1], list(rooms))

    def touch_token(self, name_key: str, token: str, now: float) -> None:
        """Count the token as used now, if it is still the name's."""
        held = self._tokens.get(name_key)
        if held is not None and held[0] == hash_token(token):
            self._tokens[name_key] = (held[0], now, held[2])

    def forget_token(self, name_key: str, token: str) -> None:
        """Drop the token, if it is still the name's."""
        held = self._tokens.get(name_key)
        if held is not None and held[0] == hash_token(token):
            del self._tokens[name_key]

    def registration(self, name_key: str) -> Optional[str]:
        """The identity key (hex) the name is registered to, if it is."""
        return self._registrations.get(name_key)

    def register(self, name_key: str, name: str, identity: str, now: float) -> None:
        """Bind the name to the identity key (a name password stays only with the same key)."""
        if self._registrations.get(name_key) != identity:
            self._password_hashes.pop(name_key, None)
        self._registrations[name_key] = identity

    def unregister(self, name_key: str) -> None:
        """Let the name go, and its name password."""
        self._registrations.pop(name_key, None)
        self._password_hashes.pop(name_key, None)

    def password_hash(self, name_key: str) -> Optional[str]:
        """The hash of the registered name's password, if it has one."""
        return self._password_hashes.get(name_key)

    def set_password_hash(self, name_key: str, kept: Optional[str]) -> None:
        """Keep (or with None forget) the registered name's password hash."""
        if kept is None or name_key not in self._registrations:
            self._password_hashes.pop(name_key, None)
        else:
            self._password_hashes[name_key] = kept

    def load_bans(self) -> List[BanRow]:
        """Every ban kept."""
        return list(self._bans.values())

    def save_ban(self, ban: BanRow) -> None:
        """Keep a ban (in the place of one of the same kind and match)."""
        self._bans[ban[0], ban[1]] = ban

    def delete_ban(self, kind: str, match: str) -> None:
        """Forget a ban."""
        self._bans.pop((kind, match), None)

    def motd(self) -> str:
        """The message of the day ("" for none)."""
        return self._motd

    def save_motd(self, text: str) -> None:
        """Keep the message of the day."""
        self._motd = text

    def close(self) -> None:
        """Nothing to release."""


class SqliteHistory:
    """Room messages in an SQLite file, committed before they are relayed."""

    def __init__(self, path: Path, default_room: str = DEFAULT_ROOM) -> None:
        self.path = Path(path)
        self._default_room = default_room  # where an older file's messages go
        try:
            _make_private(self.path)
            # timeout=0: a file held by another server is an error now, not a wait
            self._db = sqlite3.connect(
                str(self.path), timeout=0, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise HistoryError(f"cannot open the history file {self.path}: {exc}") from None
        try:
            self._open()
        except sqlite3.OperationalError as exc:
            self._db.close()
            if "locked" in str(exc):
                raise HistoryError(
                    f"the history file {self.path} is in use by another lanchat server"
                ) from None
            raise HistoryError(f"cannot use the history file {self.path}: {exc}") from None
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise HistoryError(
                f"{self.path} is not a lanchat history file, or it is damaged ({exc}); "
                "move it away or choose another with --history-db"
            ) from None
        except HistoryError:
            self._db.close()
            raise

    def _open(self) -> None:
        db = self._db
        db.execute("PRAGMA locking_mode = EXCLUSIVE")
        db.execute("BEGIN EXCLUSIVE")  # the lock is taken now and kept until close
        version = db.execute("PRAGMA user_version").fetchone()[0]
        db.execute("COMMIT")
        if version > SCHEMA_VERSION:
            raise HistoryError(
                f"the history file {self.path} is from a newer lanchat (schema {version}, "
                f"this one knows {SCHEMA_VERSION}); upgrade lanchat or choose another file"
            )
        for number in range(version, SCHEMA_VERSION):
            script = MIGRATIONS[number].format(
                default_key=_sql_text(names.room_key(self._default_room)),
                default_room=_sql_text(self._default_room),
            )
            db.executescript(f"BEGIN; {script} PRAGMA user_version = {number + 1}; COMMIT;")
        if self._meta("history_id") is None:
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('history_id', ?)", (uuid.uuid4().hex,)
            )
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        self.history_id = self._meta("history_id") or ""
        reserved = int(self._meta("reserved_id") or 0)
        newest = db.execute("SELECT COALESCE(MAX(id), 0) FROM messages").fetchone()[0]
        self.last_id = max(reserved, newest)
        self._reserved = self.last_id
        self._failed_writes = 0  # in a row; the first is logged, and the recovery

    def _meta(self, key: str) -> Optional[str]:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _read(self, sql: str, parameters: Tuple[Any, ...]) -> List[Any]:
        """The rows of a query; StorageError if the file cannot be read."""
        try:
            return self._db.execute(sql, parameters).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read the history file {self.path}: {exc}") from None

    def _write(self, sql: str, parameters: Tuple[Any, ...]) -> None:
        """Run and commit one statement; StorageError (and nothing written) if it fails.

        A full disk fails every write until space returns: only the first failure of such
        a run is logged, and the first success after it (one that wrote a row: a statement
        that changes nothing succeeds on a full disk too).
        """
        try:
            changed = self._db.execute(sql, parameters).rowcount
        except sqlite3.Error as exc:
            self._failed_writes += 1
            if self._failed_writes == 1:
                log.error("cannot write the history file %s: %s", self.path, exc)
            raise StorageError(f"cannot write the history file {self.path}: {exc}") from None
        if self._failed_writes and changed > 0:
            log.warning(
                "the history file %s takes writes again (%d failed)",
                self.path,
                self._failed_writes,
            )
            self._failed_writes = 0

    def next_id(self) -> int:
        """A message id greater than every id handed out before, across restarts too.

        An id past the block reserved on disk is handed out only once the next block is
        reserved there: if that write fails (StorageError), no id is used up.
        """
        candidate = self.last_id + 1
        if candidate > self._reserved:
            reserved = candidate + ID_BLOCK
            self._write(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('reserved_id', ?)",
                (str(reserved),),
            )
            self._reserved = reserved
        self.last_id = candidate
        return candidate

    def add(self, frame: Frame, sender_key: str, ref: Optional[Token]) -> None:
        """Store and commit a room message before it is relayed."""
        self._write(
            "INSERT INTO messages"
            " (id, ts, sender, text, sender_key, ref, room_key, room, fingerprint, notice)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                frame["id"],
                frame["ts"],
                frame["from"],
                frame["text"],
                sender_key,
                _ref_text(ref),
                names.room_key(frame["room"]),
                frame["room"],
                frame.get("fingerprint"),
                bool(frame.get("notice")),
            ),
        )

    def _frames(self, rows: List[tuple]) -> List[Frame]:
        frames = []
        for id, ts, sender, text, room, fingerprint, notice in rows:
            frame = protocol.message(id, ts, sender, text, room=room)
            if fingerprint is not None:
                frame["fingerprint"] = fingerprint
            if notice:
                frame["notice"] = True
            frames.append(frame)
        return frames

    def recent(self, room_key: str, count: int) -> List[Frame]:
        """The room's last `count` messages, oldest first."""
        rows = self._read(
            _SELECT_MESSAGES + " WHERE room_key = ? ORDER BY id DESC LIMIT ?",
            (room_key, count),
        )
        return self._frames(rows[::-1])

    def after(self, room_key: str, last_id: int, cap: int = RESUME_CAP) -> Tuple[List[Frame], bool]:
        """The room's messages newer than `last_id` (the newest `cap`), and whether some
        were cut."""
        rows = self._read(
            _SELECT_MESSAGES + " WHERE room_key = ? AND id > ? ORDER BY id DESC LIMIT ?",
            (room_key, last_id, cap + 1),
        )
        return self._frames(rows[:cap][::-1]), len(rows) > cap

    def find_ref(self, sender_key: str, ref: Token) -> Optional[Frame]:
        """The room message this user already sent with this ref, if stored."""
        rows = self._read(
            _SELECT_MESSAGES + " WHERE sender_key = ? AND ref = ? ORDER BY id DESC LIMIT 1",
            (sender_key, _ref_text(ref)),
        )
        return self._frames(rows)[0] if rows else None

    def saved_room(self, room_key: str) -> Optional[Topic]:
        """The room's spelling and topic, if it existed before."""
        rows = self._read(
            "SELECT name, topic, topic_by, topic_ts FROM rooms WHERE key = ?", (room_key,)
        )
        return Topic(*rows[0]) if rows else None

    def save_room(self, room_key: str, topic: Topic) -> None:
        """Keep the room's spelling (`topic.room`) and topic."""
        self._write(
            "INSERT OR REPLACE INTO rooms (key, name, topic, topic_by, topic_ts)"
            " VALUES (?, ?, ?, ?, ?)",
            (room_key, topic.room, topic.text, topic.by, topic.ts),
        )

    def token_hash(self, name_key: str, now: float) -> Optional[str]:
        """The hash of the name's resume token, None if it has none that is still good."""
        rows = self._read(
            "SELECT token_hash FROM resume_tokens WHERE name_key = ? AND last_used > ?",
            (name_key, now - TOKEN_LIFETIME),
        )
        return str(rows[0][0]) if rows else None

    def token_rooms(self, name_key: str) -> List[str]:
        """The rooms kept with the name's resume token (its owner checked the token)."""
        rows = self._read("SELECT rooms FROM resume_tokens WHERE name_key = ?", (name_key,))
        return _room_list(rows[0][0]) if rows else []

    def save_token(self, name_key: str, token: str, now: float, rooms: Sequence[str]) -> None:
        """Make this the name's resume token, with the rooms its session is in (and forget
        the tokens that have expired)."""
        self._write("DELETE FROM resume_tokens WHERE last_used <= ?", (now - TOKEN_LIFETIME,))
        self._write(
            "INSERT OR REPLACE INTO resume_tokens (name_key, token_hash, last_used, rooms)"
            " VALUES (?, ?, ?, ?)",
            (name_key, hash_token(token), now, json.dumps(list(rooms))),
        )

    def save_rooms(self, name_key: str, token: str, rooms: Sequence[str]) -> None:
        """Keep the rooms the token's session is in now, if it is still the name's token."""
        self._write(
            "UPDATE resume_tokens SET rooms = ? WHERE name_key = ? AND token_hash = ?",
            (json.dumps(list(rooms)), name_key, hash_token(token)),
        )

    def touch_token(self, name_key: str, token: str, now: float) -> None:
        """Count the token as used now, if it is still the name's."""
        self._write(
            "UPDATE resume_tokens SET last_used = ? WHERE name_key = ? AND token_hash = ?",
            (now, name_key, hash_token(token)),
        )

    def forget_token(self, name_key: str, token: str) -> None:
        """Drop the token, if it is still the name's."""
        self._write(
            "DELETE FROM resume_tokens WHERE name_key = ? AND token_hash = ?",
            (name_key, hash_token(token)),
        )

    def registration(self, name_key: str) -> Optional[str]:
        """The identity key (hex) the name is registered to, if it is."""
        rows = self._read("SELECT identity FROM registrations WHERE name_key = ?", (name_key,))
        return str(rows[0][0]) if rows else None

    def register(self, name_key: str, name: str, identity: str, now: float) -> None:
        """Bind the name to the identity key (a name password stays only with the same key)."""
        self._write(
            "INSERT OR REPLACE INTO registrations (name_key, name, identity, ts, password_hash)"
            " VALUES (?, ?, ?, ?, (SELECT password_hash FROM registrations"
            " WHERE name_key = ? AND identity = ?))",
            (name_key, name, identity, now, name_key, identity),
        )

    def unregister(self, name_key: str) -> None:
        """Let the name go, and its name password."""
        self._write("DELETE FROM registrations WHERE name_key = ?", (name_key,))

    def password_hash(self, name_key: str) -> Optional[str]:
        """The hash of the registered name's password, if it has one."""
        rows = self._read("SELECT password_hash FROM registrations WHERE name_key = ?", (name_key,))
        return str(rows[0][0]) if rows and rows[0][0] is not None else None

    def set_password_hash(self, name_key: str, kept: Optional[str]) -> None:
        """Keep (or with None forget) the registered name's password hash."""
        self._write(
            "UPDATE registrations SET password_hash = ? WHERE name_key = ?", (kept, name_key)
        )

    def load_bans(self) -> List[BanRow]:
        """Every ban kept."""
        rows = self._read("SELECT kind, match, target, by, reason, until FROM bans", ())
        return [tuple(row) for row in rows]

    def save_ban(self, ban: BanRow) -> None:
        """Keep a ban (in the place of one of the same kind and match)."""
        self._write(
            "INSERT OR REPLACE INTO bans (kind, match, target, by, reason, until)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            ban,
        )

    def delete_ban(self, kind: str, match: str) -> None:
        """Forget a ban."""
        self._write("DELETE FROM bans WHERE kind = ? AND match = ?", (kind, match))

    def motd(self) -> str:
        """The message of the day ("" for none)."""
        rows = self._read("SELECT value FROM meta WHERE key = 'motd'", ())
        return str(rows[0][0]) if rows else ""

    def save_motd(self, text: str) -> None:
        """Keep the message of the day."""
        self._write("INSERT OR REPLACE INTO meta (key, value) VALUES ('motd', ?)", (text,))

    def close(self) -> None:
        """Release the file (and its lock)."""
        self._db.close()


def _room_list(stored: str) -> List[str]:
    """The rooms column as a list of names; anything else (a damaged row) as none."""
    try:
        rooms = json.loads(stored)
    except ValueError:
        return []
    ok = isinstance(rooms, list) and all(isinstance(r, str) for r in rooms)
    return rooms if ok else []


History = Union[MemoryHistory, SqliteHistory]
