"""The calls surface's problem codes (document 000), in one place."""

from __future__ import annotations

from scaiwave.api.errors import ProblemError

NOT_FOUND = "SW_CALL_NOT_FOUND"
ENDED = "SW_CALL_ENDED"
LIVEKIT_UNREACHABLE = "SW_CALL_LIVEKIT_UNREACHABLE"
FORBIDDEN = "SW_CALL_FORBIDDEN"
ALREADY_ACTIVE = "SW_CALL_ALREADY_ACTIVE"
INVALID_REQUEST = "SW_CALL_INVALID_REQUEST"
ROOM_NOT_FOUND = "SW_CALL_ROOM_NOT_FOUND"
UNAUTHENTICATED = "SW_CALL_UNAUTHENTICATED"


def call_not_found() -> ProblemError:
    return ProblemError(404, NOT_FOUND, "No such call.")


def call_ended(status: str) -> ProblemError:
    return ProblemError(409, ENDED, f"The call is no longer active (it is {status}).", call_status=status)


def forbidden(detail: str) -> ProblemError:
    return ProblemError(403, FORBIDDEN, detail)


def room_not_found() -> ProblemError:
    return ProblemError(404, ROOM_NOT_FOUND, "No such room.")


def livekit_unreachable(detail: str) -> ProblemError:
    return ProblemError(502, LIVEKIT_UNREACHABLE, f"LiveKit could not be reached: {detail}")


def already_active(call_id: str) -> ProblemError:
    return ProblemError(409, ALREADY_ACTIVE, "The room already has a live call.", call_id=call_id)
