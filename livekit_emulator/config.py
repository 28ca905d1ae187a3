"""Emulator settings, read from environment variables with documented defaults.

Every variable is described in ``docs/livekit-emulator.md``. Values that do not parse fail loudly at start-up
rather than silently falling back to a default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


class ConfigError(ValueError):
    """An environment variable holds a value the emulator cannot use."""


def _float(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _list(env: Mapping[str, str], name: str) -> list[str]:
    return [item.strip() for item in env.get(name, "").split(",") if item.strip()]


def parse_keys(raw: str) -> dict[str, str]:
    """Parse ``key1:secret1,key2:secret2`` into an ordered mapping (the first key signs webhooks)."""
    keys: dict[str, str] = {}
    for pair in raw.split(","):
        pair = pair.strip()
        if not pair:
            continue
        key, sep, secret = pair.partition(":")
        if not sep or not key.strip() or not secret.strip():
            raise ConfigError(f"EMULATOR_KEYS entries must look like key:secret, got {pair!r}")
        keys[key.strip()] = secret.strip()
    return keys


@dataclass
class EmulatorConfig:
    """Runtime configuration of one emulator instance.

    ``keys`` maps API key -> secret; the first entry signs webhooks (LiveKit's ``webhook.api_key``).
    ``speed`` scales the simulated media clock: at 2.0 a 3 s tone plays out in 1.5 s of wall time.
    """

    host: str = "127.0.0.1"
    port: int = 7880
    keys: dict[str, str] = field(default_factory=lambda: {"devkey": "secret"})
    webhook_urls: list[str] = field(default_factory=list)
    file_output_dir: Path = Path("data/media")
    speed: float = 1.0
    rtmp_base_url: str = "rtmp://127.0.0.1:1935/live"
    whip_base_url: str = "http://127.0.0.1:8080/w"
    empty_timeout: int = 300
    departure_timeout: int = 20
    egress_start_delay: float = 0.3
    webhook_retry_base: float = 1.0
    webhook_max_age: float = 30.0
    webhook_max_depth: int = 200
    webhook_timeout: float = 10.0
    ice_addresses: list[str] = field(default_factory=list)
    work_dir: Path | None = None

    @property
    def webhook_key(self) -> str:
        return next(iter(self.keys))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EmulatorConfig:
        """Build a configuration from ``env`` (``os.environ`` by default). Raises ConfigError on bad values."""
        env = os.environ if env is None else env
        keys = parse_keys(env.get("EMULATOR_KEYS", ""))
        if not keys:
            keys = {
                env.get("LIVEKIT_API_KEY", "").strip() or "devkey": env.get("LIVEKIT_API_SECRET", "").strip()
                or "secret"
            }
        speed = _float(env, "EMULATOR_SPEED", 1.0)
        if speed <= 0:
            raise ConfigError("EMULATOR_SPEED must be > 0")
        defaults = cls()
        return cls(
            host=env.get("EMULATOR_HOST", "").strip() or defaults.host,
            port=_int(env, "EMULATOR_PORT", defaults.port),
            keys=keys,
            webhook_urls=_list(env, "EMULATOR_WEBHOOK_URLS"),
            file_output_dir=Path(env.get("EMULATOR_FILE_OUTPUT_DIR", "").strip() or defaults.file_output_dir),
            speed=speed,
            rtmp_base_url=env.get("EMULATOR_RTMP_BASE_URL", "").strip() or defaults.rtmp_base_url,
            whip_base_url=env.get("EMULATOR_WHIP_BASE_URL", "").strip() or defaults.whip_base_url,
            empty_timeout=_int(env, "EMULATOR_EMPTY_TIMEOUT", defaults.empty_timeout),
            departure_timeout=_int(env, "EMULATOR_DEPARTURE_TIMEOUT", defaults.departure_timeout),
            egress_start_delay=_float(env, "EMULATOR_EGRESS_START_DELAY", defaults.egress_start_delay),
            webhook_retry_base=_float(env, "EMULATOR_WEBHOOK_RETRY_BASE", defaults.webhook_retry_base),
            webhook_max_age=_float(env, "EMULATOR_WEBHOOK_MAX_AGE", defaults.webhook_max_age),
            webhook_max_depth=_int(env, "EMULATOR_WEBHOOK_MAX_DEPTH", defaults.webhook_max_depth),
            webhook_timeout=_float(env, "EMULATOR_WEBHOOK_TIMEOUT", defaults.webhook_timeout),
            ice_addresses=_list(env, "EMULATOR_ICE_ADDRESSES"),
        )
