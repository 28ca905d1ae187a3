"""The embedded broker (no REDIS_URL): kombu's filesystem transport with message files named so that
their sort order is their order of arrival, whatever the uptime.

kombu's own transport names each message file `<monotonic ms>_<uuid>.<queue>.msg` and takes the
lexicographically first: when the millisecond count gains a digit (about 16 min, 2.8 h and 27.8 h of
uptime), "10000000_…" sorts before "9999999_…" and newer messages jump ahead of every older one (one
batch waited 2 min 19 s behind 730 newer ones). Here the name starts with the wall clock in nanoseconds,
zero-padded to a fixed 20 digits: string order is numeric order until the year 2286, and it keeps
counting across restarts (a monotonic clock starts again at boot, which would put new messages ahead
of any left from before).
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

_NAME_WIDTH = 20


def message_file_name(queue: str, *, now_ns: int | None = None) -> str:
    """`<ns since the epoch, 20 digits>_<uuid>.<queue>.msg`; the uuid keeps two writers apart within one ns."""
    stamp = time.time_ns() if now_ns is None else now_ns
    return f"{stamp:0{_NAME_WIDTH}d}_{uuid.uuid4().hex}.{queue}.msg"


class FifoFilesystemChannel(filesystem.Channel):
    # kombu names the second argument `message` in the virtual base and `payload` here: they never agree.
    def _put(self, queue: str, message: Any, **kwargs: Any) -> None:  # type: ignore[override]
        path = os.path.join(self.data_folder_out, message_file_name(queue))
        # Written under another name and renamed into place, so a reader never takes a half-written file.
        partial = path + ".part"
        try:
            with open(partial, "wb") as message_file:
                message_file.write(str_to_bytes(dumps(message)))
            os.replace(partial, path)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {path!r} to directory") from exc


class FifoFilesystemTransport(filesystem.Transport):
    Channel = FifoFilesystemChannel
