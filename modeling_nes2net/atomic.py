"""Atomic writes: a reader sees the old file or the complete new one, never a half-written one."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; it is moved onto `path` only when the block finishes without error,
    and removed otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        yield Path(temporary)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic_output(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)


@contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty staging folder next to `path`; when the block finishes without error it replaces `path` (an
    existing folder is moved aside first and removed last), otherwise it is removed and `path` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield staging
        if path.exists():
            backup = path.with_name(f".{path.name}.old")
            shutil.rmtree(backup, ignore_errors=True)
            os.replace(path, backup)
            os.replace(staging, path)
            shutil.rmtree(backup)
        else:
            os.replace(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class OutputClashError(ValueError):
    """An output path that would overwrite an input or files the command did not create; one line naming it."""


def refuse_overwriting_inputs(output: str | os.PathLike, inputs: Iterable[str | os.PathLike]) -> None:
    """Raise `OutputClashError` when writing `output` (a file, or a folder replaced whole) would overwrite or delete
    one of `inputs`: the same file (links resolved), or a folder holding it."""
    target = Path(os.path.realpath(output))  # realpath, not resolve: a symbolic link loop among inputs is no error
    for source in inputs:
        resolved = Path(os.path.realpath(source))
        if resolved == target or target in resolved.parents:
            relation = "is" if resolved == target else "holds"
            raise OutputClashError(f"{output}: the output {relation} the input {source}; refusing to write onto an "
                                   "input, choose another output")


def refuse_foreign_folder(output: str | os.PathLike, overwrite: bool = False, kind: str = "output folder") -> None:
    """Raise `OutputClashError` when `output` exists and is a file or a non-empty folder, which replacing would
    delete, unless `overwrite`."""
    path = Path(output)
    if overwrite or not (path.exists() or path.is_symlink()):
        return
    if not path.is_dir():
        raise OutputClashError(f"{output}: exists and is not a folder; the {kind} must be a new or empty folder")
    if any(path.iterdir()):
        raise OutputClashError(f"{output}: is a non-empty folder, which the {kind} would replace; choose a new folder "
                               "or pass --overwrite")
