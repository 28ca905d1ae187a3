"""Twirp transport: routing, body encodings and error bodies exactly as livekit-server answers (livekit.md §1.3)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from .auth import Grants

# Twirp code -> HTTP status (twitchtv/twirp ServerHTTPStatusFromErrorCode).
TWIRP_STATUS: dict[str, int] = {
    "canceled": 408,
    "unknown": 500,
    "invalid_argument": 400,
    "malformed": 400,
    "deadline_exceeded": 408,
    "not_found": 404,
    "bad_route": 404,
    "already_exists": 409,
    "permission_denied": 403,
    "unauthenticated": 401,
    "resource_exhausted": 403,
    "failed_precondition": 412,
    "aborted": 409,
    "out_of_range": 400,
    "unimplemented": 501,
    "internal": 500,
    "unavailable": 503,
    "data_loss": 500,
}

PROTOBUF = "application/protobuf"
JSON = "application/json"


class TwirpError(Exception):
    """An error answered as a Twirp JSON body ``{"code","msg","meta"}``."""

    def __init__(self, code: str, msg: str, meta: dict[str, str] | None = None) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.meta = meta or {}

    @property
    def status(self) -> int:
        return TWIRP_STATUS.get(self.code, 500)

    def to_response(self) -> web.Response:
        body: dict[str, object] = {"code": self.code, "msg": self.msg}
        if self.meta:
            body["meta"] = self.meta
        # The Node SDK only reads code/msg when the Content-Type is exactly application/json, no charset.
        return web.Response(
            status=self.status,
            body=json.dumps(body).encode(),
            headers={"Content-Type": JSON},
        )


def permission_denied() -> TwirpError:
    return TwirpError("unauthenticated", "permissions denied")


def not_found(msg: str) -> TwirpError:
    return TwirpError("not_found", msg)


def invalid_argument(msg: str, argument: str | None = None) -> TwirpError:
    return TwirpError("invalid_argument", msg, {"argument": argument} if argument else None)


def failed_precondition(msg: str) -> TwirpError:
    return TwirpError("failed_precondition", msg)


ReqT = TypeVar("ReqT", bound=Message)
Handler = Callable[[Grants | None, ReqT], Awaitable[Message]]


@dataclass(frozen=True)
class Rpc(Generic[ReqT]):
    request_type: type[ReqT]
    handler: Handler[ReqT]


def content_kind(content_type: str) -> str | None:
    """Return PROTOBUF or JSON for a request Content-Type (parameters after ``;`` ignored), else None."""
    base = content_type.split(";", 1)[0].strip().lower()
    return base if base in (PROTOBUF, JSON) else None


def decode_request(kind: str, body: bytes, message: Message) -> None:
    if kind == PROTOBUF:
        try:
            message.ParseFromString(body)
        except (DecodeError, ValueError) as exc:
            raise TwirpError("malformed", "the protobuf request could not be decoded") from exc
        return
    try:
        json_format.Parse(body.decode("utf-8") if body else "{}", message, ignore_unknown_fields=True)
    except (json_format.ParseError, UnicodeDecodeError, ValueError) as exc:
        raise TwirpError("malformed", f"the json request could not be decoded: {exc}") from exc


def message_to_snake_dict(message: Message) -> dict[str, object]:
    """The server's JSON reply shape: proto field names, defaults emitted, int64 as strings, enums as names."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def encode_response(kind: str, message: Message) -> web.Response:
    if kind == PROTOBUF:
        return web.Response(body=message.SerializeToString(), headers={"Content-Type": PROTOBUF})
    body = json.dumps(message_to_snake_dict(message), ensure_ascii=False).encode("utf-8")
    return web.Response(body=body, headers={"Content-Type": JSON})


def bad_route(method: str, path: str, msg: str | None = None) -> TwirpError:
    return TwirpError(
        "bad_route",
        msg or f"no handler for path {path!r}",
        {"twirp_invalid_route": f"{method} {path}"},
    )
