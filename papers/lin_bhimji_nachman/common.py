"""Shared pieces of the Lin, Bhimji & Nachman reproduction: presets, the QCD jet sample and its regions, the
control-region split, the separation power of section 3.3 and the Sum m_J observable of Fig. 6."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from gan4hep import io, metrics

COLUMNS = ["event", "pt", "eta", "mass", "ntrk", "njet", "region", "weight"]
REGIONS = {1: "control", 2: "validation", 3: "signal"}

# Table 1 of the paper, written out for table1.csv (the selection itself is data_prep.qcd_jets.assign_region).
TABLE1 = [
    ("control", "= 3", "-", "-", "-"),
    ("validation", "= 4", "> 400 GeV", "> 1.4", "-"),
    ("validation", ">= 5", "-", "> 1.4", "-"),
    ("signal", "= 4", "> 400 GeV", "< 1.4", "> 1.0 TeV"),
    ("signal", ">= 5", "-", "< 1.4", "> 0.8 TeV"),
]

# quick: a few minutes of Pythia on 2 cores; paper: the paper's 1.1 M control jets (~10 M events at 0.11 control
# jets per event: batch work, generate with data_prep's --n-jobs/--job-index and pass --sample).
PRESETS = {
    "quick": dict(events=150_000, n_init=2, epochs=30, patience=None, batch_size=128, dress=10, mass_bins=20),
    "paper": dict(events=10_000_000, n_init=10, epochs=200, patience=40, batch_size=128, dress=10, mass_bins=20),
}


def add_common_args(p, preset_default="quick"):
    p.add_argument("--preset", choices=sorted(PRESETS), default=preset_default,
                   help="paper: the paper's statistics and 10 initialisations; quick: ~20 min on 2 cores")
    p.add_argument("--seed", type=int, default=1, help="seed for the sample, splits, dressing and networks")
    p.add_argument("--sample", type=Path, default=None,
                   help="existing jet feature table (data_prep.qcd_jets *_features.root, or parquet/CSV with columns "
                        f"{', '.join(COLUMNS)}); default: generate one into OUT/sample/")
    p.add_argument("--events", type=int, default=None, help="events to generate (default: the preset's)")
    p.add_argument("--jobs", type=int, default=2, help="local Pythia processes (default %(default)s)")
    return p


def preset(args):
    cfg = dict(PRESETS[args.preset])
    if getattr(args, "events", None):
        cfg["events"] = args.events
    return cfg


# ------------------------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------------------------
def load_sample(args, out, events):
    """The per-jet table: ``--sample`` if given, else a data_prep.qcd_jets sample generated (once) in OUT/sample."""
    path = args.sample
    if path is None:
        root = Path(out) / "sample" / f"qcd_jets_e{events}_s{args.seed}.root"
        path = root.with_name(root.stem + "_features.root")
        if not path.exists():
            from data_prep import qcd_jets

            print(f"generating {events} QCD events with Pythia ({args.jobs} jobs) -> {root}", flush=True)
            path = qcd_jets.make_sample(root, events=events, seed=args.seed, jobs=args.jobs, block_size=5000)
    return read_jets(path)


def read_jets(path):
    """Read and check a jet table; raises naming the file and the missing/bad column."""
    df = io.read_table(path, columns=COLUMNS)
    if len(df) == 0:
        raise ValueError(f"{path}: the jet table is empty")
    if (df["weight"] <= 0).any():
        raise ValueError(f"{path}: column 'weight' has {(df['weight'] <= 0).sum()} non-positive values")
    bad = ~df["region"].isin([0, *REGIONS])
    if bad.any():
        raise ValueError(f"{path}: column 'region' holds codes {sorted(df['region'][bad].unique())}; "
                         "expected 0 (none), 1 (control), 2 (validation), 3 (signal)")
    df = df.sort_values(["event", "pt"], ascending=[True, False], kind="stable").reset_index(drop=True)
    df["rank"] = df.groupby("event").cumcount()
    df.attrs["path"] = str(path)
    return df


def region(df, name):
    """Jets of one region by name (control, validation, signal); an empty selection raises naming the file."""
    code = {v: k for k, v in REGIONS.items()}[name]
    sel = df[df["region"] == code]
    if len(sel) == 0:
        raise ValueError(f"{df.attrs.get('path', 'sample')}: no jets in the {name} region "
                         f"(column 'region' == {code}); generate more events")
    return sel.reset_index(drop=True)


def split_control(control, seed):
    """The paper's 50/50 split of the control region into training and early-stopping halves, by event."""
    events = np.unique(control["event"])
    rng = np.random.default_rng([seed, 50])
    train_events = rng.choice(events, size=len(events) // 2, replace=False)
    is_train = control["event"].isin(train_events).to_numpy()
    return control[is_train].reset_index(drop=True), control[~is_train].reset_index(drop=True)


def table1(df):
    """Table 1 with the number of events and jets (raw and weighted) per region in our sample."""
    rows = []
    for name, n, pt1, deta, msum in TABLE1:
        code = {v: k for k, v in REGIONS.items()}[name]
        jets = df[df["region"] == code]
        nj = jets["njet"]
        part = jets[nj == 3] if n == "= 3" else (jets[nj == 4] if n == "= 4" else jets[nj >= 5])
        rows.append({"region": name, "N_jet(pT>200 GeV)": n, "pT,1": pt1, "|deta_12|": deta, "M_J^Sigma": msum,
                     "events": int(part["event"].nunique()), "jets": len(part),
                     "weighted_jets": float(part["weight"].sum()),
                     "effective_jets": float(effective_n(part["weight"])) if len(part) else 0.0})
    return pd.DataFrame(rows)


def effective_n(w):
    """Kish effective sample size (sum w)^2 / sum w^2 of weighted events."""
    w = np.asarray(w, dtype=float)
    return float(w.sum() ** 2 / np.sum(w * w))


# ------------------------------------------------------------------------------------------------------------
# separation power, section 3.3
# ------------------------------------------------------------------------------------------------------------
def _median_cut(x, w):
    """Threshold t splitting x into x < t and x >= t with weighted fractions closest to 1/2 (ties stay together,
    so integer N_track splits as evenly as its values allow)."""
    values = np.unique(x)
    if len(values) == 1:
        return values[0]
    order = np.argsort(x)
    cw = np.cumsum(w[order]) / w.sum()
    below = np.searchsorted(x[order], values[1:], side="left")  # jets with x < value
    frac = cw[below - 1]
    return values[1:][np.argmin(np.abs(frac - 0.5))]


def kinematic_cuts(pt, abs_eta, ntrk, w):
    """The eight equal-statistics regions of section 3.3, from the reference sample: split at the (weighted) median
    pT, each half at its median |eta|, each quarter at its median N_track. Returns nested thresholds."""
    pt, abs_eta, ntrk, w = (np.asarray(a, dtype=float) for a in (pt, abs_eta, ntrk, w))
    cuts = {"pt": _median_cut(pt, w), "eta": [], "ntrk": []}
    for hi in (False, True):
        m = (pt >= cuts["pt"]) == hi
        ce = _median_cut(abs_eta[m], w[m])
        cuts["eta"].append(ce)
        for he in (False, True):
            mm = m & ((abs_eta >= ce) == he)
            cuts["ntrk"].append(_median_cut(ntrk[mm], w[mm]) if mm.any() else np.inf)
    return cuts


def assign_kinematic_region(pt, abs_eta, ntrk, cuts):
    """Region index 0..7 = 4 * (pT >= cut) + 2 * (|eta| >= cut of that half) + (N_track >= cut of that quarter)."""
    pt, abs_eta, ntrk = (np.asarray(a, dtype=float) for a in (pt, abs_eta, ntrk))
    hp = (pt >= cuts["pt"]).astype(int)
    he = (abs_eta >= np.asarray(cuts["eta"])[hp]).astype(int)
    hn = (ntrk >= np.asarray(cuts["ntrk"])[2 * hp + he]).astype(int)
    return 4 * hp + 2 * he + hn


def _mass_edges(real, w, gen, n_bins):
    """``n_bins`` bins of equal (weighted) real statistics, plus one bin below and one above the real range so that
    generated masses outside it count fully (two disjoint samples give S = 1)."""
    e = metrics.quantile_edges(real, n_bins, weights=w)
    if len(e) < 2:
        e = np.array([real[0] - 0.5, real[0] + 0.5])
    top = np.nextafter(e[-1], np.inf)
    return np.concatenate([[min(e[0], gen.min()) - 1.0], e[:-1], [top, max(top, gen.max()) + 1.0]])


def separation_power_8(ref, gen_mass, n_bins=20, weighted=True):
    """Separation power of section 3.3 between the real jets ``ref`` (DataFrame: pt, eta, ntrk, mass, weight) and
    generated masses for the same jets (``gen_mass``: (len(ref),) or (dress, len(ref)), each copy weighted w/dress).

    Jets are put into the eight equal-statistics (pT, |eta|, N_track) regions; in each, the binned separation
    power (eq. 3.1) of the mass is computed with ``n_bins`` bins of equal real statistics and one bin each below and
    above the real range; the eight values are combined weighted by the regions' real fractions, which is eq. 3.1 on the joint
    binning (8 regions x n_bins), because real and generated share the kinematics. Returns a dict with the combined
    value, the per-region values and the statistical floor B/4 (1/N_eff,real + 1/N_eff,gen) combined the same way.
    ``weighted=False`` ignores the event weights (a diagnostic with more effective statistics).
    """
    w = ref["weight"].to_numpy(float) if weighted else np.ones(len(ref))
    gen = np.atleast_2d(np.asarray(gen_mass, dtype=float))
    if gen.shape[1] != len(ref):
        raise ValueError(f"generated masses for {gen.shape[1]} jets, reference has {len(ref)}")
    abs_eta = np.abs(ref["eta"].to_numpy(float))
    cuts = kinematic_cuts(ref["pt"], abs_eta, ref["ntrk"], w)
    reg = assign_kinematic_region(ref["pt"], abs_eta, ref["ntrk"], cuts)
    mass = ref["mass"].to_numpy(float)
    values, floors, fracs = [], [], []
    for r in range(8):
        m = reg == r
        if not m.any():
            continue
        gm = gen[:, m].ravel()
        gw = np.tile(w[m], gen.shape[0])
        edges = _mass_edges(mass[m], w[m], gm, n_bins)
        values.append(metrics.separation_power(mass[m], gm, bins=edges, weights_ref=w[m], weights_gen=gw))
        n_ref = effective_n(w[m])
        floors.append(metrics.separation_power_floor(n_ref, n_ref * gen.shape[0], len(edges) - 3))
        fracs.append(w[m].sum() / w.sum())
    fracs = np.asarray(fracs)
    return {"value": float(np.dot(fracs, values)), "floor": float(np.dot(fracs, floors)),
            "regions": [float(v) for v in values], "fractions": fracs.tolist(),
            "cuts": {"pt": float(cuts["pt"]), "abs_eta": [float(c) for c in cuts["eta"]],
                     "ntrk": [float(c) for c in cuts["ntrk"]]}}


# ------------------------------------------------------------------------------------------------------------
# Sum m_J of the four leading jets (Fig. 6)
# ------------------------------------------------------------------------------------------------------------
def sum_mj(jets, mass):
    """Per-event sum of ``mass`` over the four leading jets. ``jets`` needs columns event and rank (pT order);
    ``mass`` is (n_jets,) or (copies, n_jets). Returns (event ids, sums of shape (copies, n_events))."""
    mass = np.atleast_2d(np.asarray(mass, dtype=float))
    lead = jets["rank"].to_numpy() < 4
    events, idx = np.unique(jets["event"].to_numpy()[lead], return_inverse=True)
    sums = np.zeros((mass.shape[0], len(events)))
    for k in range(mass.shape[0]):
        sums[k] = np.bincount(idx, weights=mass[k][lead], minlength=len(events))
    return events, sums


def max_ntrk_leading4(jets):
    """Per-event largest N_track among the four leading jets (an N_track < X cut on all four is max < X)."""
    lead = jets[jets["rank"] < 4]
    return lead.groupby("event")["ntrk"].max().sort_index()


def ntrk_cut_for_efficiency(values, weights, efficiency=0.5):
    """Integer X with the weighted fraction of ``values < X`` closest to ``efficiency``."""
    values, weights = np.asarray(values, float), np.asarray(weights, float)
    cands = np.arange(int(values.min()), int(values.max()) + 2)
    fr = np.array([weights[values < x].sum() for x in cands]) / weights.sum()
    i = int(np.argmin(np.abs(fr - efficiency)))
    return int(cands[i]), float(fr[i])


def ratio_error(real, real_w, gen, gen_w, edges):
    """Fig. 6 ratio error per bin: gen/real histogram ratio, 'symmetrised by reflecting across 1', combined in
    quadrature with its statistical error: sqrt((r - 1)^2 + sigma_r^2). Returns (ratio, sigma, error)."""
    rc, rv = metrics.weighted_histogram(real, edges, real_w)
    gc, gv = metrics.weighted_histogram(gen, edges, gen_w)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = gc / rc
        sig = np.abs(r) * np.sqrt(rv / rc**2 + np.where(gc > 0, gv / gc**2, 0.0))
    return r, sig, np.sqrt((r - 1.0) ** 2 + sig**2)


