from pathlib import Path

import pytest

from rooms.testing import livekit, livekit_emulator  # noqa: F401
from rooms.tests.token_api import token_api  # noqa: F401

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # PyJWT warns about LiveKit's 6-byte dev secret on every token; the emulator uses it on purpose.
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.filterwarnings("ignore:The HMAC key is"))
