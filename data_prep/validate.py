"""Plots of the samples and, for the dilepton sample, its MC means raw and after the event-level tail cut.

    python -m data_prep.validate --dilepton samples/dilepton_features.root --qcd samples/qcd_jets_features.root \
        --partons samples/ttbar_partons_features.root --out validation/

Writes PNG plots per sample and ``dilepton_means.md`` / ``.csv``: our means raw and after the event-level tail cut
(drop events with any feature above its 90 % quantile). No published number is read here (data_prep never imports
a paper): our means beside Lebese & Ruan's Table 1 come from ``python papers/lebese_ruan/sample_means.py``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from gan4hep import io, physics


def tail_cut_events(df, columns, quantile=0.9):
    """Drop events with any of ``columns`` above that column's ``quantile``."""
    keep = np.ones(len(df), bool)
    for c in columns:
        keep &= df[c].to_numpy() <= np.quantile(df[c], quantile)
    return df[keep]


def dilepton_means(df):
    """Table (feature, ours_raw, ours_tail_cut) of the weighted means (column ``weight`` if present, else 1) raw and
    after the event-level 90 % tail cut (``tail_cut_events``), and the fraction of events the cut keeps."""
    cols = list(physics.DILEPTON_FEATURES)
    w = df["weight"].to_numpy() if "weight" in df else np.ones(len(df))
    cut = tail_cut_events(df, cols)
    wc = cut["weight"].to_numpy() if "weight" in cut else np.ones(len(cut))
    rows = [{"feature": c, "ours_raw": np.average(df[c], weights=w), "ours_tail_cut": np.average(cut[c], weights=wc)}
            for c in cols]
    return pd.DataFrame(rows), len(cut) / len(df)


def _hist_grid(df, columns, path, title, weights=None, bins=50):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(columns)
    ncol = 4
    fig, axes = plt.subplots((n + ncol - 1) // ncol, ncol, figsize=(4 * ncol, 3.2 * ((n + ncol - 1) // ncol)))
    for ax, c in zip(np.ravel(axes), columns):
        x = df[c].to_numpy()
        lo, hi = np.quantile(x, [0.0, 0.995])
        ax.hist(x, bins=bins, range=(lo, hi if hi > lo else lo + 1), weights=weights, histtype="step", color="k")
        ax.set_xlabel(c)
    for ax in np.ravel(axes)[n:]:
        ax.set_visible(False)
    fig.suptitle(title)
    fig.tight_layout()
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def validate_dilepton(path, out):
    df = io.read_table(path)
    cols = list(physics.DILEPTON_FEATURES)
    _hist_grid(df, cols, out / "dilepton_features.png", f"dilepton: {len(df)} selected events")
    table, frac = dilepton_means(df)
    md = ["# Dilepton sample: MC means", "",
          f"Sample: {path}, {len(df)} selected events; tail cut (drop events with any feature above its 90 % "
          f"quantile) keeps {frac:.0%}. Beside Lebese & Ruan's Table 1: papers/lebese_ruan/sample_means.py.", "",
          "| feature | ours raw | ours tail-cut |", "| --- | --- | --- |"]
    for r in table.itertuples():
        md.append(f"| {r.feature} | {r.ours_raw:.3f} | {r.ours_tail_cut:.3f} |")
    with io.atomic_path(out / "dilepton_means.md") as tmp:
        tmp.write_text("\n".join(md) + "\n")
    io.write_table(table, out / "dilepton_means.csv")
    return "\n".join(md)


def validate_partons(path, out):
    df = io.read_table(path)
    v = [tuple(df[f"p{i}_{c}"].to_numpy() for c in ("px", "py", "pz", "E")) for i in range(6)]
    masses = pd.DataFrame({
        "m_W1": physics.invariant_mass(v[0], v[1]), "m_t1": physics.invariant_mass(v[0], v[1], v[2]),
        "m_W2": physics.invariant_mass(v[3], v[4]), "m_t2": physics.invariant_mass(v[3], v[4], v[5]),
        **{f"pt_{i}": physics.pt(v[i][0], v[i][1]) for i in range(6)},
        **{f"eta_{i}": physics.eta(*v[i][:3]) for i in range(2)},
    })
    _hist_grid(masses, list(masses.columns), out / "partons.png", f"ttbar partons: {len(df)} events")
    return "partons: median m_W {:.2f} / {:.2f} GeV, median m_t {:.2f} / {:.2f} GeV".format(
        *(np.median(masses[c]) for c in ("m_W1", "m_W2", "m_t1", "m_t2")))


def validate_qcd(path, out):
    df = io.read_table(path)
    w = df["weight"].to_numpy() if "weight" in df else None
    cols = ["pt", "eta", "phi", "mass", "ntrk", "njet", "pt_lead", "sum_mj"]
    _hist_grid(df, cols, out / "qcd_jets.png", f"QCD jets: {len(df)} jets (weighted)", weights=w)
    counts = df.groupby(df["region"].astype(int)).size().to_dict()
    return f"qcd: {len(df)} jets; jets per region code (0 none, 1 control, 2 validation, 3 signal): {counts}"


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m data_prep.validate", description=__doc__.split("\n\n")[0])
    p.add_argument("--dilepton", type=Path, help="dilepton feature table")
    p.add_argument("--partons", type=Path, help="ttbar parton feature table")
    p.add_argument("--qcd", type=Path, help="QCD jet feature table")
    p.add_argument("--out", type=Path, default=Path("validation"), help="output folder (default %(default)s)")
    args = p.parse_args(argv)
    if not (args.dilepton or args.partons or args.qcd):
        p.error("give at least one of --dilepton, --partons, --qcd")
    args.out.mkdir(parents=True, exist_ok=True)
    for fn, path in ((validate_dilepton, args.dilepton), (validate_partons, args.partons),
                     (validate_qcd, args.qcd)):
        if path is not None:
            print(fn(path, args.out))


if __name__ == "__main__":
    main()
