"""Settings of a host: defaults, then a TOML file, then ``DEEPAAS_HOST_*``, then flags.

A TOML file holds the same names as the flags, with underscores::

    listen_port = 8080
    models = ["demo", "iris"]
    workers = 2
    max_body_size = "50M"
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ENV_PREFIX", "Settings", "SettingsError", "default_data_dir", "parse_size"]

ENV_PREFIX = "DEEPAAS_HOST_"

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


class SettingsError(ValueError):
    """A setting has a value the host cannot use."""


def parse_size(value: str | int) -> int:
    """``"100M"`` → 104857600; plain integers are bytes."""
    if isinstance(value, int):
        return value
    match = _SIZE.match(value)
    if not match:
        raise SettingsError(f"not a size: {value!r} (use e.g. 512K, 100M, 2G)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "deepaas-host"


@dataclass(frozen=True)
class Settings:
    """Everything ``create_app`` and ``deepaas-host run`` need."""

    listen_ip: str = "127.0.0.1"
    listen_port: int = 5000
    base_path: str = ""
    models: tuple[str, ...] = ()
    skip_broken: bool = False
    workers: int = 1
    train_workers: int = 1
    warm: bool = True
    train: bool = True
    predict: bool = True
    docs: bool = True
    max_body_size: int = 100 << 20
    queue_size: int = 256
    max_loaded_versions: int = 2
    data_dir: Path = field(default_factory=default_data_dir)
    database_url: str = ""
    history_limit: int = 100
    shutdown_timeout: float = 10.0
    log_level: str = "INFO"
    log_format: str = "text"
    # Serve without access tokens on an address other than loopback.
    insecure: bool = False
    # Where version artifacts live: a directory or any fsspec URL (s3://…, file://…);
    # empty means <data_dir>/artifacts.
    artifact_url: str = ""
    # Online learning: worker processes holding the online models, fsync of the event
    # log before each acknowledgement, events between snapshots, kept predictions
    # awaiting a label (count and age), and the window of the rolling metrics.
    online_workers: int = 1
    online_fsync: bool = True
    snapshot_every: int = 10_000
    keep_predictions: int = 10_000
    keep_seconds: float = 3600.0
    metrics_window: int = 1000
    # Online limits: memory of the predictions kept for a label (per model), features
    # in one sample, distinct feature names one model may learn.
    keep_bytes: int = 64 << 20
    max_features: int = 10_000
    max_feature_names: int = 100_000
    # Names the Host header may carry besides loopback names and the listen address
    # (a guard against DNS rebinding); "*" accepts any name.
    allowed_hosts: tuple[str, ...] = ()
    # Slow clients: seconds for a complete request header, seconds a request body may
    # stall, idle seconds of a keep-alive connection, open connections per client
    # address (0: no cap).
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keepalive_timeout: float = 75.0
    max_connections_per_client: int = 256
    # Versions produced by training kept per model; the default version and pinned
    # versions are never pruned.
    version_history_limit: int = 20

    def __post_init__(self) -> None:
        base = self.base_path.strip()
        base = "" if base in ("", "/") else "/" + base.strip("/")
        object.__setattr__(self, "base_path", base)
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser())
        if self.workers < 1:
            raise SettingsError("workers must be at least 1")
        if self.train_workers < 1:
            raise SettingsError("train_workers must be at least 1")
        if self.online_workers < 1:
            raise SettingsError("online_workers must be at least 1")
        for name in ("snapshot_every", "keep_predictions", "metrics_window"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1")
        if self.keep_seconds <= 0:
            raise SettingsError("keep_seconds must be positive")
        for name in ("keep_bytes", "max_features", "max_feature_names", "version_history_limit"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1")
        for name in ("header_timeout", "body_timeout", "keepalive_timeout"):
            if not getattr(self, name) > 0:
                raise SettingsError(f"{name} must be positive")
        if self.max_connections_per_client < 0:
            raise SettingsError("max_connections_per_client must be 0 (no cap) or more")
        if self.max_body_size < 1:
            raise SettingsError("max_body_size must be positive")
        if self.log_format not in ("text", "json"):
            raise SettingsError("log_format must be 'text' or 'json'")
        if not 0 <= self.listen_port <= 65535:
            raise SettingsError("listen_port must be between 0 and 65535")

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'deepaas-host.db'}"

    @classmethod
    def load(
        cls,
        overrides: Mapping[str, Any] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        config_file: str | Path | None = None,
    ) -> Settings:
        """Merge defaults, the TOML file, the environment and ``overrides``."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        config_file = config_file or environ.get(f"{ENV_PREFIX}CONFIG")
        if config_file:
            path = Path(config_file).expanduser()
            try:
                with path.open("rb") as fh:
                    values.update(_coerce_all(tomllib.load(fh), f"{path}"))
            except OSError as exc:
                raise SettingsError(f"cannot read config file {path}: {exc}") from exc
            except tomllib.TOMLDecodeError as exc:
                raise SettingsError(f"config file {path} is not valid TOML: {exc}") from exc
        from_env = {
            key[len(ENV_PREFIX) :].lower(): value
            for key, value in environ.items()
            if key.startswith(ENV_PREFIX) and key != f"{ENV_PREFIX}CONFIG"
        }
        values.update(_coerce_all(from_env, "environment"))
        values.update(
            _coerce_all({k: v for k, v in (overrides or {}).items() if v is not None}, "flags")
        )
        return cls(**values)


def _fields() -> dict[str, dataclasses.Field[Any]]:
    return {f.name: f for f in dataclasses.fields(Settings)}


def _coerce_all(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    known = _fields()
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name not in known:
            raise SettingsError(f"unknown setting {key!r} in {source}")
        try:
            out[name] = _coerce(name, value)
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"setting {key!r} from {source}: {exc}") from exc
    return out


def _coerce(name: str, value: Any) -> Any:
    default = getattr(Settings(), name) if name != "data_dir" else Path()
    if name in ("max_body_size", "keep_bytes"):
        return parse_size(value)
    if name in ("models", "allowed_hosts"):
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        return tuple(str(v) for v in value)
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        lowered = str(value).strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"not a boolean: {value!r}")
    if isinstance(default, int):
        # int() would quietly turn 2.5 workers into 2 and true into 1.
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(f"not an integer: {value!r}")
        return int(value)
    if isinstance(default, float):
        return float(value)
    if isinstance(default, Path):
        return Path(str(value))
    return str(value)
