"""Paths built from outside text (store ids, the team's result paths and files) kept inside their
root: the one check for the local collections, scratch and the products.

No Django here: the products library uses it too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath


class PathRefused(ValueError):
    """A path that cannot be used: it leaves its root (``..``, a link out) or is not a path."""


def clean_absolute_path(path: str) -> str:
    """A path on a collection as a person typed it, normalised: one leading ``/``, no empty or
    ``.`` parts, ``..`` applied; a trailing ``/`` is kept. PathRefused for NUL bytes, a relative
    path or ``..`` above the root (``//etc/`` is ``/etc/``; ``/demo/../../..`` is refused)."""
    if "\x00" in path:
        raise PathRefused("A path may not contain NUL bytes.")
    if not path.startswith("/"):
        raise PathRefused(f"{path!r} is not an absolute path (it starts with /).")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise PathRefused(f"{path!r} climbs above the collection's root with '..'.")
            parts.pop()
            continue
        parts.append(part)
    cleaned = "/" + "/".join(parts)
    return cleaned + "/" if parts and path.endswith(("/", "/.", "/..")) else cleaned


def inside(root: str | Path, *parts: str) -> Path:
    """``root`` joined with ``parts`` and resolved, links followed; PathRefused unless it is the
    root or below it. Each part is a path relative to the root (a leading ``/`` means the root),
    so that ids and collection paths join alike. The root itself may be a link (a mount)."""
    base = Path(root).resolve()
    relative = PurePosixPath()
    for part in parts:
        if "\x00" in part:
            raise PathRefused("A path may not contain NUL bytes.")
        relative /= part.lstrip("/")
    try:
        resolved = (base / relative).resolve()
    except (OSError, RuntimeError) as error:  # a loop of links
        raise PathRefused(f"/{relative} cannot be resolved: {error}") from None
    if not resolved.is_relative_to(base):
        joined = "/" + str(relative) if str(relative) != "." else "/"
        raise PathRefused(f"{joined} leaves {base.name}/ ('..' or a link to elsewhere).")
    return resolved


def files_inside(root: str | Path, folder: Path) -> list[Path]:
    """The files under ``folder`` (recursively, hidden ones left out); PathRefused naming the
    first entry (file, folder or dangling link) that resolves outside ``root``."""
    base = Path(root).resolve()
    files = []
    for path in sorted(folder.rglob("*")):
        if path.name.startswith("."):
            continue
        if not path.resolve().is_relative_to(base):
            raise PathRefused(
                f"{path.relative_to(folder)} in {folder.name}/ links to a place outside {base.name}/."
            )
        if path.is_file():
            files.append(path)
    return files


def level1_on_scratch(scratch: str | Path, *, proposal_id: str, dataset_ids: Sequence[str]) -> Path:
    """``{scratch}/{proposalId}/``, where the datasets' Level 1 folders are, each checked to hold
    no link out of scratch: scratch is the team's space too. PathRefused."""
    for dataset_id in dataset_ids:
        files_inside(scratch, inside(scratch, proposal_id, dataset_id))
    return inside(scratch, proposal_id)
