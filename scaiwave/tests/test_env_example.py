"""`.env.example` lists every setting ScaiWave reads from the environment."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
READER = re.compile(r'env_(?:str|bool|int|float|list|choice)\(\s*"([A-Z0-9_]+)"')


def test_every_environment_variable_read_by_settings_is_documented():
    read = set(READER.findall((ROOT / "scaiwave" / "settings.py").read_text()))
    documented = set(re.findall(r"^([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    assert len(read) > 50  # the pattern still finds the readers
    assert sorted(read - documented) == []
