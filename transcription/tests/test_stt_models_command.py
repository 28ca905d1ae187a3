from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.conf import LazySettings
from django.core.management import CommandError, call_command


def test_the_command_assembles_and_loads_the_packaged_models(settings: LazySettings, stt_engine) -> None:
    out = StringIO()
    call_command("stt_models", "tiny.en", "--load", stdout=out)
    assert "tiny.en:" in out.getvalue() and "(loaded)" in out.getvalue()


def test_the_command_fails_for_a_missing_model(settings: LazySettings, tmp_path: Path) -> None:
    with pytest.raises(CommandError):
        call_command("stt_models", str(tmp_path / "nothing"), stdout=StringIO(), stderr=StringIO())
