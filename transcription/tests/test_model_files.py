"""Packaged models resolve to local folders; Whisper base is joined once, verified; nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import LazySettings

from transcription import model_files
from transcription.capabilities import transcription_capabilities
from transcription.model_files import ModelUnavailable, base_model_join, model_available, model_source_resolve


def test_tiny_en_resolves_to_the_installed_package_folder() -> None:
    source = model_source_resolve("tiny.en")
    assert source.is_local
    assert (Path(source.path_or_hub_name) / "model.bin").is_file()


def test_base_is_joined_once_into_a_verified_folder(settings: LazySettings, tmp_path: Path) -> None:
    settings.STT_MODEL_DIR = tmp_path
    folder = base_model_join()
    assert folder == tmp_path / "whisper-base"
    assert (folder / "model.bin").stat().st_size == model_files.BASE_MODEL_BIN_SIZE
    assert {p.name for p in folder.iterdir()} >= {"model.bin", "config.json", "tokenizer.json", "vocabulary.txt"}
    joined_at = (folder / "model.bin").stat().st_mtime_ns
    assert base_model_join() == folder
    assert (folder / "model.bin").stat().st_mtime_ns == joined_at  # not joined again
    assert model_source_resolve("base").path_or_hub_name == str(folder)


def test_a_folder_whose_verification_marker_is_wrong_is_joined_again(settings: LazySettings, tmp_path: Path) -> None:
    settings.STT_MODEL_DIR = tmp_path
    folder = base_model_join()
    (folder / "model.bin").write_bytes(b"truncated")
    (folder / ".scaiwave-verified").write_text("0" * 64)
    base_model_join()
    assert (folder / "model.bin").stat().st_size == model_files.BASE_MODEL_BIN_SIZE


def test_a_join_that_does_not_match_the_pinned_hash_is_refused(
    settings: LazySettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.STT_MODEL_DIR = tmp_path
    monkeypatch.setattr(model_files, "BASE_MODEL_BIN_SHA256", "f" * 64)
    with pytest.raises(ModelUnavailable, match="sha256"):
        base_model_join()
    assert not (tmp_path / "whisper-base").exists()


def test_a_local_ctranslate2_folder_can_be_brought(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"x")
    (tmp_path / "config.json").write_text("{}")
    assert model_source_resolve(str(tmp_path)).path_or_hub_name == str(tmp_path)
    with pytest.raises(ModelUnavailable):
        model_source_resolve(str(tmp_path / "missing"))


def test_a_hub_name_needs_downloads_allowed(settings: LazySettings) -> None:
    settings.STT_ALLOW_DOWNLOAD = False
    assert not model_available("Systran/faster-whisper-small")
    with pytest.raises(ModelUnavailable):
        model_source_resolve("Systran/faster-whisper-small")
    settings.STT_ALLOW_DOWNLOAD = True
    source = model_source_resolve("Systran/faster-whisper-small")
    assert not source.is_local


def test_health_reports_post_call_only_when_enabled_and_a_model_is_there(settings: LazySettings) -> None:
    settings.TRANSCRIPTION_POST_ENABLED = True
    settings.TRANSCRIPTION_LIVE_ENABLED = False
    assert transcription_capabilities() == {"transcriptionLive": False, "transcriptionPost": True}
    settings.STT_MODEL = "/nonexistent/model"
    assert transcription_capabilities()["transcriptionPost"] is False
    settings.STT_MODEL = "tiny.en"
    settings.TRANSCRIPTION_POST_ENABLED = False
    assert transcription_capabilities()["transcriptionPost"] is False


def test_health_endpoint_tells_the_truth(acme, settings: LazySettings) -> None:
    settings.TRANSCRIPTION_POST_ENABLED = False
    settings.TRANSCRIPTION_LIVE_ENABLED = False
    body = acme.server().get("/v1/health").json()
    assert body["capabilities"] == {"transcriptionLive": False, "transcriptionPost": False}
    settings.TRANSCRIPTION_POST_ENABLED = True
    settings.TRANSCRIPTION_LIVE_ENABLED = True
    assert acme.server().get("/v1/health").json()["capabilities"] == {
        "transcriptionLive": True,
        "transcriptionPost": True,
    }
