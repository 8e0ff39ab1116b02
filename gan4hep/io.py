"""Reading and writing tables: ROOT (uproot TTrees), parquet, CSV, HDF5 — always atomically."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary sibling of ``path``; rename it onto ``path`` only if the block succeeds.

    A crash or exception leaves no half-written file behind, and an existing file is replaced in one step.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
