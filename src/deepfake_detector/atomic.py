"""Atomic file writes: a reader sees the old file or the whole new one, never half of it."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def staging_path(path: Path) -> Path:
    """Where `path` is written before the rename (same folder: the rename is atomic)."""
    return path.with_name(f".{path.name}.partial")


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a staging path to write; on success it replaces `path` in one rename."""
    path = Path(path)
    staging = staging_path(path)
    try:
        yield staging
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as staging:
        staging.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as staging:
        staging.write_text(text)
    return Path(path)
