"""Reading and writing tables: ROOT (uproot TTrees), parquet, CSV, HDF5 — always atomically.

ROOT tables are flat TTrees written with ``mktree`` + ``extend`` (never RNTuple). String / categorical columns are
stored in ROOT as int32 codes plus a JSON TObjString ``<tree>__categories`` and decoded back on reading; free-form
metadata lives in the TObjString ``<tree>__metadata`` (see ``read_metadata``). HDF5 files hold one group per table
(default ``events``) with one dataset per column (h5py; PyTables is not needed).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Collection, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import InputError, MissingInput

__all__ = ["atomic_path", "read_table", "write_table", "write_json", "markdown_table", "read_metadata", "write_root",
           "root_tree_names", "check_finite", "SUFFIXES"]

#: File extensions ``read_table`` / ``write_table`` understand (matched case-insensitively).
SUFFIXES = (".root", ".parquet", ".csv", ".h5", ".hdf5")

#: A file path as accepted by every function here.
PathLike = str | os.PathLike


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it onto ``path`` only if the block succeeds.

    A crash or exception leaves no half-written file behind, and an existing file is replaced in one step.
    Missing parent folders are created.

    Args:
        path: the final file path.

    Yields:
        The temporary path ``<dir>/.<name>.<pid>.tmp<suffix>`` to write to (same suffix, so writers that pick a
        format by extension work).

    Raises:
        OSError: the parent folder cannot be created or the rename fails. An exception raised inside the block
            propagates after the temporary file is removed.
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


def _suffix(path):
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"{path}: unsupported table format {suffix!r}; use one of {', '.join(SUFFIXES)}")
    return suffix


def root_tree_names(path: PathLike) -> list[str]:
    """Names of the TTrees in a ROOT file (without cycle numbers), sorted.

    Raises:
        FileNotFoundError, OSError: from ``uproot.open`` (missing or unreadable file).
    """
    import uproot

    with uproot.open(path) as f:
        return sorted({k.split(";")[0] for k, c in f.classnames().items() if c == "TTree"})


def _pick_tree(path, tree, names):
    if tree is not None:
        if tree not in names:
            raise MissingInput(f"{path}: no TTree {tree!r}; trees in the file: {names}")
        return tree
    if len(names) == 1:
        return names[0]
    if "events" in names:
        return "events"
    raise MissingInput(f"{path}: {len(names)} TTrees {names}; pass tree=... to choose one")


def check_finite(df: pd.DataFrame, columns: Iterable[str] | None = None, path: PathLike = "table") -> None:
    """Check that the numeric columns of ``df`` are finite; non-numeric and boolean columns are skipped.

    Args:
        df: the table.
        columns: the columns to check (default: all).
        path: the file name used in the error message.

    Raises:
        ValueError: naming the first column holding NaN or inf, with the count and the first row.
        KeyError: a name in ``columns`` is not a column of ``df``.
    """
    columns = list(df.columns) if columns is None else list(columns)
    for c in columns:
        values = df[c]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        bad = ~np.isfinite(values.to_numpy(dtype=float))
        if bad.any():
            raise InputError(f"{path}: column {c!r} has {int(bad.sum())} NaN/inf values (first at row "
                             f"{int(np.argmax(bad))})")


def read_table(path: PathLike, tree: str | None = None, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a flat table (.root TTree, .parquet, .csv, .h5/.hdf5) into a DataFrame.

    Args:
        path: the file; the format is chosen by its extension (one of ``SUFFIXES``).
        tree: the TTree (ROOT) or group (HDF5) to read; default: the only one, else ``events``. Ignored for
            parquet and CSV.
        columns: the columns to read, in this order (default: all, in file order).

    Returns:
        A DataFrame of shape ``(n_events, n_columns)``; ROOT string columns written by ``write_table`` come back
        as ``pd.Categorical``, HDF5 byte strings as ``str``. Units are those of the file.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: unsupported extension; a jagged ROOT branch; NaN/inf in a requested numeric column
            (see ``check_finite``).
        KeyError: the named ``tree`` is absent, or several trees and none called ``events``; missing
            ``columns`` (the message lists the available ones).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    suffix = _suffix(path)
    want = None if columns is None else list(columns)

    def _missing(available):
        if want is None:
            return
        missing = [c for c in want if c not in available]
        if missing:
            raise MissingInput(f"{path}: missing columns {missing}; available: {sorted(available)}")

    if suffix == ".root":
        import uproot

        name = _pick_tree(path, tree, root_tree_names(path))
        with uproot.open(path) as f:
            t = f[name]
            available = list(t.keys())
            _missing(available)
            arrays = t.arrays(want if want is not None else available, library="np")
            cats_key = f"{name}__categories"
            cats = json.loads(str(f[cats_key])) if cats_key in f else {}
        for bad in [k for k, v in arrays.items() if v.dtype == object]:
            raise InputError(f"{path}: branch {bad!r} of tree {name!r} is jagged; read_table reads flat trees only")
        df = pd.DataFrame({k: arrays[k] for k in (want or available)})
        for col, labels in cats.items():
            if col in df:
                df[col] = pd.Categorical.from_codes(df[col].to_numpy(), categories=labels)
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        available = pq.read_schema(path).names
        _missing(available)
        df = pd.read_parquet(path, columns=want)
    elif suffix == ".csv":
        available = list(pd.read_csv(path, nrows=0).columns)
        _missing(available)
        df = pd.read_csv(path, usecols=want)
        if want is not None:
            df = df[want]
    else:
        import h5py

        with h5py.File(path, "r") as f:
            groups = sorted(k for k in f.keys() if isinstance(f[k], h5py.Group))
            g = f[_pick_tree(path, tree, groups)]
            available = list(g.attrs.get("columns", list(g.keys())))
            _missing(available)
            data = {}
            for c in want or available:
                v = g[c][()]
                if v.dtype.kind == "S":
                    v = v.astype(str)
                data[c] = v
        df = pd.DataFrame(data)
    check_finite(df, want, path)
    return df


def _root_columns(df):
    """Split a DataFrame into ROOT-writable numpy branches and category labels for string columns."""
    branches, cats = {}, {}
    for c in df.columns:
        s = df[c]
        if isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object or pd.api.types.is_string_dtype(s):
            cat = s.astype("category")
            cats[str(c)] = [str(x) for x in cat.cat.categories]
            branches[str(c)] = cat.cat.codes.to_numpy().astype(np.int32)
        else:
            branches[str(c)] = s.to_numpy()
    return branches, cats


def write_table(df: pd.DataFrame, path: PathLike, tree: str = "events",
                metadata: Mapping[str, Any] | None = None) -> Path:
    """Write a DataFrame by extension, atomically; ROOT as a flat TTree (``mktree`` + ``extend``).

    Args:
        df: the table, shape ``(n_events, n_columns)``; string / categorical columns are stored as int32 codes
            plus labels (ROOT) or byte strings (HDF5). The index is not written.
        path: the output file; its extension (one of ``SUFFIXES``) picks the format.
        tree: the TTree (ROOT) or group (HDF5) name.
        metadata: a JSON-serialisable dict stored beside the tree (ROOT only; see ``read_metadata``).

    Returns:
        ``Path(path)``.

    Raises:
        ValueError: unsupported extension.
        TypeError: ``metadata`` is not JSON-serialisable.
    """
    path = Path(path)
    suffix = _suffix(path)
    with atomic_path(path) as tmp:
        if suffix == ".root":
            branches, cats = _root_columns(df)
            extra = {f"{tree}__categories": cats} if cats else {}
            if metadata is not None:
                extra[f"{tree}__metadata"] = metadata
            _write_root_file(tmp, {tree: branches}, extra)
        elif suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        elif suffix == ".csv":
            df.to_csv(tmp, index=False)
        else:
            import h5py

            with h5py.File(tmp, "w") as f:
                g = f.create_group(tree)
                g.attrs["columns"] = [str(c) for c in df.columns]
                for c in df.columns:
                    v = df[c]
                    if isinstance(v.dtype, pd.CategoricalDtype) or v.dtype == object or \
                            pd.api.types.is_string_dtype(v):
                        g.create_dataset(str(c), data=v.astype(str).to_numpy().astype("S"))
                    else:
                        g.create_dataset(str(c), data=v.to_numpy())
    return path


def _write_root_file(path, trees, strings):
    import uproot

    with uproot.recreate(path) as f:
        for key, value in strings.items():
            f[key] = json.dumps(value)
        for name, branches in trees.items():
            _write_tree(f, name, branches)


def _write_tree(f, name, branches, delphes=False):
    """Write one TTree; awkward record branches become Delphes-style ``Name.Field`` + ``Name_size``."""
    import awkward as ak

    types = {}
    for key, value in branches.items():
        types[key] = value.type.content if isinstance(value, ak.Array) else np.asarray(value).dtype
    kwargs = {}
    if delphes:
        kwargs = dict(counter_name=lambda c: c + "_size", field_name=lambda outer, inner: f"{outer}.{inner}")
    t = f.mktree(name, types, **kwargs)
    n = len(next(iter(branches.values()))) if branches else 0
    if n:
        t.extend(branches)


def write_root(path: PathLike, trees: Mapping[str, Mapping[str, Any]], metadata: Mapping[str, Any] | None = None,
               delphes_trees: Collection[str] = ()) -> Path:
    """Write several TTrees to one ROOT file atomically.

    Args:
        path: the output ``.root`` file.
        trees: tree name -> {branch: numpy array ``(n_entries,)`` or awkward array of records (jagged,
            ``n_entries`` lists)}; all branches of a tree have the same length.
        metadata: JSON-serialisable dict, written to the TObjString ``<tree>__metadata`` of every tree.
        delphes_trees: trees whose record branches get Delphes names (``Jet.PT``, counter ``Jet_size``).

    Returns:
        ``Path(path)``.

    Raises:
        TypeError: ``metadata`` is not JSON-serialisable. Errors of ``uproot`` (e.g. an unsupported branch type)
            propagate; no file is left behind.
    """
    import uproot

    path = Path(path)
    with atomic_path(path) as tmp:
        with uproot.recreate(tmp) as f:
            for name, branches in trees.items():
                if metadata is not None:
                    f[f"{name}__metadata"] = json.dumps(metadata)
                _write_tree(f, name, branches, delphes=name in delphes_trees)
    return path


def read_metadata(path: PathLike, tree: str | None = None) -> dict[str, Any]:
    """The metadata dict stored with a ROOT table (``{}`` when there is none).

    Args:
        path: a ROOT file written by ``write_table`` or ``write_root``.
        tree: the tree whose ``<tree>__metadata`` to read; chosen as in ``read_table``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        KeyError: the named ``tree`` is absent, or several trees and none called ``events``.
    """
    import uproot

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    name = _pick_tree(path, tree, root_tree_names(path))
    with uproot.open(path) as f:
        key = f"{name}__metadata"
        return json.loads(str(f[key])) if key in f else {}


def write_json(obj: Any, path: PathLike) -> Path:
    """Write ``obj`` as JSON (indent 1) to ``path`` atomically; returns ``Path(path)``.

    Objects JSON cannot encode are passed through ``float`` (numpy scalars become floats).

    Raises:
        TypeError, ValueError: an object that is neither JSON-serialisable nor convertible by ``float``.
    """
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=1, default=float))
    return Path(path)


def markdown_table(df: pd.DataFrame, index: bool = False, floatfmt: str = "{:.4g}") -> str:
    """A DataFrame as a GitHub Markdown table (floats with ``floatfmt``; the index as first column if ``index``).

    Returns the table text, one line per row plus header and separator, ending in a newline.
    """
    def fmt(v):
        return floatfmt.format(v) if isinstance(v, (float, np.floating)) else str(v)

    cols = ([df.index.name or ""] if index else []) + [str(c) for c in df.columns]
    rows = [([str(i)] if index else []) + [fmt(v) for v in r] for i, r in zip(df.index, df.itertuples(index=False))]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"
