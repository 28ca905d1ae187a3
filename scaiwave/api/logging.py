"""Structured logs: one JSON object per line, with the current request id, and no credentials."""

from __future__ import annotations

import contextvars
import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


# Credentials that travel in URLs and headers: a WebSocket's `?access_token=<JWT>` (uvicorn logs the URL of
# every WebSocket it accepts), a signed media URL's `sig=` (django.request logs the request), S3 presigned
# URLs, bearer tokens, and anything shaped like a JWT.
_SECRETS = re.compile(
    r"(?P<name>(?:access_token|token|sig|signature|X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token)=)"
    r"[^&\s'\"<>]+"
    r"|(?P<scheme>Bearer\s+)[^\s'\"<>]+"
    r"|eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """`text` with every credential it carries replaced by `[redacted]`."""
    if "=" not in text and "eyJ" not in text and "earer" not in text:  # the common case: nothing to scan
        return text
    return _SECRETS.sub(lambda m: (m.group("name") or m.group("scheme") or "") + "[redacted]", text)


def install_log_redaction() -> None:
    """Redact credentials in every log record of the process, whoever writes it and wherever it goes.

    A record factory rather than a handler filter: uvicorn and Celery attach their own handlers, which
    a filter on ours would never see. The message is redacted as the record is made; JsonFormatter also
    redacts the `extra` values it prints (django.request passes the request)."""
    current = logging.getLogRecordFactory()
    if getattr(current, "redacts", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed format: logging reports it when a handler formats the record
            return record
        redacted = redact(message)
        if redacted != message:  # formatted here: a credential may sit in the format string or in its arguments
            record.msg, record.args = redacted, None
        return record

    redacting: Callable[..., logging.LogRecord] = factory
    redacting.redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacting)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                if not isinstance(value, (int, float, bool, type(None))):
                    value = redact(str(value))
                entry[key] = value
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry)
