"""Merge the parts of a sample made by batch jobs (``--job-index/--n-jobs``) into one sample.

    python -m data_prep.merge --out samples/dilepton.root part0.root part1.root ...

Each part FILE.root comes with FILE_features.root; both are concatenated in the order given (give the parts in
job order to get the block order), and the metadata counts are summed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import awkward as ak
import numpy as np
import pandas as pd

from gan4hep import io
from data_prep import runner


def _read_tree(path, name):
    import uproot

    with uproot.open(path) as f:
        t = f[name]
        keys = [k for k in t.keys() if not k.endswith("_size")]
        arrays = t.arrays(keys, library="ak")
    out, colls = {}, {}
    for k in keys:
        if "." in k:
            coll, field = k.split(".", 1)
            colls.setdefault(coll, {})[field] = arrays[k]
        else:
            out[k] = ak.to_numpy(arrays[k])
    out.update({c: ak.zip(v) for c, v in colls.items()})
    return out, bool(colls)


def merge(parts, out):
    """Concatenate the sample files ``parts`` (and their feature tables) into ``out``; returns the table path."""
    parts = [Path(p) for p in parts]
    missing = [str(p) for p in parts if not p.exists() or not runner.features_path(p).exists()]
    if missing:
        raise FileNotFoundError(f"missing sample parts (FILE.root and FILE_features.root): {missing}")
    out = runner.check_out(out)
    names = io.root_tree_names(parts[0])
    trees, delphes, metas = {}, [], []
    for name in names:
        pieces = [_read_tree(p, name) for p in parts]
        if pieces[0][1]:
            delphes.append(name)
        trees[name] = {k: (ak.concatenate([pc[0][k] for pc in pieces]) if isinstance(pieces[0][0][k], ak.Array)
                           else np.concatenate([pc[0][k] for pc in pieces])) for k in pieces[0][0]}
    for p in parts:
        metas.append(io.read_metadata(runner.features_path(p)))
    meta = dict(metas[0])
    for key in ("events_generated", "events_selected", "jets_selected", "seconds"):
        if key in meta:
            meta[key] = sum(m.get(key, 0) for m in metas)
    meta["blocks"] = sorted(b for m in metas for b in m.get("blocks", []))
    meta["merged_from"] = [str(p) for p in parts]
    io.write_root(out, trees, metadata=meta, delphes_trees=tuple(delphes))
    df = pd.concat([io.read_table(runner.features_path(p)) for p in parts], ignore_index=True)
    return io.write_table(df, runner.features_path(out), metadata=json.loads(json.dumps(meta)))


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m data_prep.merge", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="merged sample FILE.root")
    p.add_argument("parts", nargs="+", type=Path, help="sample parts FILE.root")
    args = p.parse_args(argv)
    print(f"wrote {merge(args.parts, args.out)}")


if __name__ == "__main__":
    main()
