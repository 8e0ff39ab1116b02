"""Concatenate samples in block order, streaming: the outputs of batch jobs (``--job-index/--n-jobs``) into one
sample, and (``assemble``) the part files of one run into its output.

    python -m data_prep.merge --out samples/dilepton.root part0.root part1.root ...

Each part FILE.root comes with FILE_features.root. When every part carries a manifest in its metadata (samples
made by this version), the blocks of all parts are written in global block order whatever the order of the parts
on the command line, so a sample split over any number of jobs merges into exactly the sample of a single run;
a block present in two parts is an error. Parts without a manifest are concatenated in the order given. The
output is written a few blocks at a time (never the whole sample in memory), atomically, and its metadata is
recomputed from the manifests (``data_prep.<sample>._summarize``) or, without them, summed.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import awkward as ak
import numpy as np

from gan4hep import io
from data_prep import runner

__all__ = ["Piece", "assemble", "merge", "main"]

FEATURES_TREE = "events"


@dataclasses.dataclass(frozen=True)
class Piece:
    """A slice of a sample: entries ``[start, stop)`` of every tree of ``sample`` (per tree name; None: all) and
    rows ``[rows[0], rows[1])`` of its feature table ``features`` (None: all)."""

    sample: Path
    features: Path
    ranges: Mapping[str, tuple[int, int]] | None = None
    rows: tuple[int, int] | None = None
    block: int | None = None


def _read_tree(path, name, start=None, stop=None):
    """Entries [start, stop) of tree ``name``: numpy branches and awkward records (Delphes ``Coll.Field``
    branches zipped back per collection); returns (branches, has_records)."""
    import uproot

    with uproot.open(path) as f:
        t = f[name]
        keys = [k for k in t.keys() if not k.endswith("_size")]
        arrays = t.arrays(keys, library="ak", entry_start=start, entry_stop=stop)
    out, colls = {}, {}
    for k in keys:
        if "." in k:
            coll, field = k.split(".", 1)
            colls.setdefault(coll, {})[field] = arrays[k]
        else:
            out[k] = ak.to_numpy(arrays[k])
    out.update({c: ak.zip(v) for c, v in colls.items()})
    return out, bool(colls)


def _length(branches):
    return len(next(iter(branches.values()))) if branches else 0


class _TreeWriter:
    """Writes one TTree of an open uproot file from chunks, buffering up to ``flush_entries`` entries."""

    def __init__(self, file, name, delphes, flush_entries):
        self.file, self.name, self.delphes, self.flush_entries = file, name, delphes, flush_entries
        self.tree, self.types, self.buffer, self.n, self.template = None, None, [], 0, None

    def add(self, branches):
        if self.template is None or (_length(self.template) == 0 and _length(branches) > 0):
            self.template = branches
        if _length(branches):
            self.buffer.append(branches)
            self.n += _length(branches)
        if self.n >= self.flush_entries:
            self.flush()

    def _create(self):
        self.types = {k: v.type.content if isinstance(v, ak.Array) else np.asarray(v).dtype
                      for k, v in self.template.items()}
        kwargs = {}
        if self.delphes:
            kwargs = dict(counter_name=lambda c: c + "_size", field_name=lambda outer, inner: f"{outer}.{inner}")
        self.tree = self.file.mktree(self.name, self.types, **kwargs)

    def flush(self):
        if self.tree is None and self.template is not None:
            self._create()
        if not self.buffer:
            return
        merged = {}
        for k, t in self.types.items():
            vals = [b[k] for b in self.buffer]
            if isinstance(t, np.dtype):
                merged[k] = np.concatenate([np.asarray(v, dtype=t) for v in vals])
            else:
                merged[k] = ak.concatenate(vals) if len(vals) > 1 else vals[0]
        self.tree.extend(merged)
        self.buffer, self.n = [], 0


def _read_features(path, start=None, stop=None):
    """Rows [start, stop) of a feature table as raw branches (categorical columns as int32 codes) + labels."""
    import uproot

    with uproot.open(path) as f:
        t = f[FEATURES_TREE]
        arrays = t.arrays(list(t.keys()), library="np", entry_start=start, entry_stop=stop)
        key = f"{FEATURES_TREE}__categories"
        cats = json.loads(str(f[key])) if key in f else {}
    return {k: arrays[k] for k in t.keys()}, cats


def assemble(pieces: Sequence[Piece], out, metadata: Mapping[str, Any], flush_entries: int = 100_000) -> Path:
    """Write the concatenation of ``pieces`` (in the order given) to ``out`` (every tree of the first piece's
    sample file) and to its feature table FILE_features.root, streaming.

    At most ``flush_entries`` entries per tree (plus one piece) are held in memory. Categorical columns of the
    feature table are re-coded onto one label list (the union, in order of first appearance). Both files are
    written atomically, the feature table last; ``metadata`` (JSON-able) is stored with every tree.

    Returns:
        The feature table's path.

    Raises:
        ValueError: no pieces. KeyError: a piece lacks a tree of the first one.
    """
    import uproot

    if not pieces:
        raise ValueError("nothing to assemble: no pieces")
    out = runner.check_out(out)
    meta_json = json.dumps(metadata)
    names = io.root_tree_names(pieces[0].sample)
    with io.atomic_path(out) as tmp:
        with uproot.recreate(tmp) as f:
            for name in names:
                f[f"{name}__metadata"] = meta_json
                writer = None
                for p in pieces:
                    start, stop = (p.ranges or {}).get(name, (None, None))
                    branches, records = _read_tree(p.sample, name, start, stop)
                    if writer is None:
                        writer = _TreeWriter(f, name, records, flush_entries)
                    writer.add(branches)
                writer.flush()
    features = runner.features_path(out)
    with io.atomic_path(features) as tmp:
        with uproot.recreate(tmp) as f:
            f[f"{FEATURES_TREE}__metadata"] = meta_json
            writer, labels = _TreeWriter(f, FEATURES_TREE, False, flush_entries), {}
            for p in pieces:
                start, stop = p.rows or (None, None)
                branches, cats = _read_features(p.features, start, stop)
                for col, local in cats.items():
                    known = labels.setdefault(col, [])
                    for lab in local:
                        if lab not in known:
                            known.append(lab)
                    lut = np.array([known.index(lab) for lab in local] + [-1], dtype=np.int32)
                    codes = np.asarray(branches[col], dtype=np.int64)
                    branches[col] = lut[np.where(codes < 0, len(local), codes)]
                writer.add(branches)
            writer.flush()
            if labels:
                f[f"{FEATURES_TREE}__categories"] = json.dumps(labels)
    return features


def _summary(sample, entries):
    try:
        return importlib.import_module(f"data_prep.{sample}")._summarize(entries)
    except (ImportError, AttributeError):
        return {}


def merge(parts: Sequence[Path], out) -> Path:
    """Merge the sample files ``parts`` (FILE.root with FILE_features.root, outputs of ``--job-index/--n-jobs``
    jobs of one sample) into ``out``, in global block order when all parts carry manifests (else in the order
    given); returns the merged feature table's path.

    Raises:
        FileNotFoundError: a part or its feature table is missing.
        ValueError: parts of different samples, seeds or block sizes, or a block present in two parts.
    """
    parts = [Path(p) for p in parts]
    missing = [str(p) for p in parts if not p.exists() or not runner.features_path(p).exists()]
    if missing:
        raise FileNotFoundError(f"missing sample parts (FILE.root and FILE_features.root): {missing}")
    out = runner.check_out(out)
    metas = [io.read_metadata(runner.features_path(p)) for p in parts]
    for key in ("sample", "seed", "block_size"):
        values = {json.dumps(m.get(key)) for m in metas}
        if len(values) > 1:
            raise ValueError(f"the parts are of different samples: {key} takes the values {sorted(values)}")
    meta = dict(metas[0])
    if all("manifest" in m for m in metas):
        pieces, owner = [], {}
        for p, m in zip(parts, metas):
            offsets, row = {}, 0
            for e in m["manifest"]:
                if e["block"] in owner:
                    raise ValueError(f"block {e['block']} is in both {owner[e['block']]} and {p}")
                owner[e["block"]] = p
                ranges = {}
                for tree, n in e["entries"].items():
                    ranges[tree] = (offsets.get(tree, 0), offsets.get(tree, 0) + n)
                    offsets[tree] = offsets.get(tree, 0) + n
                pieces.append((e, Piece(p, runner.features_path(p), ranges, (row, row + e["rows"]), e["block"])))
                row += e["rows"]
        pieces.sort(key=lambda x: x[0]["block"])
        entries = [e for e, _ in pieces]
        pieces = [pc for _, pc in pieces]
        meta.update(_summary(meta.get("sample"), entries))
        meta["manifest"] = entries
        meta["sha256"] = hashlib.sha256("".join(e["sha256"] for e in entries).encode()).hexdigest()
        meta["core_seconds"] = float(sum(e.get("cpu_seconds", e["seconds"]) for e in entries))
    else:
        pieces = [Piece(p, runner.features_path(p)) for p in parts]
        for key in ("events_generated", "events_selected", "jets_selected"):
            if key in meta:
                meta[key] = sum(m.get(key, 0) for m in metas)
        meta.pop("manifest", None)
    meta["seconds"] = float(sum(m.get("seconds") or 0 for m in metas))
    meta["events_per_second"] = None
    meta["blocks"] = sorted(b for m in metas for b in m.get("blocks", []))
    meta["merged_from"] = [str(p) for p in parts]
    for key in ("job_index", "n_jobs", "blocks_generated", "blocks_reused", "engine"):
        meta.pop(key, None)
    return assemble(pieces, out, json.loads(json.dumps(meta)))


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m data_prep.merge", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="merged sample FILE.root")
    p.add_argument("parts", nargs="+", type=Path, help="sample parts FILE.root")
    args = p.parse_args(argv)
    try:
        path = merge(args.parts, args.out)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"{p.prog}: error: {' '.join(str(e).split())}") from None
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
