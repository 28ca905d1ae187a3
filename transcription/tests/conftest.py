"""Speech for the transcription tests, and the recognizer loaded once for the whole session.

Human speech: LibriVox clips with reference text from Debian's `pocketsphinx-testdata`.
Synthetic speech: `espeak-ng`. Formats: converted from those with `ffmpeg`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import LazySettings

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
TINY = "tiny.en"


def normalise(text: str) -> str:
    """Lower case, letters and digits only, single spaces: how transcripts are compared."""
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split())


def librivox_clip(number: str) -> tuple[Path, str]:
    """(wav path, reference text) of one LibriVox clip, e.g. "0880"."""
    stem = f"sense_and_sensibility_01_austen_64kb-{number}"
    reference = ""
    for line in (LIBRIVOX / "transcription").read_text().splitlines():
        if line.endswith(f"({stem})"):
            reference = line.replace("<s>", "").replace("</s>", "").rsplit("(", 1)[0].strip()
    path = LIBRIVOX / f"{stem}.wav"
    if not path.exists():
        pytest.skip("pocketsphinx-testdata is not installed (apt-get install -y pocketsphinx-testdata)")
    return path, reference


def run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=60)


def espeak(path: Path, text: str, *, voice: str = "en-us") -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    raw = path.with_suffix(".raw.wav")
    run("espeak-ng", "-v", voice, "-s", "140", "-w", str(raw), text)
    # espeak starts speaking at sample 0; recorded speech has a breath of silence around it, and so does this.
    run(
        "ffmpeg",
        "-y",
        "-loglevel",
        "error",
        "-i",
        str(raw),
        "-af",
        "adelay=500,apad=pad_dur=0.5",
        "-ar",
        "16000",
        str(path),
    )
    raw.unlink()
    return path


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("speech")


@pytest.fixture(scope="session")
def stt_engine():
    """The tiny.en engine, loaded once for the session (engine_get caches it for the process)."""
    from transcription.engine import engine_get

    return engine_get(TINY)


@pytest.fixture(autouse=True)
def _fast_model(settings: LazySettings) -> None:
    # Jobs use engine_get(settings.STT_MODEL): the session's tiny.en, already loaded.
    settings.STT_MODEL = TINY


@pytest.fixture(autouse=True)
def _seeded_sampling() -> None:
    """When a window's greedy decode fails faster-whisper's quality thresholds, the fallback temperatures
    (STT_TEMPERATURES) sample, with CTranslate2's random generator. On espeak audio that decides some windows: a
    stereo-call test once heard "I will end your revised world high friday" in a full run. Each test starts the
    generator from the same seed, so its transcripts do not depend on which tests ran before it."""
    import ctranslate2

    ctranslate2.set_random_seed(20261121)


@pytest.fixture
def media_root(settings: LazySettings, tmp_path: Path) -> Iterator[Path]:
    """default_storage pointed at a temporary folder for one test."""
    root = tmp_path / "media"
    root.mkdir()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}},
    }
    yield root
