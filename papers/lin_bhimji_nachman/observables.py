"""Observables of Lin, Bhimji & Nachman: the separation power in eight equal-statistics kinematic regions
(section 3.3, eq. 3.1) and the Sum m_J of the four leading jets with its N_track cuts and ratio error (Fig. 6).

Masses and pT are in GeV; weights are event weights (a jet carries its event's weight).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gan4hep import metrics

__all__ = ["effective_n", "kinematic_cuts", "assign_kinematic_region", "separation_power_8", "sum_mj",
           "max_ntrk_leading4", "ntrk_cut_for_efficiency", "ratio_error"]


def effective_n(w) -> float:
    """Kish effective sample size (sum w)^2 / sum w^2 of the weights ``w`` (n,)."""
    w = np.asarray(w, dtype=float)
    return float(w.sum() ** 2 / np.sum(w * w))


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


def kinematic_cuts(pt, abs_eta, ntrk, w) -> dict:
    """The eight equal-statistics regions of section 3.3, from the reference sample (arrays of shape (n,); pT in
    GeV): split at the (weighted) median pT, each half at its median |eta|, each quarter at its median N_track.
    Returns the nested thresholds ``{"pt": float, "eta": [2 floats], "ntrk": [4 floats]}``."""
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


def assign_kinematic_region(pt, abs_eta, ntrk, cuts: dict) -> np.ndarray:
    """(n,) region index 0..7 = 4 * (pT >= cut) + 2 * (|eta| >= cut of that half) + (N_track >= cut of that quarter)."""
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


def separation_power_8(ref: pd.DataFrame, gen_mass, n_bins: int = 20, weighted: bool = True) -> dict:
    """Separation power of section 3.3 between the real jets ``ref`` (DataFrame: pt, eta, ntrk, mass, weight) and
    generated masses for the same jets (``gen_mass``: (len(ref),) or (dress, len(ref)) in GeV, each copy weighted
    w/dress).

    Jets are put into the eight equal-statistics (pT, |eta|, N_track) regions; in each, the binned separation
    power (eq. 3.1) of the mass is computed with ``n_bins`` bins of equal real statistics and one bin each below and
    above the real range; the eight values are combined weighted by the regions' real fractions, which is eq. 3.1
    on the joint binning (8 regions x n_bins), because real and generated share the kinematics. Returns a dict with
    the combined ``value``, the per-region values (``regions``, ``fractions``), the ``cuts`` and the statistical
    ``floor`` B/4 (1/N_eff,real + 1/N_eff,gen) combined the same way. ``weighted=False`` ignores the event weights
    (a diagnostic with more effective statistics).

    Raises:
        ValueError: ``gen_mass`` is not for the jets of ``ref``.
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


def sum_mj(jets: pd.DataFrame, mass) -> tuple[np.ndarray, np.ndarray]:
    """Per-event sum of ``mass`` over the four leading jets. ``jets`` needs columns event and rank (pT order);
    ``mass`` is (n_jets,) or (copies, n_jets). Returns (event ids, sums of shape (copies, n_events))."""
    mass = np.atleast_2d(np.asarray(mass, dtype=float))
    lead = jets["rank"].to_numpy() < 4
    events, idx = np.unique(jets["event"].to_numpy()[lead], return_inverse=True)
    sums = np.zeros((mass.shape[0], len(events)))
    for k in range(mass.shape[0]):
        sums[k] = np.bincount(idx, weights=mass[k][lead], minlength=len(events))
    return events, sums


def max_ntrk_leading4(jets: pd.DataFrame) -> pd.Series:
    """Per-event largest N_track among the four leading jets (an N_track < X cut on all four is max < X)."""
    lead = jets[jets["rank"] < 4]
    return lead.groupby("event")["ntrk"].max().sort_index()


def ntrk_cut_for_efficiency(values, weights, efficiency: float = 0.5) -> tuple[int, float]:
    """Integer X with the weighted fraction of ``values < X`` closest to ``efficiency``; returns (X, fraction)."""
    values, weights = np.asarray(values, float), np.asarray(weights, float)
    cands = np.arange(int(values.min()), int(values.max()) + 2)
    fr = np.array([weights[values < x].sum() for x in cands]) / weights.sum()
    i = int(np.argmin(np.abs(fr - efficiency)))
    return int(cands[i]), float(fr[i])


def ratio_error(real, real_w, gen, gen_w, edges) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fig. 6 ratio error per bin: gen/real histogram ratio, 'symmetrised by reflecting across 1', combined in
    quadrature with its statistical error: sqrt((r - 1)^2 + sigma_r^2). ``real``, ``gen``: Sum m_J in GeV with
    weights of the same shapes; ``edges`` (n_bins + 1,). Returns (ratio, sigma, error), each (n_bins,)."""
    rc, rv = metrics.weighted_histogram(real, edges, real_w)
    gc, gv = metrics.weighted_histogram(gen, edges, gen_w)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = gc / rc
        sig = np.abs(r) * np.sqrt(rv / rc**2 + np.where(gc > 0, gv / gc**2, 0.0))
    return r, sig, np.sqrt((r - 1.0) ** 2 + sig**2)


