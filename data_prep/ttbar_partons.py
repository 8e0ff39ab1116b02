"""Parton-level pp -> ttbar -> (b q q')(b q q') at 13 TeV for Butter, Plehn & Winterhalder.

Pythia 8 hard process only (no showers, no hadronisation), Breit-Wigner line shapes for t and W (Pythia's
default). Quark masses: u, d, s, c = 0 and b = 4.7 GeV, so 18 momentum components define an event. W -> u d, u s,
c d, c s only (no W -> b) and t -> W b only, so every event has exactly the fixed masses. Order of the six quarks:
q, q', b from the top, then q, q', b from the anti-top, with q the quark and q' the antiquark of each W decay
(particles 0+1 = W1, 0+1+2 = top1, 3+4 = W2, 3+4+5 = top2).

    python -m data_prep.ttbar_partons --events 100000 --seed 1 --out samples/ttbar_partons.root
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from gan4hep import io
from data_prep import runner

TREE = "partons"
NAMES = ("q1", "q2", "b1", "q3", "q4", "b2")
COLUMNS = [f"p{i}_{c}" for i in range(6) for c in ("px", "py", "pz", "E")]
MOTHERS = ("w1", "t1", "w2", "t2")
M_B = 4.7


def pythia_settings():
    return [
        "Beams:eCM = 13000.",
        "Top:gg2ttbar = on",
        "Top:qqbar2ttbar = on",
        "PartonLevel:all = off",
        "HadronLevel:all = off",
        "6:onMode = off",
        "6:onIfMatch = 24 5",
        "24:onMode = off",
        "24:onIfMatch = 2 1",
        "24:onIfMatch = 2 3",
        "24:onIfMatch = 4 1",
        "24:onIfMatch = 4 3",
        "1:m0 = 0",
        "2:m0 = 0",
        "3:m0 = 0",
        "4:m0 = 0",
        f"5:m0 = {M_B}",
    ]


def _last_copy(proc, i):
    """Follow a particle through its recoil copies (single daughter with the same id)."""
    while True:
        d1, d2 = proc[i].daughter1(), proc[i].daughter2()
        if d1 > 0 and (d2 == d1 or d2 == 0) and proc[d1].id() == proc[i].id():
            i = d1
        else:
            return i


def _daughters(proc, i):
    d1, d2 = proc[i].daughter1(), proc[i].daughter2()
    if d1 <= 0:
        return []
    return list(range(d1, max(d1, d2) + 1))


def _p4(p):
    return (p.px(), p.py(), p.pz(), p.e())


def decay_chain(proc):
    """Six quarks (q, q', b, q, q', b) and mothers (W1, t1, W2, t2) as lists of (px, py, pz, E), and ids."""
    tops = {}
    for i in range(proc.size()):
        p = proc[i]
        if abs(p.id()) == 6 and p.status() == -22:
            tops.setdefault(int(np.sign(p.id())), i)
    if set(tops) != {1, -1}:
        raise RuntimeError("event without a t tbar pair in the process record")
    quarks, mothers, ids = [], [], []
    for sign in (1, -1):
        t = _last_copy(proc, tops[sign])
        kids = _daughters(proc, t)
        w = next(k for k in kids if abs(proc[k].id()) == 24)
        b = next(k for k in kids if abs(proc[k].id()) != 24)
        w = _last_copy(proc, w)
        qs = sorted(_daughters(proc, w), key=lambda k: -proc[k].id())  # quark (id > 0) first
        for k in (*qs, b):
            quarks.append(_p4(proc[k]))
            ids.append(proc[k].id())
        mothers += [_p4(proc[w]), _p4(proc[t])]
    return quarks, mothers, ids


def _generate_block(config, block, report):
    pythia = runner.init_pythia(runner.configured_pythia(block.seed, pythia_settings()))
    quarks = np.empty((block.events, 6, 4))
    mothers = np.empty((block.events, 4, 4))
    ids = np.empty((block.events, 6), dtype=np.int32)
    n = 0
    while n < block.events:
        if not pythia.next():
            continue
        q, m, i = decay_chain(pythia.process)
        quarks[n], mothers[n], ids[n] = q, m, i
        n += 1
        if n % 500 == 0 or n == block.events:
            report(500 if n % 500 == 0 else n % 500)
    info = pythia.infoPython()
    return {"quarks": quarks, "mothers": mothers, "ids": ids,
            "stats": {"sigma_pb": info.sigmaGen() * 1e9, "events": n}}


def table(quarks):
    """Flat feature table p{i}_{px,py,pz,E} from an (n, 6, 4) array."""
    return pd.DataFrame(quarks.reshape(len(quarks), 24), columns=COLUMNS)


def _block_tables(result):
    """One block's trees (``partons``: quarks, ids, mothers), feature rows and statistics."""
    quarks, mothers, ids = result["quarks"], result["mothers"], result["ids"]
    df = table(quarks)
    df["weight"] = 1.0
    full = {c: df[c].to_numpy() for c in COLUMNS}
    for i in range(6):
        full[f"p{i}_id"] = ids[:, i]
    for j, name in enumerate(MOTHERS):
        for k, c in enumerate(("px", "py", "pz", "E")):
            full[f"{name}_{c}"] = mothers[:, j, k]
    return runner.BlockTables({TREE: full}, (), df, result["stats"])


def _summarize(entries):
    """Sample metadata from the manifest entries of all blocks (block order)."""
    return {"events_generated": int(sum(e["entries"][TREE] for e in entries)),
            "sigma_pb": float(np.mean([e["stats"]["sigma_pb"] for e in entries]))}


def make_sample(out, events: int = 100000, seed: int = 1, jobs: int = 1, job_index: int = 0, n_jobs: int = 1,
                block_size: int = 20000, progress: bool = True, scheduler=None, cluster: str | None = None,
                workers: int | None = None, cluster_config=None, retries: int = 2, keep_parts: bool = False):
    """Generate the sample: ``out`` (tree ``partons`` with quarks, ids and mothers) and ``out`` with ``_features``
    (the 24 columns p{i}_px..p{i}_E in GeV and weight). Returns the feature table's path.

    ``events`` generated events in seeded blocks of ``block_size`` (same ``seed`` and ``block_size`` -> the same
    events with any engine). Engines, part files, resume and errors: ``data_prep.runner.produce`` (``jobs`` local
    processes, or a Dask ``scheduler`` address / ``cluster`` kind with ``workers`` and ``cluster_config``).
    """
    out = runner.check_out(out)
    blocks = runner.make_blocks(events, seed, block_size, job_index, n_jobs)
    meta = {
        "sample": "ttbar_partons", "paper": "Butter, Plehn & Winterhalder 2019", "seed": seed,
        "block_size": block_size, "job_index": job_index, "n_jobs": n_jobs,
        "order": "q, q', b (top), q, q', b (anti-top); q = quark, q' = antiquark of the W decay",
        "masses": {"u,d,s,c": 0.0, "b": M_B},
    }
    return runner.produce(runner.Sample.of("ttbar_partons"), {}, out, blocks, meta, progress=progress, jobs=jobs,
                          scheduler=scheduler, cluster=cluster, workers=workers, cluster_config=cluster_config,
                          retries=retries, keep_parts=keep_parts, desc="ttbar partons")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m data_prep.ttbar_partons", description=__doc__.split("\n\n")[0])
    runner.add_common_args(p, events=100000, block_size=20000, out="samples/ttbar_partons.root")
    args = p.parse_args(argv)
    with runner.cli_errors(p.prog):
        path = make_sample(args.out, **runner.common_kwargs(args))
    meta = io.read_metadata(path)
    print(f"wrote {args.out} and {path}: {meta['events_generated']} events, {runner.rate_text(meta)}")


if __name__ == "__main__":
    main()
