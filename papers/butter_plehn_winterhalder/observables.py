"""Physics observables of (n, 24) parton events in GeV (numpy): particle and candidate kinematics, peak fits,
momentum balance, tail counts and bin-wise deviations. Column order as model.COLUMNS."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize

from gan4hep import physics

PARTICLES = ("q1", "q2", "b1", "q3", "q4", "b2")      # q, q', b from the top; q, q', b from the anti-top
CANDIDATES = (("W1", (0, 1)), ("t1", (0, 1, 2)), ("W2", (3, 4)), ("t2", (3, 4, 5)))
POLES = {"W": 80.4, "t": 173.0}                      # window centres for the peak fits (GeV)
KINEMATICS = ("pt", "eta", "phi", "E")


def _vectors(x):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 24:
        raise ValueError(f"expected events of shape (n, 24) (p0_px ... p5_E), got {x.shape}")
    return [tuple(x[:, 4 * i + k] for k in range(4)) for i in range(6)]


def table(x):
    """DataFrame of pt/eta/phi/E of the six quarks and pt/eta/phi/E/m of the four candidates (GeV, rad)."""
    v = _vectors(x)
    cols = {}
    for name, p in zip(PARTICLES, v):
        cols[f"pt_{name}"], cols[f"eta_{name}"], cols[f"phi_{name}"], _ = physics.to_cylindrical(*p)
        cols[f"E_{name}"] = p[3]
    for name, idx in CANDIDATES:
        s = physics.sum_vectors(*(v[i] for i in idx))
        pt, eta, phi, m = physics.to_cylindrical(*s)
        cols.update({f"pt_{name}": pt, f"eta_{name}": eta, f"phi_{name}": phi, f"E_{name}": s[3], f"m_{name}": m})
    return pd.DataFrame(cols)


def masses(x):
    """(n, 4) masses of W1, W2, t1, t2 (the MMD observables, same order as model.RESONANCES)."""
    t = table(x)
    return t[["m_W1", "m_W2", "m_t1", "m_t2"]].to_numpy()


def _cauchy(m, norm, m0, gamma):
    return norm * (gamma / (2 * np.pi)) / ((m - m0) ** 2 + gamma**2 / 4)


def fit_peak(m, centre, half_window=15.0, bin_width=0.5):
    """Breit-Wigner (Cauchy) fit to the mass histogram within centre +- half_window.

    Returns dict: position, width (FWHM Gamma), their fit errors, fraction of candidates within +- 5 GeV of
    ``centre`` and in the window, median and interquartile range ``iqr``. Position/width are NaN where there is no
    peak: fewer than 50 candidates in the window, or a fitted FWHM of half the window or more (a slope across the
    window, not a peak). The IQR is a width defined for any distribution, peaked or not, and equals the FWHM for a
    pure Breit-Wigner line shape (its quartiles are M -+ Gamma/2).
    """
    m = np.asarray(m, dtype=np.float64)
    if m.size == 0:
        raise ValueError("fit_peak: no mass values")
    edges = np.arange(centre - half_window, centre + half_window + 1e-9, bin_width)
    counts, _ = np.histogram(m, edges)
    inside = counts.sum()
    q25, q50, q75 = np.quantile(m, (0.25, 0.5, 0.75))
    out = {"median": float(q50), "iqr": float(q75 - q25),
           "fraction_within_5GeV": float(np.mean(np.abs(m - centre) < 5.0)),
           "fraction_in_window": float(inside / len(m)), "position": np.nan, "width": np.nan,
           "position_error": np.nan, "width_error": np.nan}
    if inside < 50:
        return out
    c = 0.5 * (edges[1:] + edges[:-1])
    dens = counts / (len(m) * bin_width)
    err = np.sqrt(np.maximum(counts, 1)) / (len(m) * bin_width)
    p0 = (inside / len(m), c[np.argmax(counts)], 2.0)
    try:
        p, cov = optimize.curve_fit(_cauchy, c, dens, p0=p0, sigma=err, absolute_sigma=True,
                                    bounds=([0, centre - half_window, 0.01], [np.inf, centre + half_window, 1e3]))
    except (RuntimeError, ValueError):
        return out
    if p[2] >= half_window:
        return out
    e = np.sqrt(np.diag(cov))
    out.update(position=float(p[1]), width=float(p[2]), position_error=float(e[1]), width_error=float(e[2]))
    return out


def peaks(x):
    """Fits for the W peak (both candidates pooled) and the top peak (both pooled)."""
    t = table(x)
    return {"W": fit_peak(np.r_[t.m_W1, t.m_W2], POLES["W"]), "top": fit_peak(np.r_[t.m_t1, t.m_t2], POLES["t"])}


def momentum_balance(x):
    """|sum px| / sum pT and |sum py| / sum pT per event (0 for exact momentum conservation)."""
    v = _vectors(x)
    spt = sum(physics.pt(p[0], p[1]) for p in v)
    return np.abs(sum(p[0] for p in v)) / spt, np.abs(sum(p[1] for p in v)) / spt


def tail_fraction(values, thresholds):
    """N_tail(pT) = 1 - N_cum(pT): fraction of events above each threshold."""
    values = np.sort(np.asarray(values, dtype=np.float64))
    return 1.0 - np.searchsorted(values, thresholds, side="right") / len(values)


def bulk_deviation(ref, gen, n_bins=40, quantiles=(0.01, 0.99), min_count=100):
    """Bin-wise |gen/ref - 1| in the bulk: equal-width bins between the reference's 1 % and 99 % quantiles, bins
    with at least ``min_count`` reference entries. Returns mean and max deviation and the mean relative statistical
    uncertainty of a bin ratio."""
    ref, gen = np.asarray(ref, float), np.asarray(gen, float)
    lo, hi = np.quantile(ref, quantiles)
    edges = np.linspace(lo, hi, n_bins + 1)
    r, _ = np.histogram(ref, edges)
    g, _ = np.histogram(gen, edges)
    ok = r >= min_count
    if not ok.any():
        return {"mean_abs_dev": float("nan"), "max_abs_dev": float("nan"), "stat_rel_uncertainty_mean": float("nan"),
                "bins": 0}
    rn, gn = r[ok] / len(ref), g[ok] / len(gen)
    dev = np.abs(gn / rn - 1.0)
    stat = np.sqrt(1.0 / r[ok] + 1.0 / np.maximum(g[ok], 1))
    return {"mean_abs_dev": float(dev.mean()), "max_abs_dev": float(dev.max()),
            "stat_rel_uncertainty_mean": float(stat.mean()), "bins": int(ok.sum())}
