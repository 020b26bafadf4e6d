"""Edits an answer proposes: parse unified diffs and SEARCH/REPLACE blocks, apply them safely, undo them.

Three steps, each its own function or class:
`parse_edits(text)` finds the proposed edits; `plan_changes(edits, root)` turns them into whole-file
before/after pairs (nothing written yet, every path checked to lie inside the repository);
`EditJournal.apply(changes)` writes them atomically and keeps what it replaced so `undo()` restores it.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal


class EditError(Exception):
    """An edit that cannot be planned, applied or undone; the message says which file and why."""


@dataclass(frozen=True)
class Hunk:
    """One `@@` hunk of a unified diff: the lines it expects and the lines it leaves."""

    old_start: int
    """1-based line the hunk claims to start at (a hint: models often get it wrong)."""
    old: tuple[str, ...]
    new: tuple[str, ...]


@dataclass(frozen=True)
class ProposedEdit:
    """One edit of one file, as the answer wrote it."""

    path: str
    kind: Literal["diff", "replace"]
    hunks: tuple[Hunk, ...] = ()
    """For `diff`: the hunks, in order."""
    search: str = ""
    """For `replace`: the text to find (empty: create the file, or append to it)."""
    replace: str = ""
    """For `replace`: the text to put in its place."""
    delete: bool = False
    """For `diff`: the diff removes the file (`+++ /dev/null`)."""


@dataclass(frozen=True)
class FileChange:
    """A file's whole contents before and after an edit; None means the file does not exist."""

    path: str
    """Relative to the repository root, `/` separators."""
    before: str | None
    after: str | None

    @property
    def action(self) -> str:
        """`create`, `delete` or `modify`."""
        return "create" if self.before is None else "delete" if self.after is None else "modify"

    def diff(self) -> str:
        """The change as a unified diff (for showing, not for parsing)."""
        old = (self.before or "").splitlines(keepends=True)
        new = (self.after or "").splitlines(keepends=True)
        lines = difflib.unified_diff(old, new, "/dev/null" if self.before is None else f"a/{self.path}",
                                     "/dev/null" if self.after is None else f"b/{self.path}")
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


# -- parsing ------------------------------------------------------------------------------------

_HUNK_HEADER = re.compile(r"^@@+ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@+")
_FENCE = re.compile(r"^\s*(```|~~~)")
_SEARCH = re.compile(r"^\s*<{5,9} SEARCH\s*$")
_DIVIDER = re.compile(r"^\s*={5,9}\s*$")
_REPLACE = re.compile(r"^\s*>{5,9} REPLACE\s*$")


def no_edit_reason(text: str) -> str:
    """Why an answer with no edit `parse_edits` finds gives nothing to write: it has no code at all, or its code
    is not in a form that says where it goes."""
    if "```" in text or re.search(r"^(?: {4}|\t)\S", text, re.M):
        return ("the answer shows code but no edit that says where it goes (a unified diff or a SEARCH/REPLACE "
                "block); ask again for the change as a diff")
    return "the answer proposes no edit"


def parse_edits(text: str) -> list[ProposedEdit]:
    """Every unified diff and SEARCH/REPLACE block in an answer, in the order they appear."""
    lines = text.splitlines()
    edits: list[ProposedEdit] = []
    last_path = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            edit, i = _parse_diff(lines, i)
            if edit is not None:
                edits.append(edit)
            continue
        if _SEARCH.match(line):
            path = _filename_before(lines, i) or last_path
            edit, i = _parse_block(lines, i, path)
            if edit is not None:
                edits.append(edit)
                last_path = edit.path
            continue
        i += 1
    return edits


def _diff_path(header: str) -> str | None:
    name = header[4:].split("\t")[0].strip()
    if name == "/dev/null":
        return None
    if name[:2] in ("a/", "b/"):
        name = name[2:]
    return name


def _parse_diff(lines: list[str], i: int) -> tuple[ProposedEdit | None, int]:
    old_path, new_path = _diff_path(lines[i]), _diff_path(lines[i + 1])
    i += 2
    hunks: list[Hunk] = []
    while i < len(lines):
        header = _HUNK_HEADER.match(lines[i])
        if header is None:
            break
        i += 1
        old: list[str] = []
        new: list[str] = []
        while i < len(lines):
            line = lines[i]
            if _HUNK_HEADER.match(line) or _FENCE.match(line):
                break
            if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
                break
            if line.startswith("\\"):  # "\ No newline at end of file"
                i += 1
                continue
            tag, body = (line[0], line[1:]) if line else (" ", "")
            if tag not in " +-":
                break
            if tag in " -":
                old.append(body)
            if tag in " +":
                new.append(body)
            i += 1
        hunks.append(Hunk(int(header.group(1)), tuple(old), tuple(new)))
    path = new_path or old_path
    if path is None or not hunks:
        return None, i
    return ProposedEdit(path, "diff", hunks=tuple(hunks), delete=new_path is None), i


def _filename_before(lines: list[str], i: int) -> str:
    for back in range(i - 1, max(-1, i - 4), -1):
        candidate = lines[back].strip()
        if not candidate or _FENCE.match(candidate):
            continue
        candidate = re.sub(r"^(#+\s*|file:\s*|path:\s*)", "", candidate, flags=re.IGNORECASE)
        candidate = candidate.strip("`*:' \"")
        return candidate if re.fullmatch(r"[\w./\\-]+", candidate) and ("." in candidate or "/" in candidate) else ""
    return ""


def _parse_block(lines: list[str], i: int, path: str) -> tuple[ProposedEdit | None, int]:
    start = i + 1
    divider = next((j for j in range(start, len(lines)) if _DIVIDER.match(lines[j])), None)
    if divider is None:
        return None, start
    end = next((j for j in range(divider + 1, len(lines)) if _REPLACE.match(lines[j])), None)
    if end is None:
        return None, start
    if not path:
        return None, end + 1
    search = "\n".join(lines[start:divider])
    replace = "\n".join(lines[divider + 1:end])
    search = search + "\n" if search else ""
    replace = replace + "\n" if replace else ""
    return ProposedEdit(path, "replace", search=search, replace=replace), end + 1


# -- planning -----------------------------------------------------------------------------------

def resolve_inside(root: Path, path: str) -> Path:
    """The real location of a repository-relative path; EditError when it would leave the root."""
    pure = PurePosixPath(path.replace("\\", "/"))
    if not path.strip() or pure.is_absolute() or re.match(r"^[A-Za-z]:", path):
        raise EditError(f"refusing to edit '{path}': only paths relative to the repository root are allowed")
    if ".." in pure.parts:
        raise EditError(f"refusing to edit '{path}': '..' would leave the repository")
    if ".git" in pure.parts:
        raise EditError(f"refusing to edit '{path}': files under .git are not edited")
    real_root = root.resolve()
    target = Path(os.path.realpath(real_root.joinpath(*pure.parts)))
    if not target.is_relative_to(real_root):
        raise EditError(f"refusing to edit '{path}': a symbolic link leads outside the repository")
    if target.is_dir():
        raise EditError(f"cannot edit '{path}': it is a folder")
    return target


def _read(target: Path, path: str) -> str | None:
    try:
        data = target.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise EditError(f"cannot read '{path}': {exc.strerror or exc}") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EditError(f"cannot edit '{path}': it is not UTF-8 text") from exc


def plan_changes(edits: Sequence[ProposedEdit], root: Path) -> list[FileChange]:
    """Apply the edits in memory to the files as they are now; one FileChange per touched file."""
    befores: dict[str, str | None] = {}
    afters: dict[str, str | None] = {}
    for edit in edits:
        target = resolve_inside(root, edit.path)
        key = target.relative_to(root.resolve()).as_posix()
        if key not in befores:
            befores[key] = afters[key] = _read(target, edit.path)
        afters[key] = _apply_one(edit, afters[key])
    return [FileChange(path, befores[path], afters[path]) for path in befores if befores[path] != afters[path]]


def _apply_one(edit: ProposedEdit, current: str | None) -> str | None:
    crlf = current is not None and "\r\n" in current
    text = current.replace("\r\n", "\n") if current is not None else None
    if edit.kind == "replace":
        result = _search_replace(edit, text)
    elif edit.delete:
        if text is None:
            raise EditError(f"cannot delete '{edit.path}': it does not exist")
        return None
    else:
        result = _patch(edit, text)
    return result.replace("\n", "\r\n") if crlf and result is not None else result


def _search_replace(edit: ProposedEdit, text: str | None) -> str:
    if not edit.search.strip():
        return edit.replace if text is None else text + ("" if text.endswith("\n") or not text else "\n") + edit.replace
    if text is None:
        raise EditError(f"cannot edit '{edit.path}': it does not exist (an empty SEARCH section creates a file)")
    if edit.search in text:
        return text.replace(edit.search, edit.replace, 1)
    lines = text.splitlines(keepends=True)
    at = _find_lines(lines, edit.search.splitlines(), 0)
    if at is None:
        raise EditError(f"the SEARCH text for '{edit.path}' does not match the file; nothing was changed")
    count = len(edit.search.splitlines())
    return "".join(lines[:at]) + edit.replace + "".join(lines[at + count:])


def _patch(edit: ProposedEdit, text: str | None) -> str:
    lines = [] if text is None else text.splitlines()
    ends_with_newline = text is None or text.endswith("\n") or text == ""
    offset = 0
    for number, hunk in enumerate(edit.hunks, 1):
        if not hunk.old:
            at = len(lines) if text is None else min(max(hunk.old_start, 0), len(lines))
        else:
            at = _find_lines(lines, list(hunk.old), max(0, hunk.old_start - 1 + offset))
            if at is None:
                raise EditError(f"hunk {number} of the diff for '{edit.path}' does not match the file;"
                                " nothing was changed")
        lines[at:at + len(hunk.old)] = hunk.new
        offset += len(hunk.new) - len(hunk.old)
    if not lines:
        return ""
    return "\n".join(lines) + ("\n" if ends_with_newline else "")


def _find_lines(lines: Sequence[str], wanted: Sequence[str], hint: int) -> int | None:
    """Where `wanted` occurs in `lines`, nearest to `hint`; exact first, then ignoring trailing spaces."""
    size = len(wanted)
    starts = sorted(range(len(lines) - size + 1), key=lambda s: abs(s - hint))
    for same in (lambda a, b: a.rstrip("\n") == b.rstrip("\n"), lambda a, b: a.rstrip() == b.rstrip()):
        for start in starts:
            if all(same(lines[start + k], wanted[k]) for k in range(size)):
                return start
    return None


# -- applying and undoing -------------------------------------------------------------------------

@dataclass
class _Batch:
    changes: list[FileChange]
    created_dirs: list[Path] = field(default_factory=list)


class EditJournal:
    """Writes planned changes atomically inside one repository and remembers them for undo."""

    def __init__(self, root: Path, on_change: Callable[[list[str]], None] | None = None) -> None:
        self.root = root.resolve()
        self.on_change = on_change
        """Called with the changed paths after every apply and undo (to update the index)."""
        self._batches: list[_Batch] = []

    @property
    def can_undo(self) -> bool:
        """Whether an applied batch is waiting to be undone."""
        return bool(self._batches)

    def apply(self, changes: Sequence[FileChange]) -> list[str]:
        """Write all changes or none; EditError when a file changed since planning or cannot be written."""
        self.check_unchanged(changes)
        batch = _Batch(list(changes))
        self._write_all(batch, [(c.path, c.after) for c in changes], [(c.path, c.before) for c in changes])
        self._batches.append(batch)
        return self._notify(changes)

    def check_unchanged(self, changes: Sequence[FileChange]) -> None:
        """EditError when a file no longer holds what the changes were planned against."""
        for change in changes:
            if _read(resolve_inside(self.root, change.path), change.path) != change.before:
                raise EditError(f"'{change.path}' changed since the edit was proposed; ask again")

    def undo(self) -> list[str]:
        """Restore the files of the last applied batch; EditError when one was edited since."""
        if not self._batches:
            raise EditError("nothing to undo")
        batch = self._batches[-1]
        for change in batch.changes:
            if _read(resolve_inside(self.root, change.path), change.path) != change.after:
                raise EditError(f"'{change.path}' was edited after /apply; undo it by hand")
        self._write_all(_Batch([]), [(c.path, c.before) for c in reversed(batch.changes)],
                        [(c.path, c.after) for c in reversed(batch.changes)])
        for folder in reversed(batch.created_dirs):
            with contextlib.suppress(OSError):
                folder.rmdir()
        self._batches.pop()
        return self._notify(batch.changes)

    def _write_all(self, batch: _Batch, targets: list[tuple[str, str | None]],
                   rollback: list[tuple[str, str | None]]) -> None:
        done = 0
        try:
            for path, contents in targets:
                _write(resolve_inside(self.root, path), contents, batch.created_dirs, self.root)
                done += 1
        except OSError as exc:
            for path, contents in reversed(rollback[:done]):
                _write(resolve_inside(self.root, path), contents, [], self.root)
            raise EditError(f"cannot write '{targets[done][0]}': {exc.strerror or exc}; nothing was changed") from exc

    def _notify(self, changes: Sequence[FileChange]) -> list[str]:
        paths = [c.path for c in changes]
        if self.on_change is not None:
            self.on_change(paths)
        return paths


def _write(target: Path, contents: str | None, created_dirs: list[Path], root: Path) -> None:
    """Replace `target` with `contents` via a temporary file and os.replace; None deletes it."""
    if contents is None:
        target.unlink(missing_ok=True)
        return
    missing = [p for p in [target.parent, *target.parent.parents] if p.is_relative_to(root) and not p.exists()]
    target.parent.mkdir(parents=True, exist_ok=True)
    created_dirs.extend(reversed(missing))
    try:
        mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    handle, temp = tempfile.mkstemp(dir=target.parent, prefix=".tiercode-", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(contents)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, mode)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
