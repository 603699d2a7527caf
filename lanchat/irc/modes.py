"""Channel MODE changes from IRC as lanchat operator frames.

lanchat has no channel modes of its own, only the server's operators and their bans, so:

- `+b MASK` is a ban for good, `-b MASK` lifts it: `nick!*@*` (or a bare nick) bans that
  name (its registered key, if it has one), `*!*@ADDRESS` an IP address; any other mask (a
  wildcard in a nick, a host name, a user part) is refused with 696, since lanchat bans
  a name or an address, nothing in between. A ban is server-wide, whatever the channel.
- `b` or `+b` without a mask asks for the ban list (367 per ban, 368).
- `+o`/`-o` are refused with 482: lanchat's operators are the server's list
  (`--operator`), given by nobody on IRC.
- Other mode letters are 472.

The session decides whether the sender is an operator (`not_operator` is 482).
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from lanchat import protocol
from lanchat.core.moderation import address_target
from lanchat.irc import lines
from lanchat.irc.lines import numeric
from lanchat.irc.state import IrcState
from lanchat.protocol import Frame

BAN_LIST = "BANS"  # what a ref asked: the ban list (367/368), a ban, a lifted ban
BAN = "BAN"
UNBAN = "UNBAN"


def channel_mode(state: IrcState, room: str, changes: List[str]) -> Tuple[List[Frame], bytes]:
    """The frames and the gateway's own replies for `MODE room modestring args...`."""
    modes, arguments = changes[0], list(changes[1:])
    frames: List[Frame] = []
    replies: List[bytes] = []
    adding = True
    for letter in modes:
        if letter in "+-":
            adding = letter == "+"
        elif letter == "b":
            mask = arguments.pop(0) if arguments else None
            if mask is None:
                frames.append(protocol.bans(ref=state.ref(BAN_LIST, room)))
            else:
                _ban(state, room, adding, mask, frames, replies)
        elif letter == "o":
            if arguments:
                arguments.pop(0)
            text = "Operators are the server's (lanchat server --operator), not set by MODE"
            replies.append(numeric("482", state.nick, room, text))
        else:
            replies.append(numeric("472", state.nick, letter, "is unknown mode char to me"))
    return frames, b"".join(replies)


def _ban(
    state: IrcState, room: str, adding: bool, mask: str, frames: List[Frame], replies: List[bytes]
) -> None:
    target = ban_target(mask)
    if target is None:
        text = "Only nick!*@* and *!*@address masks: lanchat bans a name or an address"
        replies.append(numeric("696", state.nick, room, "b", mask, text))
        return
    ref = state.ref(BAN if adding else UNBAN, room, mask)
    frames.append(protocol.ban(target, ref=ref) if adding else protocol.unban(target, ref))


def ban_target(mask: str) -> Optional[str]:
    """The lanchat ban target a mask means (a name or an address), or None."""
    nick, bang, rest = mask.partition("!")
    user, at, host = rest.partition("@")
    if not bang and "@" not in mask:
        nick, user, host = mask, "*", "*"  # a bare nick, as servers read it
    elif not (bang and at) or user != "*":
        return None
    if host == "*" and nick not in ("", "*") and not _wild(nick):
        return lines.lanchat_name(nick)
    if nick == "*" and address_target(host) is not None:
        return host
    return None


def ban_mask(kind: str, target: str) -> str:
    """The mask IRC shows for a ban of lanchat's (its kind and target)."""
    return f"*!*@{target}" if kind == "address" else f"{lines.irc_nick(target)}!*@*"


def _wild(text: str) -> bool:
    return "*" in text or "?" in text
