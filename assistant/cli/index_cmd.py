"""`tiercode index`, `find`, `search`, `map`: the code index from the command line."""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from assistant.cli.common import non_empty, repo_option
from assistant.cli.output import ConsoleReporter
from assistant.config import Settings, load_settings
from assistant.errors import UsageError

_SKIPPED_SHOWN = 10
"""Skipped paths `tiercode index` lists without --list-skipped."""

if TYPE_CHECKING:
    from indexer.build import BuildReport
    from indexer.embed import VectorIndex
    from indexer.store import IndexStore
    from models.embedder import LlamaEmbedder


def _open_index(repo: Path, rebuild: bool = False) -> tuple[Path, IndexStore]:
    """The repository's root and its index store; an unreadable index is rebuilt with a notice."""
    from assistant import paths
    from assistant.session import check_repo
    from indexer.store import IndexStore

    root = check_repo(repo)
    path = paths.index_dir(root) / "index.sqlite"
    if rebuild:
        shutil.rmtree(path.parent, ignore_errors=True)
    return root, IndexStore.open_or_rebuild(path, lambda notice: click.echo(f"tiercode: {notice}", err=True))


def _build(store: IndexStore, root: Path, settings: Settings) -> tuple[IndexStore, BuildReport]:
    """Build with a progress bar on stderr: files, files per second, skipped; the store it built (a new
    one when the index was found damaged)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from indexer.build import build_or_rebuild
    from indexer.scan import ScanOptions

    console = Console(stderr=True)
    progress = Progress(TextColumn("indexing"), BarColumn(), MofNCompleteColumn(), TextColumn("files"),
                        TextColumn("{task.fields[rate]:.0f} files/s"), TextColumn("{task.fields[skipped]} skipped"),
                        TimeElapsedColumn(), console=console, transient=True, disable=not console.is_terminal)
    task = progress.add_task("indexing", total=None, rate=0.0, skipped=0)
    started = time.perf_counter()
    building: list[BuildReport] = []
    """The build's report, filled as it goes (files the workers find binary or unreadable join the skipped)."""

    def on_scanned(report: BuildReport) -> None:
        building[:] = [report]
        progress.update(task, skipped=len(report.skipped))

    def on_progress(done: int, total: int) -> None:
        rate = done / max(time.perf_counter() - started, 1e-6)
        skipped = len(building[0].skipped) if building else 0
        progress.update(task, completed=done, total=total, rate=rate, skipped=skipped)

    with progress:
        return build_or_rebuild(
            store, root, lambda notice: click.echo(f"tiercode: {notice}", err=True),
            options=ScanOptions(settings.max_file_bytes), on_progress=on_progress, on_scanned=on_scanned,
        )


def _embedder(settings: Settings) -> LlamaEmbedder | None:
    """The configured embedding model, or None when no model made for embeddings is installed."""
    from assistant import paths
    from models.embedder import LlamaEmbedder
    from models.manager import ModelManager

    chosen = ModelManager(paths.models_dir()).dedicated_embedder(settings.local.embedder)
    return None if chosen is None else LlamaEmbedder.for_model(*chosen, threads=settings.local.threads)


def _vectors(store: IndexStore, embedder: LlamaEmbedder) -> VectorIndex:
    from indexer.embed import VectorIndex

    return VectorIndex.for_store(store, embedder.dim)


def _list_skipped(skipped: dict[str, str], most: int | None) -> None:
    """One line per skipped path with its reason, the first `most` of them (all with None)."""
    paths = sorted(skipped)
    for path in paths[:most]:
        click.echo(f"skipped {path}: {skipped[path]}")
    if most is not None and len(paths) > most:
        click.echo(f"… and {len(paths) - most} more (--list-skipped lists them all)")


@click.command()
@repo_option
@click.option("--rebuild", is_flag=True, help="Throw the index away and build it again.")
@click.option("--watch", is_flag=True, help="Keep the index live as files change (Ctrl-C to stop).")
@click.option("--no-embed", is_flag=True, help="Index symbols only; skip the embeddings for dense search.")
@click.option("--list-skipped", is_flag=True,
              help=f"List every path the index skipped with the reason (else the first {_SKIPPED_SHOWN}).")
def index(repo: Path, rebuild: bool, watch: bool, no_embed: bool, list_skipped: bool) -> None:
    """Build or update the repository's index."""
    from indexer.embed import sync_vectors

    settings = load_settings(repo)
    root, store = _open_index(repo, rebuild)
    try:
        store, report = _build(store, root, settings)
        counts = store.counts()
        click.echo(f"indexed {counts['files']} files, {counts['symbols']} symbols "
                   f"({report.parsed} parsed, {report.unchanged} unchanged, {report.removed} removed, "
                   f"{len(report.skipped)} skipped) in {report.seconds:.2f}s")
        _list_skipped(report.skipped, None if list_skipped else _SKIPPED_SHOWN)
        if watch:
            _watch(root, settings, embed=not no_embed)
            return
        embedder = None if no_embed else _embedder(settings)
        if embedder is None and not no_embed:
            click.echo(_NO_EMBEDDER, err=True)
        if embedder is not None:
            vectors = _vectors(store, embedder)
            synced = sync_vectors(store, root, vectors, embedder)
            click.echo(f"embedded {synced.added} chunks from {synced.files} files ({vectors.size} vectors)")
    finally:
        store.close()


_NO_EMBEDDER = ("tiercode: no embedding model installed (the quick-start model does not embed code well);"
                " dense search is off (run `tiercode models pull bge-small`)")


def _watch(root: Path, settings: Settings, embed: bool) -> None:
    """Keep the index live until Ctrl-C or SIGTERM (however the process was started); embeddings follow in
    the background. Stopping leaves at once: what the watcher had not applied yet, the next scan finds."""
    from assistant.live_index import LiveIndex
    from assistant.session import Session
    from assistant.signals import stop_on_signals

    def on_change(changed: list[str]) -> None:
        for path in changed:
            click.echo(f"updated {path}")

    session = Session(root, settings, ConsoleReporter(stream=False))
    live = LiveIndex(session, on_change=on_change, on_notice=lambda notice: click.echo(f"tiercode: {notice}", err=True))
    try:
        with stop_on_signals():
            watching = live.start_watching(embed=embed)
            if embed and session.code_embedder() is None:
                click.echo(_NO_EMBEDDER, err=True)
            if not watching:
                raise SystemExit(2)
            click.echo(f"watching {root} (Ctrl-C to stop)", err=True)  # only once events are being observed
            while True:
                time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        live.close()
        session.close()


def _symbol_row(s: Any) -> dict[str, Any]:
    return {"name": s.name, "qualified_name": s.qualified_name, "kind": s.kind, "path": s.path,
            "line": s.line, "end_line": s.end_line}


@click.command()
@click.argument("name", callback=non_empty)
@repo_option
@click.option("--refs", is_flag=True, help="List references instead of definitions.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def find(name: str, repo: Path, refs: bool, as_json: bool) -> None:
    """Find where NAME is defined (or, with --refs, used); close names when nothing matches exactly. Exits 1
    when nothing matches exactly, as grep does."""
    from assistant.session import Session
    from indexer.search import fuzzy_definitions

    session = Session(repo, load_settings(repo), ConsoleReporter(stream=False))
    try:
        store = session.store()
        note = ""
        if refs:
            usages = store.usages(name)
            rows: list[dict[str, Any]] = [asdict(u) for u in usages]
            lines = [f"{u.path}:{u.line}  {u.enclosing or '<module>'}" for u in usages]
            exact = bool(usages)
        else:
            symbols = store.definitions(name)
            exact = bool(symbols)
            if not symbols:
                symbols = fuzzy_definitions(store, name)
                note = f"no exact match for {name}; close matches:" if symbols else ""
            rows = [_symbol_row(s) for s in symbols]
            lines = [f"{s.path}:{s.line}  {s.kind} {s.qualified_name}  {s.signature}" for s in symbols]
        if as_json:
            click.echo(json.dumps(rows, indent=2))
        else:
            if note:
                click.echo(f"tiercode: {note}", err=True)
            if lines:
                click.echo("\n".join(lines))
            else:
                click.echo(f"tiercode: no {'reference to' if refs else 'definition of'} {name} in the index", err=True)
    finally:
        session.close()
    if not exact:
        raise SystemExit(1)


@click.command()
@click.argument("text", callback=non_empty)
@repo_option
@click.option("-k", "k", type=click.IntRange(1, 1000), default=10, show_default=True, help="How many hits.")
@click.option("--files", "files", is_flag=True, help="Rank files (with what found each) instead of definitions.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def search(text: str, repo: Path, k: int, files: bool, as_json: bool) -> None:
    """What TEXT is about: a question, an error message or a whole bug report ('-' reads it from stdin).

    Traceback frames, file paths and code-shaped names in it, whole-file and per-definition BM25 and
    (once the repository is embedded) dense hits are fused into one ranking: the one the context a
    model gets is built from."""
    from assistant.session import Session
    from indexer.search import hybrid_search, locate

    text = _search_text(text)
    settings = load_settings(repo)
    session = Session(repo, settings, ConsoleReporter(stream=False))
    try:
        store = session.store()
        embedder = _embedder(settings)
        vectors = _vectors(store, embedder) if embedder is not None else None
        if vectors is None or vectors.size == 0:
            how = ("run `tiercode index` to compute them" if embedder is not None else
                   "`tiercode models pull bge-small`, then `tiercode index`, computes them")
            click.echo(f"tiercode: no embeddings yet; searching symbols and BM25 only ({how})", err=True)
            vectors = None
        embedder = embedder if vectors else None
        if files:
            ranked = locate(store, text, k, vectors, embedder, repo).files
            rows: list[dict[str, Any]] = [asdict(f) for f in ranked]
            lines = [f"{f.path}  {f.score:.4f}  ({', '.join(f.reasons)})" for f in ranked]
        else:
            hits = hybrid_search(store, text, k=k, vectors=vectors, embedder=embedder, root=repo)
            rows = [asdict(h) for h in hits]
            lines = [f"{h.path}:{h.line}  {h.symbol}  {h.score:.4f}" for h in hits]
        click.echo(json.dumps(rows, indent=2) if as_json else "\n".join(lines) or "no hits")
    finally:
        session.close()


def _search_text(text: str) -> str:
    """The text to search: the argument, or stdin when it is '-' (a usage error when stdin is empty)."""
    if text != "-":
        return text
    piped = sys.stdin.read() if sys.stdin is not None else ""
    if not piped.strip():
        raise click.UsageError("'-' reads the text from stdin, which was empty; pipe a question or bug report")
    return piped


@click.command(name="map")
@repo_option
@click.option("--tokens", type=click.IntRange(0), default=1024, show_default=True, help="Token budget.")
@click.option("--query", default=None, help="Rank towards the identifiers in this text.")
@click.option("--focus", multiple=True, help="Rank towards this file (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def repo_map(repo: Path, tokens: int, query: str | None, focus: tuple[str, ...], as_json: bool) -> None:
    """A ranked map of the repository's definitions that fits the token budget."""
    from assistant.session import Session
    from indexer.repomap import render_map

    settings = load_settings(repo)
    session = Session(repo, settings, ConsoleReporter(stream=False))
    try:
        store = session.store()
        known = set(store.paths())
        focus = tuple(_indexed_path(session.repo, given, known) for given in focus)
        count, tokenizer = _token_counter(settings)
        text = render_map(store, tokens, count, query=query, focus=focus)
        used = count(text)
        if as_json:
            click.echo(json.dumps({"map": text, "tokens": used, "budget": tokens, "tokenizer": tokenizer}))
        else:
            click.echo(text, nl=False)
            click.echo(f"tiercode: map of {used}/{tokens} tokens, counted with {tokenizer}", err=True)
    finally:
        session.close()


def _indexed_path(repo: Path, given: str, known: set[str]) -> str:
    """A path as the index names it (relative to the repository), given relative to the current folder,
    to the repository, or absolute; a usage error when the index has no such file."""
    path = Path(given)
    candidates = [path.as_posix().removeprefix("./")]
    with contextlib.suppress(ValueError):  # a path outside the repository is only tried as it is
        candidates.insert(0, (Path.cwd() / path).resolve().relative_to(repo.resolve()).as_posix())
    for candidate in candidates:
        if candidate in known:
            return candidate
    raise UsageError(f"--focus {given}: not a file in the index of {repo}")


def _token_counter(settings: Settings) -> tuple[Any, str]:
    """The installed local coder's tokenizer, or a conservative estimate when none is installed."""
    from assistant import paths
    from indexer.repomap import estimate_tokens
    from models.base import ModelUnavailable
    from models.local import LocalModel
    from models.manager import ModelManager

    try:
        name, path = ModelManager(paths.models_dir()).resolve("coder", settings.local.coder)
        model = LocalModel(path)
        model.tokenize("x")
    except ModelUnavailable:
        return estimate_tokens, "an estimate (2 bytes per token; no local model installed)"
    return (lambda text: len(model.tokenize(text))), f"the {name} tokenizer"


COMMANDS = [index, find, search, repo_map]
