"""Questions the client asks the server (`who`, `rooms`, `join`, `part`, `topic`): they
wait for a token of the server's pace, then for their answer.

Each knows the frame type that answers it and the room it is about, so an answer is
matched whether or not the server puts our `ref` on it (it does on `joined`, `parted`
and errors). A link that drops loses the answers on their way: the questions go with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional

from lanchat.chat.rooms import room_key
from lanchat.protocol import Frame


@dataclass
class Request:
    """A frame sent, or to send, and what will answer it."""

    frame: Frame
    answer: str  # the type of the frame that answers it
    sent: bool = False

    @property
    def room(self) -> Optional[str]:
        """The key of the room it is about, if any."""
        room = self.frame.get("room")
        return room_key(room) if isinstance(room, str) else None


class Requests:
    """The questions asked and not answered yet, in the order asked."""

    def __init__(self) -> None:
        self.items: List[Request] = []

    def ask(self, frame: Frame, answer: str) -> None:
        """Queue a question; `answer` is the frame type that answers it."""
        self.items.append(Request(frame, answer))

    def waiting(self) -> bool:
        """True if a question waits to be sent."""
        return any(not request.sent for request in self.items)

    def send_next(self) -> Frame:
        """The oldest question not sent yet, now sent."""
        request = next(request for request in self.items if not request.sent)
        request.sent = True
        return request.frame

    def answered(self, answer: str, room: object, ref: object = None) -> Optional[Request]:
        """The question this frame answers (its ref, else its type and room), now done."""
        key = room_key(room) if isinstance(room, str) else None
        return self._take(
            lambda request: (
                _has_ref(request, ref) or (request.answer == answer and request.room == key)
            )
        )

    def answered_by(self, ref: object) -> Optional[Request]:
        """The question whose ref this answer carries, now done."""
        return self._take(lambda request: _has_ref(request, ref))

    def refused(self, ref: object, room: object) -> Optional[Request]:
        """The question an error answers (its ref, else its room), now done."""
        key = room_key(room) if isinstance(room, str) else None
        return self._take(
            lambda request: _has_ref(request, ref) or (key is not None and request.room == key)
        )

    def _take(self, matches: Callable[[Request], bool]) -> Optional[Request]:
        for request in self.items:
            if request.sent and matches(request):
                self.items.remove(request)
                return request
        return None

    def again(self, ref: object) -> bool:
        """rate_limited: the question with this ref goes again; False if none has it."""
        for request in self.items:
            if _has_ref(request, ref):
                request.sent = False
                return True
        return False

    def lost(self) -> None:
        """The link dropped: no answer will come."""
        self.items.clear()


def _has_ref(request: Request, ref: object) -> bool:
    return ref is not None and request.frame.get("ref") == ref
