"""Reading and writing tables: ROOT (uproot TTrees and RNTuples), parquet, CSV, HDF5 — always atomically.

``read_table`` reads every branch, field or dataset into flat columns (fixed-size arrays as ``name_0, name_1, ...``,
records as ``name.field``) or refuses it naming the file, the table, the branch and its type; ``fingerprint`` and
``suspect_placeholders`` are the checks a run makes on its input.

ROOT tables are written as flat TTrees with ``mktree`` + ``extend`` (never RNTuple). String / categorical columns
are stored in ROOT as int32 codes plus a JSON TObjString ``<tree>__categories`` and decoded back on reading;
free-form metadata lives in the TObjString ``<tree>__metadata`` (see ``read_metadata``). HDF5 files hold one group
per table (default ``events``) with one dataset per column (h5py; PyTables is not needed); datasets at the root of
a file (CaloChallenge style) are read as the table ``/``. JSON is written strictly: NaN and inf become ``null``.

Generated events go out through one entry point, ``write_events(path, events)``, which picks the format from the
extension: event records (``EventRecord``: particles with ids, status, mothers, colours) as LHE through scikit-hep
``pylhe`` (``.lhe``, ``.lhe.gz``) or HepMC3 through ``pyhepmc`` (``.hepmc``, ``.hepmc3``), tables as above;
``read_events`` reads the records back. Both libraries are imported only when an event record is written or read
(extra ``gan4hep[events]``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Collection, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import InputError, MissingInput

__all__ = ["atomic_path", "read_table", "table_columns", "write_table", "write_json", "markdown_table",
           "read_metadata", "write_root", "root_tree_names", "check_finite", "fingerprint", "suspect_placeholders",
           "stale_partial_files", "SUFFIXES", "EventRecord", "write_events", "read_events", "EVENT_SUFFIXES"]

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


_PARTIAL = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp[^/]*$")


def stale_partial_files(folder: PathLike) -> list[Path]:
    """Temporary files in ``folder`` (not recursive) left by an ``atomic_path`` writer that was killed (``kill -9``,
    power loss) before its rename: their writing process no longer exists. The finished files they were to
    replace are intact; the partial files can be deleted.

    Returns:
        The stale temporary files, sorted (empty if ``folder`` does not exist).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = []
    for p in folder.iterdir():
        m = _PARTIAL.match(p.name)
        if not m or not p.is_file():
            continue
        pid = int(m.group("pid"))
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            stale.append(p)
        except PermissionError:  # another user's live process
            pass
    return sorted(stale)


def _suffix(path):
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"{path}: unsupported table format {suffix!r}; use one of {', '.join(SUFFIXES)}")
    return suffix


#: ROOT classes ``read_table`` reads as tables.
_ROOT_TABLES = ("TTree", "ROOT::RNTuple", "ROOT::Experimental::RNTuple")


def root_tree_names(path: PathLike) -> list[str]:
    """Names of the tables in a ROOT file, TTrees and RNTuples (without cycle numbers; inside a TDirectory as
    ``dir/name``), sorted.

    Raises:
        FileNotFoundError, OSError: from ``uproot.open`` (missing or unreadable file).
    """
    import uproot

    with uproot.open(path) as f:
        return sorted({k.split(";")[0] for k, c in f.classnames().items() if c in _ROOT_TABLES})


def _root_contents(f) -> str:
    """What a ROOT file holds, for error messages: ``TH1F 'h', TObjString 'note'`` (or ``nothing``)."""
    items = sorted({(c, k.split(";")[0]) for k, c in f.classnames().items()})
    return ", ".join(f"{c} {k!r}" for c, k in items[:20]) + (f" and {len(items) - 20} more" if len(items) > 20
                                                                else "") if items else "nothing"


def _pick_tree(path, tree, names, kind="TTree or RNTuple", contents=None):
    """The table to read: ``tree`` if given, else the only one, else ``events``; errors name the ``--tree`` option
    and list what the file holds."""
    holds = f"; the file holds: {contents}" if contents is not None else ""
    if tree is not None:
        if tree not in names:
            raise MissingInput(f"{path}: no {kind} {tree!r} (--tree); tables in the file: {names}{holds}")
        return tree
    if len(names) == 1:
        return names[0]
    if "events" in names:
        return "events"
    if not names:
        raise MissingInput(f"{path}: no table ({kind}) in the file{holds or '; the file is empty'}")
    raise MissingInput(f"{path}: {len(names)} tables ({kind}) {names} and none called 'events': choose one with "
                       f"--tree NAME (tree= in gan4hep.io.read_table)")


def check_finite(df: pd.DataFrame, columns: Iterable[str] | None = None, path: PathLike = "table") -> None:
    """Check that the numeric columns of ``df`` are finite; non-numeric and boolean columns are skipped.

    Args:
        df: the table.
        columns: the columns to check (default: all).
        path: the file name used in the error message.

    Raises:
        InputError (a ValueError): naming the first column holding NaN or inf, with the count and the first row.
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


# ---------------------------------------------------------------------------------------------------------------
# The columns of a file: every branch, field or dataset becomes one or more flat columns, or is refused by name
# ---------------------------------------------------------------------------------------------------------------
class _Refused(Exception):
    """A branch / field / dataset that cannot become a column (the argument says why)."""


@dataclasses.dataclass
class _Schema:
    """The columns a table offers: ``columns`` maps each column name to how the reader gets it (format-specific);
    ``branches`` maps each branch / field / dataset to its columns (several for a fixed-size array or a record);
    ``refused`` maps those that cannot become columns to the reason; ``what`` describes the table for messages."""

    what: str
    columns: dict[str, Any] = dataclasses.field(default_factory=dict)
    branches: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    refused: dict[str, str] = dataclasses.field(default_factory=dict)

    def add(self, branch: str, leaves: Sequence[tuple[str, Any]]) -> None:
        for column, how in leaves:
            if column in self.columns:
                raise InputError(f"{self.what}: column name {column!r} occurs twice (branch {branch!r} expands to "
                                 f"it, and another branch has it)")
            self.columns[column] = how
        self.branches[branch] = [c for c, _ in leaves]

    def resolve(self, want: Sequence[str] | None) -> list[str]:
        """The columns to read for ``want`` (None: all); a branch name stands for all its columns.

        Raises:
            MissingInput: names that are neither a column nor a branch (lists the available ones).
            InputError: a requested branch (or, reading all, any branch) that cannot become a column.
        """
        if want is None:
            if self.refused:
                why = next(iter(self.refused.values()))
                raise InputError(f"{self.what}: {why}; it cannot become a column, so the whole table cannot be "
                                 f"read: name the columns to read (--columns, columns= in read_table)")
            return list(self.columns)
        out, missing = [], []
        for name in want:
            if name in self.columns:
                out.append(name)
            elif name in self.branches:
                out.extend(self.branches[name])
            elif name in self.refused:
                raise InputError(f"{self.what}: {self.refused[name]}; it cannot become a column")
            else:
                missing.append(name)
        if missing:
            available = list(self.columns) + [f"{b} (not readable)" for b in self.refused]
            raise MissingInput(f"{self.what}: missing columns {missing}; available: {available}")
        return out


def _ak_leaves(column: str, typ, path: tuple = ()) -> list[tuple[str, tuple]]:
    """Flat columns of one awkward type: ``[(column name, (path of field names / fixed indices, kind))]``.

    Numbers and booleans are one column; a fixed-size array ``float[3]`` becomes ``name_0, name_1, name_2``
    (``name_i_j`` for ``[n][m]``); a record (struct) becomes ``name.field``; a string is one (str) column.

    Raises:
        _Refused: a jagged list, a union, complex numbers or an unknown type.
    """
    import awkward as ak

    T = ak.types
    optional = isinstance(typ, T.OptionType)
    if optional:
        typ = typ.content
    if typ.parameter("__array__") in ("string", "bytestring"):
        return [(column, (path, "string", optional))]
    if isinstance(typ, T.NumpyType):
        if typ.primitive.startswith("complex"):
            raise _Refused(f"complex numbers ({typ.primitive})")
        if typ.primitive.startswith(("datetime", "timedelta")):
            raise _Refused(f"a date or time ({typ.primitive})")
        return [(column, (path, typ.primitive, optional))]
    if isinstance(typ, T.RegularType):
        if typ.size == 0:
            raise _Refused("an array of size 0")
        return [leaf for i in range(typ.size) for leaf in _ak_leaves(f"{column}_{i}", typ.content, path + (i,))]
    if isinstance(typ, T.RecordType):
        return [leaf for f, c in zip(typ.fields, typ.contents) for leaf in _ak_leaves(f"{column}.{f}", c, path + (f,))]
    if isinstance(typ, T.ListType):
        raise _Refused("a variable number of values per event (jagged)")
    if isinstance(typ, T.UnionType):
        raise _Refused("a union of several types")
    raise _Refused("a type that is not a number, boolean, string, fixed-size array or record")


def _ak_column(array, how, what: str, column: str) -> np.ndarray:
    """One flat numpy column out of a branch's awkward array, following the path of ``_ak_leaves``."""
    import awkward as ak

    path, kind, optional = how
    x = array
    for p in path:
        x = x[p] if isinstance(p, str) else x[:, p]
    if optional:
        none = ak.to_numpy(ak.is_none(x, axis=0))
        if none.any():
            raise InputError(f"{what}: column {column!r} has {int(none.sum())} missing (None) values (first at row "
                             f"{int(np.argmax(none))})")
        x = ak.drop_none(x, axis=0)
    if kind == "string":
        return np.asarray(ak.to_list(x), dtype=object)
    return np.asarray(ak.to_numpy(x))


def _root_schema(f, path, name):
    """The ``_Schema`` of TTree / RNTuple ``name`` in the open ROOT file ``f``, and the table object."""
    t = f[name]
    kind = "RNTuple" if "RNTuple" in type(t).__name__ else "TTree"
    schema = _Schema(f"{path}: {kind} {name!r}")
    branches = list(t.keys(recursive=False))
    types: dict[str, Any] = {}
    try:
        probe = t.arrays(branches, entry_stop=0) if branches else {}
        types = {b: probe[b].type.content for b in branches}
    except Exception:  # noqa: BLE001 (one branch uproot cannot read, e.g. an unknown class: find which)
        for b in branches:
            try:
                types[b] = t.arrays([b], entry_stop=0)[b].type.content
            except Exception as err:  # noqa: BLE001 (uproot raises many kinds; the reason goes into the message)
                types[b] = err
    for b in branches:
        typ = types[b]
        typename = getattr(t[b], "typename", None) if kind == "TTree" else None
        if isinstance(typ, Exception):
            reason = str(typ).strip().splitlines()[0] if str(typ).strip() else ""
            schema.refused[b] = (f"branch {b!r} has type {typename or 'unknown'}, which uproot cannot read "
                                 f"({type(typ).__name__}: {reason})")
            continue
        try:
            schema.add(b, _ak_leaves(b, typ))
        except _Refused as why:
            shown = f"{typename} (awkward: {typ})" if typename else str(typ)
            schema.refused[b] = f"branch {b!r} has type {shown}: {why}"
    return schema, t


def _read_root(path, tree, want):
    import uproot

    with uproot.open(path) as f:
        names = sorted({k.split(";")[0] for k, c in f.classnames().items() if c in _ROOT_TABLES})
        name = _pick_tree(path, tree, names, contents=_root_contents(f))
        schema, t = _root_schema(f, path, name)
        columns = schema.resolve(want)
        wanted = set(columns)
        branches = [b for b, cols in schema.branches.items() if wanted.intersection(cols)]
        try:
            arrays = t.arrays(branches) if branches else None
        except Exception as err:  # noqa: BLE001
            raise InputError(f"{schema.what}: uproot cannot read branches {branches}: {type(err).__name__}: "
                             f"{str(err).splitlines()[0] if str(err) else ''}") from None
        owner = {c: b for b, cols in schema.branches.items() for c in cols}
        data = {c: _ak_column(arrays[owner[c]], schema.columns[c], schema.what, c) for c in columns}
        cats_key = f"{name}__categories"
        cats = json.loads(str(f[cats_key])) if cats_key in f else {}
    n = t.num_entries
    df = pd.DataFrame(data, index=pd.RangeIndex(n)) if data else pd.DataFrame(index=pd.RangeIndex(n))
    for col, labels in cats.items():
        if col in df:
            df[col] = pd.Categorical.from_codes(df[col].to_numpy(), categories=labels)
    return df, columns


def _arrow_leaves(column, typ, path=()):
    """Flat columns of one Arrow type, as ``_ak_leaves`` (fixed-size lists -> ``name_i``, structs ->
    ``name.field``)."""
    import pyarrow as pa

    if pa.types.is_fixed_size_list(typ):
        if typ.list_size == 0:
            raise _Refused("a list of size 0")
        return [leaf for i in range(typ.list_size)
                for leaf in _arrow_leaves(f"{column}_{i}", typ.value_type, path + (i,))]
    if pa.types.is_struct(typ):
        return [leaf for i in range(typ.num_fields)
                for leaf in _arrow_leaves(f"{column}.{typ.field(i).name}", typ.field(i).type,
                                          path + (typ.field(i).name,))]
    if pa.types.is_list(typ) or pa.types.is_large_list(typ) or getattr(pa.types, "is_list_view",
                                                                            lambda t: False)(typ):
        raise _Refused("a variable number of values per event (jagged)")
    if pa.types.is_map(typ) or pa.types.is_union(typ):
        raise _Refused("a map or union")
    return [(column, path)]


def _read_parquet(path, want):
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pq.read_schema(path)
    schema = _Schema(f"{path}")
    for field in arrow:
        try:
            schema.add(field.name, _arrow_leaves(field.name, field.type))
        except _Refused as why:
            schema.refused[field.name] = f"column {field.name!r} has type {field.type}: {why}"
    columns = schema.resolve(want)
    plain = all(schema.columns[c] == () for c in columns)
    if plain:  # the common case: pandas' own conversion (categories, nullable types)
        return pd.read_parquet(path, columns=columns), columns
    owner = {c: b for b, cols in schema.branches.items() for c in cols}
    table = pq.read_table(path, columns=list(dict.fromkeys(owner[c] for c in columns)))
    data = {}
    for c in columns:
        x = table.column(owner[c]).combine_chunks()
        for p in schema.columns[c]:
            if x.null_count:
                raise InputError(f"{path}: column {owner[c]!r} has {x.null_count} missing (null) values")
            if isinstance(p, str):
                x = x.field(p)
            else:
                size = x.type.list_size
                x = x.flatten().take(pa.array(np.arange(len(x)) * size + p))
        data[c] = x.to_pandas()
    return pd.DataFrame(data), columns


def _h5_tables(f) -> dict[str, Any]:
    """Every group of an HDF5 file that holds at least one dataset with a row axis, by name (the root is ``/``)."""
    import h5py

    found = {}

    def visit(name, group):
        if any(isinstance(v, h5py.Dataset) and v.ndim >= 1 for v in group.values()) or "pandas_type" in group.attrs:
            found[name] = group
        for k, v in group.items():
            if isinstance(v, h5py.Group) and "pandas_type" not in group.attrs:
                visit(f"{name.rstrip('/')}/{k}".lstrip("/") or "/", v)

    visit("/", f)
    return found


def _h5_contents(f) -> str:
    import h5py

    items = []
    f.visititems(lambda k, v: items.append(f"dataset {k!r} {v.shape} {v.dtype}" if isinstance(v, h5py.Dataset)
                                           else f"group {k!r}") if len(items) < 20 else None)
    return ", ".join(items) or "nothing"


def _h5_leaves(name, ds):
    """Flat columns of one HDF5 dataset: ``(n,)`` and ``(n, 1)`` are one column, ``(n, k, ...)`` becomes
    ``name_i[_j...]``, a compound dtype ``name.field``."""
    import h5py

    if ds.ndim == 0:
        return []
    if h5py.check_string_dtype(ds.dtype) is None and h5py.check_vlen_dtype(ds.dtype) is not None:
        raise _Refused(f"variable-length arrays ({h5py.check_vlen_dtype(ds.dtype)}): a variable number of "
                       "values per event (jagged)")
    if ds.dtype.kind in "OVcmM" and h5py.check_string_dtype(ds.dtype) is None and ds.dtype.names is None:
        raise _Refused(f"dtype {ds.dtype}, not numbers, booleans or strings")

    def cells(prefix, shape, extra):
        if not shape or shape == (1,):
            return [(prefix, extra)]
        return [leaf for i in range(shape[0]) for leaf in cells(f"{prefix}_{i}", shape[1:], extra + (i,))]

    if ds.dtype.names:
        out = []
        for field in ds.dtype.names:
            sub = ds.dtype[field]
            if sub.kind in "OVcmM" and sub.subdtype is None:
                raise _Refused(f"field {field!r} of dtype {sub}")
            shape = tuple(ds.shape[1:]) + (sub.shape if sub.subdtype is not None else ())
            out += [(c, (field, idx)) for c, idx in cells(f"{name}.{field}", shape, ())]
        return out
    return [(c, (None, idx)) for c, idx in cells(name, tuple(ds.shape[1:]), ())]


def _read_hdf5(path, tree, want, schema_only=False):
    import h5py

    with h5py.File(path, "r") as f:
        tables = _h5_tables(f)
        name = _pick_tree(path, tree if tree not in ("", "/") else ("/" if tree else None), sorted(tables),
                          kind="HDF5 group with datasets", contents=_h5_contents(f))
        g = tables[name]
        what = f"{path}: HDF5 {'root' if name == '/' else 'group ' + repr(name)}"
        if "pandas_type" in g.attrs:
            raise InputError(f"{what} was written by pandas.to_hdf (PyTables layout): read it with pandas.read_hdf "
                             f"and write it as parquet (or as plain datasets with gan4hep.io.write_table)")
        schema = _Schema(what)
        order = [str(c) for c in g.attrs["columns"]] if "columns" in g.attrs else list(g.keys())
        for k in order:
            ds = g.get(k)
            if not isinstance(ds, h5py.Dataset):
                continue
            try:
                leaves = _h5_leaves(k, ds)
            except _Refused as why:
                schema.refused[k] = f"dataset {k!r} of shape {ds.shape} has {why}"
                continue
            if leaves:
                schema.add(k, leaves)
        columns = schema.resolve(want)
        if schema_only:
            return None, columns
        owner = {c: b for b, cols in schema.branches.items() for c in cols}
        rows = {owner[c]: g[owner[c]].shape[0] for c in columns}
        if len(set(rows.values())) > 1:
            counts = ", ".join(f"{k} {v}" for k, v in rows.items())
            raise InputError(f"{what}: datasets have different numbers of rows ({counts}); a table needs one row per "
                             "event in every dataset")
        cache, data = {}, {}
        for c in columns:
            ds = g[owner[c]]
            if owner[c] not in cache:
                cache[owner[c]] = ds.asstr()[()] if h5py.check_string_dtype(ds.dtype) is not None else ds[()]
            field, idx = schema.columns[c]
            v = cache[owner[c]]
            v = v[field] if field is not None else v
            v = v.reshape(len(v), -1)[:, 0] if idx == () and v.ndim > 1 else v[(slice(None), *idx)] if idx else v
            if v.dtype.kind == "S":
                v = v.astype(str)
            elif v.dtype.kind == "O":
                v = np.asarray([x.decode() if isinstance(x, bytes) else x for x in v], dtype=object)
            data[c] = v
    return pd.DataFrame(data), columns


def read_table(path: PathLike, tree: str | None = None, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a table (.root TTree or RNTuple, .parquet, .csv, .h5/.hdf5) into a flat DataFrame, one row per event.

    Every branch, field or dataset becomes columns, or is refused by name:

    - numbers and booleans: one column of their own dtype (``int32`` stays ``int32``, ``bool`` stays ``bool``);
    - fixed-size arrays (ROOT ``float p3[3]``, an RNTuple ``std::array``, an Arrow fixed-size list, an HDF5 dataset
      of shape ``(n, 3)``): one column per element, ``p3_0, p3_1, p3_2`` (``m_i_j`` for ``[n][m]``); an HDF5
      dataset of shape ``(n, 1)`` is the single column ``name``;
    - records / structs (an RNTuple struct field, an Arrow struct, an HDF5 compound dtype): ``name.field``;
    - strings: ``str`` columns (ROOT columns written by ``write_table`` as codes come back as ``pd.Categorical``);
    - jagged lists, unions, complex numbers, classes uproot cannot read: ``InputError`` naming the file, the table,
      the branch and its type. Such a branch only stops the read if it is requested, or if all columns are.

    In ``columns``, the name of an array or record branch stands for all its columns (``p3`` -> ``p3_0..p3_2``).

    Args:
        path: the file; the format is chosen by its extension (one of ``SUFFIXES``).
        tree: the TTree / RNTuple (ROOT; ``dir/name`` inside a TDirectory) or group (HDF5; ``/`` for datasets at
            the file's root) to read; default: the only one, else ``events``. Ignored for parquet and CSV.
        columns: the columns (or branches) to read, in this order (default: all, in file order).

    Returns:
        A DataFrame of shape ``(n_events, n_columns)``. Units are those of the file.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        InputError (a ValueError): unsupported extension; a requested branch that cannot become a column (names
            file, table, branch and type); missing (None/null) values in a branch; datasets of one HDF5 group with
            different numbers of rows; NaN/inf in a requested numeric column (see ``check_finite``).
        MissingInput (a KeyError): the named ``tree`` is absent, several tables and none called ``events``, or no
            table at all (the message lists what the file holds); missing ``columns`` (lists the available ones).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    suffix = _suffix(path)
    want = None if columns is None else list(columns)
    if suffix == ".root":
        df, names = _read_root(path, tree, want)
    elif suffix == ".parquet":
        df, names = _read_parquet(path, want)
    elif suffix == ".csv":
        available = list(pd.read_csv(path, nrows=0).columns)
        schema = _Schema(str(path))
        for c in available:
            schema.add(c, [(c, None)])
        names = schema.resolve(want)
        df = pd.read_csv(path, usecols=names)[names]
    else:
        df, names = _read_hdf5(path, tree, want)
    check_finite(df, names if want is not None else None, path)
    return df


def table_columns(path: PathLike, columns: Sequence[str] | None = None, tree: str | None = None) -> list[str]:
    """The column names ``read_table(path, tree, columns)`` returns, with branch names expanded (``p3`` ->
    ``p3_0, p3_1, p3_2``); reads the file's schema (types and shapes), not its events.

    Raises:
        as ``read_table``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    suffix = _suffix(path)
    want = None if columns is None else list(columns)
    if suffix == ".csv":
        available = list(pd.read_csv(path, nrows=0).columns)
        schema = _Schema(str(path))
        for c in available:
            schema.add(c, [(c, None)])
        return schema.resolve(want)
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        schema = _Schema(str(path))
        for field in pq.read_schema(path):
            try:
                schema.add(field.name, _arrow_leaves(field.name, field.type))
            except _Refused as why:
                schema.refused[field.name] = f"column {field.name!r} has type {field.type}: {why}"
        return schema.resolve(want)
    if suffix == ".root":
        import uproot

        with uproot.open(path) as f:
            names = sorted({k.split(";")[0] for k, c in f.classnames().items() if c in _ROOT_TABLES})
            name = _pick_tree(path, tree, names, contents=_root_contents(f))
            return _root_schema(f, path, name)[0].resolve(want)
    return list(_read_hdf5(path, tree, want, schema_only=True)[1])


def fingerprint(path: PathLike) -> dict[str, Any]:
    """What identifies an input file's content: ``{"path": absolute path, "size": bytes, "sha256": hex digest}``.

    Reads the whole file (about 1 s per GB).

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return {"path": str(path.resolve()), "size": path.stat().st_size, "sha256": digest.hexdigest()}


def suspect_placeholders(df: pd.DataFrame, columns: Iterable[str] | None = None, min_fraction: float = 0.01,
                         ) -> list[dict[str, Any]]:
    """Values that look like placeholders for undefined quantities (-999 in HiggsML-style ntuples).

    A value is suspect when it is held by at least ``min_fraction`` of the events of a numeric column and lies
    outside the range of the column's other values by more than their central 98 % spread (1st to 99th
    percentile). A pile of events at the physical edge of a distribution (pT = 0, njets = 0) is not suspect.

    Args:
        df: the table ``(n_events, n_columns)``.
        columns: the columns to look at (default: all numeric, non-boolean ones).
        min_fraction: the smallest fraction of events at one value that is reported.

    Returns:
        One dict per suspect column: ``column``, ``value``, ``count``, ``fraction`` and ``others`` (the
        ``[min, max]`` of the remaining values), in column order.
    """
    found = []
    for c in (df.columns if columns is None else columns):
        s = df[c]
        if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s) or len(s) == 0:
            continue
        x = s.to_numpy(dtype=np.float64)
        x = x[np.isfinite(x)]
        if x.size == 0:
            continue
        values, counts = np.unique(x, return_counts=True)
        for i in np.argsort(-counts):
            if counts[i] < min_fraction * x.size:
                break
            v = values[i]
            rest = x[x != v]
            if rest.size == 0:
                break
            lo, hi = np.quantile(rest, [0.01, 0.99])
            spread = max(hi - lo, np.finfo(float).tiny)
            gap = rest.min() - v if v < rest.min() else v - rest.max() if v > rest.max() else -1.0
            if gap > spread:
                found.append({"column": str(c), "value": float(v), "count": int(counts[i]),
                              "fraction": float(counts[i] / x.size),
                              "others": [float(rest.min()), float(rest.max())]})
                break
    return found


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


def _strict(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, inf; numpy scalars included) replaced by None."""
    if isinstance(obj, Mapping):
        return {k: _strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _strict(obj.tolist())
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def write_json(obj: Any, path: PathLike) -> Path:
    """Write ``obj`` as strict JSON (indent 1) to ``path`` atomically; returns ``Path(path)``.

    NaN and inf (which strict JSON readers refuse) are written as ``null``: say why next to the value if it
    matters. numpy scalars and arrays become numbers and lists; other objects JSON cannot encode are passed through
    ``float``.

    Raises:
        TypeError, ValueError: an object that is neither JSON-serialisable nor convertible by ``float``.
    """
    text = json.dumps(_strict(obj), indent=1, default=lambda o: _strict(float(o)), allow_nan=False)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
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


# ---------------------------------------------------------------------------------------------------------------
# Event records: LHE (scikit-hep pylhe) and HepMC3 (pyhepmc) beside the tables above, behind one entry point
# ---------------------------------------------------------------------------------------------------------------
#: Extensions ``write_events`` / ``read_events`` understand as event records (matched case-insensitively).
EVENT_SUFFIXES = (".lhe", ".lhe.gz", ".hepmc", ".hepmc3")

#: LHE status code -> HepMC3 status code: incoming (-1) -> 4 (beam / incoming), intermediate (2) -> 2 (decayed),
#: outgoing (1) -> 1; other codes are written as they are.
_HEPMC_STATUS = {-1: 4, 2: 2, 1: 1}


@dataclasses.dataclass(frozen=True, eq=False)
class EventRecord:
    """Events with the same particle content each (what a generative model emits), in the LHE conventions.

    Per-particle fields may be given once for all events (shape ``(k, ...)``) or per event (``(n, k, ...)``);
    ``arrays()`` broadcasts them. Indices are those of LHE: 1-based within the event, 0 = none.

    Attributes:
        momenta: ``(n, k, 4)`` float: ``px, py, pz, E`` of each particle in GeV.
        pid: ``(k,)`` or ``(n, k)`` int: PDG particle ids.
        status: ``(k,)`` or ``(n, k)`` int: LHE status, -1 incoming, 1 outgoing (final), 2 intermediate resonance.
        mothers: ``(k, 2)`` or ``(n, k, 2)`` int: first and last mother (1-based; 0 0: none). Default: none.
        colors: ``(k, 2)`` or ``(n, k, 2)`` int: colour and anticolour line tags (0: none). Default: none.
        masses: ``(n, k)`` float GeV; default ``sqrt(max(E^2 - p^2, 0))`` from ``momenta``.
        weights: ``(n,)`` event weights; default 1.
        scales: ``(n,)`` factorisation / shower starting scale in GeV (LHE SCALUP); default the invariant mass of
            the outgoing (status 1) particles.
    """

    momenta: np.ndarray
    pid: np.ndarray
    status: np.ndarray
    mothers: np.ndarray | None = None
    colors: np.ndarray | None = None
    masses: np.ndarray | None = None
    weights: np.ndarray | None = None
    scales: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.momenta)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every field as a full per-event array: ``momenta (n, k, 4)``, ``pid``, ``status`` ``(n, k)``,
        ``mothers``, ``colors`` ``(n, k, 2)``, ``masses (n, k)``, ``weights``, ``scales`` ``(n,)``.

        Raises:
            InputError: a field whose shape does not fit ``momenta``, or non-finite momenta.
        """
        p = np.asarray(self.momenta, dtype=np.float64)
        if p.ndim != 3 or p.shape[2] != 4:
            raise InputError(f"EventRecord: momenta must have shape (events, particles, 4), got {p.shape}")
        if not np.isfinite(p).all():
            bad = int(np.argmax(~np.isfinite(p).all(axis=(1, 2))))
            raise InputError(f"EventRecord: momenta hold NaN/inf values (first in event {bad})")
        n, k = p.shape[:2]

        def full(name, value, tail, dtype, default):
            v = np.asarray(default if value is None else value, dtype=dtype)
            for shape in ((k, *tail), (n, k, *tail)):
                if v.shape == shape:
                    return np.broadcast_to(v, (n, k, *tail))
            raise InputError(f"EventRecord: {name} must have shape {(k, *tail)} or {(n, k, *tail)}, got {v.shape}")

        out = {"momenta": p, "pid": full("pid", self.pid, (), np.int64, None),
               "status": full("status", self.status, (), np.int64, None),
               "mothers": full("mothers", self.mothers, (2,), np.int64, np.zeros((k, 2))),
               "colors": full("colors", self.colors, (2,), np.int64, np.zeros((k, 2)))}
        m2 = p[..., 3] ** 2 - (p[..., :3] ** 2).sum(-1)
        out["masses"] = full("masses", self.masses, (), np.float64, np.sqrt(np.maximum(m2, 0.0)))
        out["weights"] = np.ones(n) if self.weights is None else np.asarray(self.weights, dtype=np.float64)
        if self.scales is None:
            final = p * (out["status"] == 1)[..., None]
            tot = final.sum(axis=1)
            out["scales"] = np.sqrt(np.maximum(tot[:, 3] ** 2 - (tot[:, :3] ** 2).sum(-1), 0.0))
        else:
            out["scales"] = np.asarray(self.scales, dtype=np.float64)
        for name in ("weights", "scales"):
            if out[name].shape != (n,):
                raise InputError(f"EventRecord: {name} must have shape ({n},), got {out[name].shape}")
        return out

    def to_frame(self) -> pd.DataFrame:
        """A flat table of the momenta: columns ``p{i}_px, p{i}_py, p{i}_pz, p{i}_E`` for particle ``i`` (GeV),
        ``(n, 4 k)``; ids and status are not columns (see ``write_events``, which stores them as metadata)."""
        p = np.asarray(self.momenta, dtype=np.float64)
        cols = [f"p{i}_{c}" for i in range(p.shape[1]) for c in ("px", "py", "pz", "E")]
        return pd.DataFrame(p.reshape(len(p), -1), columns=cols)


def _event_suffix(path) -> str | None:
    """The event-record extension of ``path`` (``EVENT_SUFFIXES``), or None for anything else."""
    name = Path(path).name.lower()
    return next((s for s in EVENT_SUFFIXES if name.endswith(s)), None)


def write_events(path: PathLike, events: "pd.DataFrame | EventRecord", *, tree: str = "events",
                 metadata: Mapping[str, Any] | None = None, beams: tuple[int, int] = (2212, 2212),
                 beam_energies: tuple[float, float] = (6500.0, 6500.0), cross_section_pb: float = 1.0,
                 cross_section_error_pb: float = 0.0, process_id: int = 1, comment: str | None = None) -> Path:
    """Write generated events, the format picked from the extension of ``path``, atomically.

    - ``.lhe`` / ``.lhe.gz``: Les Houches Event file 3.0 through scikit-hep ``pylhe`` (parton-level events with
      their decay chain and colour flow; showered by e.g. Pythia 8 with ``Beams:frameType = 4``).
    - ``.hepmc`` / ``.hepmc3``: HepMC3 ASCII through ``pyhepmc`` (particle-level events; LHE status -1 / 2 / 1 are
      written as HepMC 4 / 2 / 1, mothers as production vertices).
    - ``.root`` / ``.parquet`` / ``.csv`` / ``.h5``: a flat table through ``write_table`` (an ``EventRecord``
      becomes its ``to_frame()`` columns, with ``pid`` and ``status`` stored in ``metadata``).

    Args:
        path: the output file.
        events: a table (table formats only) or an ``EventRecord`` (any format).
        tree: TTree (ROOT) / group (HDF5) name of a table.
        metadata: JSON-serialisable run information: stored beside a ROOT table, in the LHE header as a
            ``<gan4hep>`` JSON block, as HepMC run attributes.
        beams, beam_energies: PDG ids and energies in GeV of the two beams (LHE ``<init>``; HepMC run info).
        cross_section_pb, cross_section_error_pb, process_id: the process line of the LHE ``<init>`` block (and the
            HepMC cross section).
        comment: an XML comment at the top of an LHE file.

    Returns:
        ``Path(path)``.

    Raises:
        InputError: an extension that is neither an event record nor a table, a table given for an event-record
            format, or an ``EventRecord`` whose fields do not fit together (see ``EventRecord.arrays``).
    """
    path = Path(path)
    kind = _event_suffix(path)
    if kind is None:
        if Path(path).suffix.lower() not in SUFFIXES:
            raise InputError(f"{path}: unsupported event format {Path(path).suffix!r}; use one of "
                             f"{', '.join(EVENT_SUFFIXES + SUFFIXES)}")
        if isinstance(events, EventRecord):
            a = events.arrays()
            metadata = {**(metadata or {}), "pid": a["pid"][0].tolist(), "status": a["status"][0].tolist()}
            events = events.to_frame()
        return write_table(events, path, tree=tree, metadata=metadata)
    if not isinstance(events, EventRecord):
        raise InputError(f"{path}: {kind} needs particles (gan4hep.io.EventRecord: momenta, ids, status), not a "
                         f"flat table of {type(events).__name__}")
    arrays = events.arrays()
    with atomic_path(path) as tmp:
        if kind.startswith(".lhe"):
            _write_lhe(tmp, arrays, kind, metadata, beams, beam_energies, cross_section_pb, cross_section_error_pb,
                       process_id, comment)
        else:
            _write_hepmc(tmp, arrays, metadata, beams, beam_energies, cross_section_pb, cross_section_error_pb)
    return path


#: Particle line of the LHE files we write: pylhe's layout with 11 significant digits (pylhe's default has 9),
#: so momenta round-trip to ~1e-11 relative.
_LHE_PARTICLE = ("{id:9d} {status:2d} {mother1:4d} {mother2:4d} {color1:4d} {color2:4d} {px: .10e} {py: .10e} "
                 "{pz: .10e} {e: .10e} {m: .10e} {lifetime: .4e} {spin: .4e}")


def _write_lhe(tmp, a, kind, metadata, beams, energies, xsec, xerr, process_id, comment) -> None:
    """Write the arrays of an ``EventRecord`` as LHE 3.0 with ``pylhe`` (gzip for ``.lhe.gz``)."""
    import xml.etree.ElementTree as ET

    import pylhe

    fmt = dataclasses.replace(pylhe.DEFAULT_FORMAT, particle=_LHE_PARTICLE, compress=kind == ".lhe.gz")
    init = pylhe.LHEInit(
        initInfo=pylhe.LHEInitInfo(beamA=int(beams[0]), beamB=int(beams[1]), energyA=float(energies[0]),
                                   energyB=float(energies[1]), PDFgroupA=0, PDFgroupB=0, PDFsetA=0, PDFsetB=0,
                                   weightingStrategy=3, numProcesses=1),
        procInfo=[pylhe.LHEProcInfo(xSection=float(xsec), error=float(xerr), unitWeight=1.0,
                                    procId=int(process_id))],
        generators=[pylhe.LHEGenerator(name="gan4hep", version=_version(), description="generative network")])
    header = None
    if metadata is not None:
        element = ET.Element("gan4hep")
        element.text = json.dumps(_strict(metadata), sort_keys=True)
        header = pylhe.LHEHeader(initrwgt=pylhe.LHEInitRWGT(), extra_elements=[element])

    p, masses = a["momenta"], a["masses"]
    pid, status, mothers, colors = (a[k].tolist() for k in ("pid", "status", "mothers", "colors"))
    k = p.shape[1]

    def lhe_events():
        for i in range(len(p)):
            particles = [pylhe.LHEParticle(id=pid[i][j], status=status[i][j], mother1=mothers[i][j][0],
                                           mother2=mothers[i][j][1], color1=colors[i][j][0], color2=colors[i][j][1],
                                           px=float(p[i, j, 0]), py=float(p[i, j, 1]), pz=float(p[i, j, 2]),
                                           e=float(p[i, j, 3]), m=float(masses[i, j]), lifetime=0.0, spin=9.0)
                         for j in range(k)]
            info = pylhe.LHEEventInfo(nparticles=k, pid=int(process_id), weight=float(a["weights"][i]),
                                      scale=float(a["scales"][i]), aqed=-1.0, aqcd=-1.0)
            yield pylhe.LHEEvent(eventinfo=info, particles=particles)

    lhef = pylhe.LesHouchesEvents(init=init, events=lhe_events(), header=header, comment=comment)
    lhef.tofile(tmp, lheformat=fmt)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("gan4hep")
    except Exception:  # noqa: BLE001 (not installed: a source checkout)
        return "unknown"


def _write_hepmc(tmp, a, metadata, beams, energies, xsec, xerr) -> None:
    """Write the arrays of an ``EventRecord`` as HepMC3 ASCII with ``pyhepmc``."""
    import pyhepmc

    run = pyhepmc.GenRunInfo()
    run.tools = [pyhepmc.GenRunInfo.ToolInfo("gan4hep", _version(), "generative network")]
    if metadata is not None:
        run.attributes["gan4hep"] = json.dumps(_strict(metadata), sort_keys=True)
    run.attributes["beams"] = json.dumps({"pid": [int(b) for b in beams], "energy_gev": [float(e) for e in energies]})
    p, m = a["momenta"], a["masses"]
    status = np.vectorize(lambda s: _HEPMC_STATUS.get(int(s), int(s)), otypes=[np.int32])(a["status"])
    parents = a["mothers"] - 1  # 1-based, 0 = none -> 0-based, -1 = none
    with pyhepmc.open(tmp, "w") as f:
        for i in range(len(p)):
            event = pyhepmc.GenEvent(pyhepmc.Units.GEV, pyhepmc.Units.MM)
            event.run_info = run
            event.from_hepevt(event_number=i, px=p[i, :, 0], py=p[i, :, 1], pz=p[i, :, 2], en=p[i, :, 3], m=m[i],
                              pid=a["pid"][i].astype(np.int32), status=status[i],
                              parents=np.ascontiguousarray(parents[i], dtype=np.int32), fortran=False)
            event.weights = [float(a["weights"][i])]
            cs = pyhepmc.GenCrossSection()
            cs.set_cross_section(float(xsec), float(xerr))
            event.cross_section = cs
            f.write(event)


def read_events(path: PathLike) -> EventRecord:
    """Read an LHE (``pylhe``) or HepMC3 (``pyhepmc``) file written by ``write_events`` (or any with the same
    particle content in every event) back into an ``EventRecord``.

    HepMC status codes are mapped back to LHE (4 -> -1); colours are not stored in HepMC and come back as 0.

    Raises:
        FileNotFoundError: no file at ``path``.
        InputError: an extension that is not an event record, an empty file, or events with different particle
            content (a showered file: read it with pyhepmc itself).
    """
    path = Path(path)
    kind = _event_suffix(path)
    if kind is None:
        raise InputError(f"{path}: not an event record; use one of {', '.join(EVENT_SUFFIXES)} (tables: read_table)")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    rows = _read_lhe(path) if kind.startswith(".lhe") else _read_hepmc(path)
    if not rows:
        raise InputError(f"{path}: no events")
    first = rows[0]["pid"]
    for i, r in enumerate(rows):
        if r["pid"] != first:
            raise InputError(f"{path}: event {i} has particles {r['pid']}, event 0 {first}: read_events needs the "
                             "same particle content in every event")
    stack = {key: np.array([r[key] for r in rows]) for key in rows[0]}
    return EventRecord(momenta=stack["momenta"], pid=stack["pid"], status=stack["status"],
                       mothers=stack["mothers"], colors=stack["colors"], masses=stack["masses"],
                       weights=stack["weights"], scales=stack["scales"])


def _read_lhe(path) -> list[dict]:
    import pylhe

    rows = []
    for event in pylhe.LesHouchesEvents.fromfile(path).events:
        ps = event.particles
        rows.append({"momenta": [[q.px, q.py, q.pz, q.e] for q in ps], "pid": [int(q.id) for q in ps],
                     "status": [int(q.status) for q in ps], "mothers": [[int(q.mother1), int(q.mother2)] for q in ps],
                     "colors": [[int(q.color1), int(q.color2)] for q in ps], "masses": [q.m for q in ps],
                     "weights": event.eventinfo.weight, "scales": event.eventinfo.scale})
    return rows


def _read_hepmc(path) -> list[dict]:
    import pyhepmc

    back = {v: k for k, v in _HEPMC_STATUS.items()}
    rows = []
    with pyhepmc.open(path) as f:
        for event in f:
            ps = event.particles
            mothers = []
            for q in ps:
                ids = [] if q.production_vertex is None else [m.id for m in q.production_vertex.particles_in]
                mothers.append([min(ids), max(ids)] if ids else [0, 0])
            rows.append({"momenta": [[q.momentum.px, q.momentum.py, q.momentum.pz, q.momentum.e] for q in ps],
                         "pid": [int(q.pid) for q in ps], "status": [back.get(int(q.status), int(q.status))
                                                                      for q in ps],
                         "mothers": mothers, "colors": [[0, 0] for _ in ps],
                         "masses": [q.generated_mass for q in ps],
                         "weights": event.weights[0] if len(event.weights) else 1.0, "scales": -1.0})
    return rows
