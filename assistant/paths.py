"""Where Tiercode keeps its files (XDG base directories)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def _xdg(variable: str, fallback: str) -> Path:
    value = os.environ.get(variable)
    return Path(value) if value else Path.home() / fallback


def config_dir() -> Path:
    """User configuration: `$XDG_CONFIG_HOME/tiercode`."""
    return _xdg("XDG_CONFIG_HOME", ".config") / "tiercode"


def data_dir() -> Path:
    """Ledger, caches and models: `$XDG_DATA_HOME/tiercode`."""
    return _xdg("XDG_DATA_HOME", ".local/share") / "tiercode"


def cache_dir() -> Path:
    """Per-repository indexes: `$XDG_CACHE_HOME/tiercode`."""
    return _xdg("XDG_CACHE_HOME", ".cache") / "tiercode"


def models_dir() -> Path:
    """Downloaded model files."""
    return data_dir() / "models"


def user_config_file() -> Path:
    """The user's config file."""
    return config_dir() / "config.toml"


def index_dir(repo: Path) -> Path:
    """The index folder of one repository, keyed by its resolved path."""
    resolved = repo.resolve()
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:16]
    return cache_dir() / f"{resolved.name or 'root'}-{digest}"
