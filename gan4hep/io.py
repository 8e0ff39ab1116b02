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

import numpy as np
import pandas as pd

__all__ = ["atomic_path", "read_table", "write_table", "write_json", "markdown_table", "read_metadata", "write_root",
           "root_tree_names", "check_finite", "SUFFIXES"]

SUFFIXES = (".root", ".parquet", ".csv", ".h5", ".hdf5")


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


def _suffix(path):
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{path}: unsupported table format {suffix!r}; use one of {', '.join(SUFFIXES)}")
    return suffix


def root_tree_names(path):
    """Names of the TTrees in a ROOT file (without cycle numbers)."""
    import uproot

    with uproot.open(path) as f:
        return sorted({k.split(";")[0] for k, c in f.classnames().items() if c == "TTree"})


def _pick_tree(path, tree, names):
    if tree is not None:
        if tree not in names:
            raise KeyError(f"{path}: no TTree {tree!r}; trees in the file: {names}")
        return tree
    if len(names) == 1:
        return names[0]
    if "events" in names:
        return "events"
    raise KeyError(f"{path}: {len(names)} TTrees {names}; pass tree=... to choose one")


def check_finite(df, columns=None, path="table"):
    """Raise ValueError naming the first column (of ``columns``, default all numeric) holding NaN or inf."""
    columns = list(df.columns) if columns is None else list(columns)
    for c in columns:
        values = df[c]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        bad = ~np.isfinite(values.to_numpy(dtype=float))
        if bad.any():
            raise ValueError(f"{path}: column {c!r} has {int(bad.sum())} NaN/inf values (first at row "
                             f"{int(np.argmax(bad))})")


def read_table(path, tree=None, columns=None):
    """Read a flat table (.root TTree, .parquet, .csv, .h5) into a DataFrame.

    ``tree`` picks the TTree / HDF5 group (default: the only one, else ``events``). ``columns`` selects and orders
    columns. Raises FileNotFoundError for a missing file, KeyError naming missing columns, ValueError for NaN/inf
    in the requested numeric columns.
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
            raise KeyError(f"{path}: missing columns {missing}; available: {sorted(available)}")

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
            raise ValueError(f"{path}: branch {bad!r} of tree {name!r} is jagged; read_table reads flat trees only")
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


def write_table(df, path, tree="events", metadata=None):
    """Write a DataFrame by extension, atomically; ROOT as a flat TTree (``mktree`` + ``extend``).

    ``metadata`` (a JSON-serialisable dict) is stored beside the tree in ROOT files (see ``read_metadata``).
    Returns the path.
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


def write_root(path, trees, metadata=None, delphes_trees=()):
    """Write several TTrees to one ROOT file atomically.

    ``trees`` maps tree name -> {branch: numpy array or awkward array of records}; trees named in
    ``delphes_trees`` use Delphes branch names (``Jet.PT``, counter ``Jet_size``). ``metadata`` goes into the
    TObjString ``<tree>__metadata`` of every tree.
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


def read_metadata(path, tree=None):
    """The metadata dict stored with a ROOT table ({} when there is none)."""
    import uproot

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    name = _pick_tree(path, tree, root_tree_names(path))
    with uproot.open(path) as f:
        key = f"{name}__metadata"
        return json.loads(str(f[key])) if key in f else {}


def write_json(obj, path):
    """Write ``obj`` as JSON to ``path`` atomically (numpy scalars become floats)."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=1, default=float))
    return Path(path)


def markdown_table(df, index=False, floatfmt="{:.4g}"):
    """A DataFrame as a GitHub Markdown table (floats with ``floatfmt``; the index as first column if ``index``)."""
    def fmt(v):
        return floatfmt.format(v) if isinstance(v, (float, np.floating)) else str(v)

    cols = ([df.index.name or ""] if index else []) + [str(c) for c in df.columns]
    rows = [([str(i)] if index else []) + [fmt(v) for v in r] for i, r in zip(df.index, df.itertuples(index=False))]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"
