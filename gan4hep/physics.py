"""Collider kinematics on numpy arrays (work elementwise, broadcast, accept awkward arrays of flat numbers).

Conventions: momenta in GeV; ``phi`` in radians in [-pi, pi); four-vectors as ``(px, py, pz, E)``.
``delta_phi`` is unsigned, in [0, pi], unless ``signed=True`` (then in [-pi, pi)). Tested against ``vector``.

The massless-pair functions (``pair_pt``, ``pair_mass``, ``mt_ww_polar``, ``dilepton_features_massless``) take the
array library as an argument, after scikit-hep ``vector``'s compute functions: ``lib=np`` (default) for numpy
arrays, ``lib=keras.ops`` inside a Keras layer, so one definition serves both. They use only operations both
libraries have (``sqrt``, ``cos``, ``cosh``, ``maximum``) and arithmetic operators.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

#: A numpy array (or number) with ``lib=np``, a backend tensor with ``lib=keras.ops``.
Tensor = Any

__all__ = [
    "wrap_phi", "delta_phi", "delta_r", "to_cartesian", "to_cylindrical", "mass", "pt", "eta", "phi",
    "sum_vectors", "invariant_mass", "mt_ww", "mt_two_body", "dilepton_features", "DILEPTON_FEATURES",
    "on_shell_energy", "pair_pt", "pair_mass", "mt_ww_polar", "delta_r_from_deltas", "dilepton_features_massless",
    "DILEPTON_UNDERLYING", "dilepton_underlying", "dilepton_features_from_underlying",
    "boost", "breit_wigner_cdf", "TTBAR_DECAY_COORDINATES", "ttbar_decay_coordinates",
]

DILEPTON_FEATURES = ("pt_l0", "pt_l1", "pt_ll", "m_ll", "met", "mt", "dphi_ll", "dr_ll")
#: The 6 quantities the 8 ``DILEPTON_FEATURES`` of two massless leptons and MET are functions of: leading lepton pT
#: [GeV], the pT ratio pT(l1) / pT(l0) in (0, 1], |Delta eta|, Delta phi in [0, pi] [rad], MET [GeV], and the
#: azimuth of MET relative to the dilepton pT in [0, pi] [rad].
DILEPTON_UNDERLYING = ("pt_l0", "pt_ratio", "deta_ll", "dphi_ll", "met", "dphi_met")


def wrap_phi(phi):
    """Map angles onto [-pi, pi)."""
    return (np.asarray(phi, dtype=float) + np.pi) % (2 * np.pi) - np.pi


def delta_phi(phi1, phi2, signed=False):
    """Azimuthal difference phi1 - phi2: |.| in [0, pi] by default, in [-pi, pi) with ``signed=True``."""
    d = wrap_phi(np.asarray(phi1, dtype=float) - np.asarray(phi2, dtype=float))
    return d if signed else np.abs(d)


def delta_r(eta1, phi1, eta2, phi2):
    """Distance in (eta, phi): sqrt(Delta eta^2 + Delta phi^2)."""
    return np.hypot(np.asarray(eta1, dtype=float) - np.asarray(eta2, dtype=float), delta_phi(phi1, phi2))


def to_cartesian(pt_, eta_, phi_, m):
    """(pT, eta, phi, m) -> (px, py, pz, E)."""
    pt_, eta_, phi_, m = (np.asarray(a, dtype=float) for a in (pt_, eta_, phi_, m))
    px, py, pz = pt_ * np.cos(phi_), pt_ * np.sin(phi_), pt_ * np.sinh(eta_)
    return px, py, pz, np.sqrt(px**2 + py**2 + pz**2 + m**2)


def pt(px, py):
    """Transverse momentum."""
    return np.hypot(px, py)


def eta(px, py, pz):
    """Pseudorapidity (+-inf along the beam)."""
    with np.errstate(divide="ignore"):
        return np.arcsinh(np.asarray(pz, dtype=float) / pt(px, py))


def phi(px, py):
    """Azimuth in [-pi, pi]."""
    return np.arctan2(py, px)


def mass(px, py, pz, E):
    """Invariant mass; a negative m^2 (rounding, smearing) gives -sqrt(-m^2), as ROOT's TLorentzVector::M."""
    m2 = np.asarray(E, dtype=float) ** 2 - np.asarray(px) ** 2 - np.asarray(py) ** 2 - np.asarray(pz) ** 2
    return np.sign(m2) * np.sqrt(np.abs(m2))


def to_cylindrical(px, py, pz, E):
    """(px, py, pz, E) -> (pT, eta, phi, m)."""
    return pt(px, py), eta(px, py, pz), phi(px, py), mass(px, py, pz, E)


def sum_vectors(*vectors):
    """Component-wise sum of several (px, py, pz, E) tuples."""
    return tuple(sum(np.asarray(v[i], dtype=float) for v in vectors) for i in range(4))


def invariant_mass(*vectors):
    """Invariant mass of the sum of several (px, py, pz, E) tuples."""
    return mass(*sum_vectors(*vectors))


def on_shell_energy(px, py, pz, m):
    """Energy of a particle of mass m with the given momentum."""
    return np.sqrt(np.asarray(px) ** 2 + np.asarray(py) ** 2 + np.asarray(pz) ** 2 + np.asarray(m) ** 2)


def mt_ww(px_ll, py_ll, m_ll, met_x, met_y):
    """Transverse mass of the dilepton system and MET, H -> WW definition.

    m_T^2 = (E_T^ll + MET)^2 - |pT^ll + MET|^2 with E_T^ll = sqrt(pT_ll^2 + m_ll^2).
    """
    et_ll = np.sqrt(px_ll**2 + py_ll**2 + np.asarray(m_ll, dtype=float) ** 2)
    met = np.hypot(met_x, met_y)
    mt2 = (et_ll + met) ** 2 - (px_ll + met_x) ** 2 - (py_ll + met_y) ** 2
    return np.sqrt(np.clip(mt2, 0.0, None))


def mt_two_body(pt1, phi1, pt2, phi2):
    """Massless two-body transverse mass sqrt(2 pT1 pT2 (1 - cos Delta phi)), e.g. lepton + MET in W -> l nu."""
    return np.sqrt(2 * pt1 * pt2 * (1 - np.cos(delta_phi(phi1, phi2))))


def dilepton_features(pt0, eta0, phi0, m0, pt1, eta1, phi1, m1, met, met_phi):
    """The 8 Lebese & Ruan features from two leptons (any order) and MET.

    Returns a dict with keys ``DILEPTON_FEATURES``: pT of the leading / subleading lepton, pT and mass of the pair,
    MET, m_T (``mt_ww``), unsigned Delta phi in [0, pi] and Delta R between the leptons.
    """
    args = [np.asarray(a, dtype=float) for a in (pt0, eta0, phi0, m0, pt1, eta1, phi1, m1, met, met_phi)]
    pt0, eta0, phi0, m0, pt1, eta1, phi1, m1, met, met_phi = args
    swap = pt1 > pt0
    lead = [np.where(swap, b, a) for a, b in ((pt0, pt1), (eta0, eta1), (phi0, phi1), (m0, m1))]
    sub = [np.where(swap, a, b) for a, b in ((pt0, pt1), (eta0, eta1), (phi0, phi1), (m0, m1))]
    v0, v1 = to_cartesian(*lead), to_cartesian(*sub)
    ll = sum_vectors(v0, v1)
    m_ll = mass(*ll)
    met_x, met_y = met * np.cos(met_phi), met * np.sin(met_phi)
    return {
        "pt_l0": lead[0],
        "pt_l1": sub[0],
        "pt_ll": pt(ll[0], ll[1]),
        "m_ll": m_ll,
        "met": met,
        "mt": mt_ww(ll[0], ll[1], m_ll, met_x, met_y),
        "dphi_ll": delta_phi(lead[2], sub[2]),
        "dr_ll": delta_r(lead[1], lead[2], sub[1], sub[2]),
    }


# ---------------------------------------------------------------- one definition for numpy and Keras (``lib``)

def _safe_sqrt(x: Tensor, lib: ModuleType, eps: float) -> Tensor:
    """sqrt(max(x, 0) + eps): ``eps`` > 0 keeps the gradient finite at 0 (Keras); 0 gives the exact value."""
    return lib.sqrt(lib.maximum(x, 0.0) + eps)


def pair_pt(pt0: Tensor, pt1: Tensor, dphi: Tensor, lib: ModuleType = np, eps: float = 0.0) -> Tensor:
    """Transverse momentum of a pair, |pT0 + pT1| = sqrt(pT0^2 + pT1^2 + 2 pT0 pT1 cos(Delta phi)).

    Args:
        pt0, pt1: transverse momenta [GeV], any shape (broadcast).
        dphi: azimuthal separation [rad] (sign irrelevant).
        lib: array library, ``numpy`` or ``keras.ops``.
        eps: added under the square root [GeV^2] (0: exact; a Keras layer passes ~1e-12 for finite gradients).

    Returns:
        pT of the pair [GeV], same shape. Equals ``pt(*sum_vectors(...)[:2])`` of the two momenta.
    """
    return _safe_sqrt(pt0**2 + pt1**2 + 2 * pt0 * pt1 * lib.cos(dphi), lib, eps)


def pair_mass(pt0: Tensor, pt1: Tensor, deta: Tensor, dphi: Tensor, lib: ModuleType = np,
              eps: float = 0.0) -> Tensor:
    """Invariant mass of two massless particles, m^2 = 2 pT0 pT1 (cosh(Delta eta) - cos(Delta phi)).

    Args:
        pt0, pt1: transverse momenta [GeV]; deta, dphi: pseudorapidity and azimuthal separations [rad];
        lib, eps: see ``pair_pt``.

    Returns:
        m [GeV], same shape as the broadcast inputs. Equals ``invariant_mass`` of the two massless four-vectors.
    """
    return _safe_sqrt(2 * pt0 * pt1 * (lib.cosh(deta) - lib.cos(dphi)), lib, eps)


def mt_ww_polar(pt_ll: Tensor, m_ll: Tensor, met: Tensor, dphi_met: Tensor, lib: ModuleType = np,
                eps: float = 0.0) -> Tensor:
    """``mt_ww`` from the pair's pT and mass, MET and the azimuth between them (H -> WW definition).

    m_T^2 = (E_T^ll + MET)^2 - (pT_ll^2 + MET^2 + 2 pT_ll MET cos(Delta phi)), E_T^ll = sqrt(pT_ll^2 + m_ll^2).

    Args:
        pt_ll, m_ll: pT and mass of the dilepton system [GeV]; met: missing transverse momentum [GeV];
        dphi_met: azimuth of MET relative to the dilepton pT [rad]; lib, eps: see ``pair_pt``.

    Returns:
        m_T [GeV] (0 where rounding makes m_T^2 negative), same shape.

    Source: the transverse mass of the ATLAS and CMS H -> WW* -> l nu l nu analyses; Lebese & Ruan section 4.3
    ("the transverse mass between the transverse missing energy and the dilepton system").
    """
    et_ll = _safe_sqrt(pt_ll**2 + m_ll**2, lib, eps)
    return _safe_sqrt((et_ll + met) ** 2 - (pt_ll**2 + met**2 + 2 * pt_ll * met * lib.cos(dphi_met)), lib, eps)


def delta_r_from_deltas(deta: Tensor, dphi: Tensor, lib: ModuleType = np) -> Tensor:
    """Delta R = sqrt(Delta eta^2 + Delta phi^2) from the separations themselves (``delta_r`` takes eta, phi)."""
    return lib.sqrt(dphi**2 + deta**2)


def dilepton_features_massless(pt0: Tensor, pt1: Tensor, deta: Tensor, dphi: Tensor, met: Tensor, dphi_met: Tensor,
                               lib: ModuleType = np, eps: float = 0.0) -> dict[str, Tensor]:
    """The 8 Lebese & Ruan features of two massless leptons and MET from 6 underlying quantities.

    The same features as ``dilepton_features`` (which works from the full momenta and lepton masses), written in
    the pair's own variables so that a generator can emit the 6 quantities and get 8 exactly consistent features.

    Args:
        pt0, pt1: leading and subleading lepton pT [GeV] (pt1 <= pt0 is the caller's to ensure).
        deta: |Delta eta| between the leptons; dphi: unsigned Delta phi in [0, pi] [rad].
        met: missing transverse momentum [GeV]; dphi_met: azimuth of MET relative to the dilepton pT [rad].
        lib: ``numpy`` or ``keras.ops``; eps: see ``pair_pt``.

    Returns:
        dict with keys ``DILEPTON_FEATURES``, each of the inputs' broadcast shape: pT(l0), pT(l1), pT(ll) and
        m(ll) [GeV], MET [GeV], m_T (``mt_ww_polar``) [GeV], Delta phi [rad] and Delta R.
    """
    pt_ll = pair_pt(pt0, pt1, dphi, lib, eps)
    m_ll = pair_mass(pt0, pt1, deta, dphi, lib, eps)
    values = (pt0, pt1, pt_ll, m_ll, met, mt_ww_polar(pt_ll, m_ll, met, dphi_met, lib, eps), dphi,
              delta_r_from_deltas(deta, dphi, lib))
    return dict(zip(DILEPTON_FEATURES, values))


def dilepton_features_from_underlying(u: Tensor, lib: ModuleType = np, eps: float = 0.0) -> Tensor:
    """``(n, 6)`` ``DILEPTON_UNDERLYING`` -> ``(n, 8)`` ``DILEPTON_FEATURES`` (``dilepton_features_massless`` with
    pT(l1) = ratio x pT(l0)), for numpy arrays or inside a Keras layer (``lib=keras.ops``)."""
    f = dilepton_features_massless(u[:, 0], u[:, 0] * u[:, 1], u[:, 2], u[:, 3], u[:, 4], u[:, 5], lib=lib, eps=eps)
    return lib.stack([f[name] for name in DILEPTON_FEATURES], axis=1)


def dilepton_underlying(features: np.ndarray) -> np.ndarray:
    """The inverse of ``dilepton_features_from_underlying``: ``(n, 8)`` ``DILEPTON_FEATURES`` -> ``(n, 6)``
    ``DILEPTON_UNDERLYING``.

    |Delta eta| = sqrt(Delta R^2 - Delta phi^2); the MET azimuth from m_T by inverting ``mt_ww_polar``:
    cos(Delta phi_MET) = ((E_T^ll + MET)^2 - pT_ll^2 - MET^2 - m_T^2) / (2 pT_ll MET), clipped to [-1, 1] (leptons
    with mass, rounding). Exact for massless leptons; for real leptons (m << pT) the features recomputed from the
    result differ from the input by O(m^2 / pT^2) in m(ll) and m_T.

    Args:
        features: ``(n, 8)`` array, columns ``DILEPTON_FEATURES`` (GeV, rad).

    Returns:
        ``(n, 6)`` float64 array, columns ``DILEPTON_UNDERLYING``.

    Raises:
        ValueError: not an ``(n, 8)`` array, or a leading-lepton pT <= 0.
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(DILEPTON_FEATURES):
        raise ValueError(f"dilepton_underlying: expected (n, {len(DILEPTON_FEATURES)}) features "
                         f"{DILEPTON_FEATURES}, got shape {x.shape}")
    pt0, pt1, pt_ll, m_ll, met, mt, dphi, dr = x.T
    if np.any(pt0 <= 0):
        raise ValueError("dilepton_underlying: pt_l0 must be > 0")
    deta = np.sqrt(np.maximum(dr**2 - dphi**2, 0.0))
    denom = 2 * pt_ll * met
    num = (np.sqrt(pt_ll**2 + m_ll**2) + met) ** 2 - pt_ll**2 - met**2 - mt**2
    cos = np.clip(np.divide(num, denom, out=np.ones_like(num), where=denom > 0), -1.0, 1.0)
    return np.stack([pt0, pt1 / pt0, deta, dphi, met, np.arccos(cos)], axis=1)


def boost(e: Tensor, p: Tensor, big_e: Tensor, big_p: Tensor, big_m: Tensor, sign: float = 1.0,
          lib: ModuleType = np) -> tuple[Tensor, Tensor]:
    """Boost the four-vector ``(e, p)`` by the velocity ``sign * P / E`` of a system ``(E, P, M)``.

    ``sign = +1`` takes a vector from the system's rest frame to the frame the system is given in, ``-1`` the
    reverse (a pure boost: no rotation).

    Args:
        e: energies (...,) [GeV]; p: momenta (..., 3).
        big_e, big_m: the system's energy and mass (...,); big_p: its momentum (..., 3).
        sign: +1 or -1. lib: ``numpy`` or ``keras.ops``.

    Returns:
        ``(e', p')`` of the same shapes.
    """
    beta = sign * big_p / big_e[..., None]
    gamma = big_e / big_m
    bp = lib.sum(beta * p, axis=-1)
    e2 = gamma * (e + bp)
    p2 = p + beta * (gamma * gamma / (gamma + 1.0) * bp + gamma * e)[..., None]
    return e2, p2


def breit_wigner_cdf(m: np.ndarray, pole: float, width: float) -> np.ndarray:
    """u = 1/2 + atan(2 (m - M) / G) / pi in (0, 1): the Breit-Wigner CDF of pole ``M`` and width ``G`` [GeV], which
    makes a Breit-Wigner-distributed mass uniform. Inverse: m = M + G/2 tan(pi (u - 1/2))."""
    return 0.5 + np.arctan(2.0 * (np.asarray(m) - pole) / width) / np.pi


#: The 16 decay coordinates of a ttbar -> (q q' b)(q q' b) event whose ttbar pT is 0 (Butter, Plehn & Winterhalder's
#: sample; our flow's variables): px, py of top 1 [GeV] (top 2 has minus them), the rapidities of both tops, the
#: Breit-Wigner CDFs ``u`` of both top and both W masses, and the directions (cos theta, phi) of each W in its top's
#: rest frame and of the first quark in its W's rest frame (frames reached by pure boosts from the lab; lab axes).
TTBAR_DECAY_COORDINATES = ("px_t1", "py_t1", "y_t1", "y_t2", "u_t1", "u_t2", "u_W1", "u_W2",
                           "cos_W1", "phi_W1", "cos_q1", "phi_q1", "cos_W2", "phi_W2", "cos_q2", "phi_q2")


def _mass_np(e, p):
    return np.sqrt(np.maximum(e * e - np.sum(p * p, axis=-1), 0.0))


def ttbar_decay_coordinates(events: np.ndarray, w_pole: tuple[float, float],
                            t_pole: tuple[float, float]) -> np.ndarray:
    """``(n, 24)`` ttbar -> 6 quark events -> ``(n, 16)`` ``TTBAR_DECAY_COORDINATES``.

    Args:
        events: four-vectors (px, py, pz, E) [GeV] of q, q', b from the top, then q, q', b from the anti-top.
        w_pole, t_pole: (pole mass, width) [GeV] of the W and the top for the ``u`` variables.

    Returns:
        float64 array; the inverse is ``gan4hep.layers.TTbarDecayChain`` (exact up to rounding for events whose ttbar
        pT is 0).
    """
    p = np.asarray(events, dtype=np.float64).reshape(-1, 6, 4)
    cols = {}
    for side, o in ((1, 0), (2, 3)):
        q, qb, b = p[:, o], p[:, o + 1], p[:, o + 2]
        w, t = q + qb, q + qb + b
        m_w, m_t = _mass_np(w[:, 3], w[:, :3]), _mass_np(t[:, 3], t[:, :3])
        cols[f"y_t{side}"] = 0.5 * np.log((t[:, 3] + t[:, 2]) / (t[:, 3] - t[:, 2]))
        cols[f"u_t{side}"] = breit_wigner_cdf(m_t, *t_pole)
        cols[f"u_W{side}"] = breit_wigner_cdf(m_w, *w_pole)
        if side == 1:
            cols["px_t1"], cols["py_t1"] = t[:, 0], t[:, 1]
        for name, child, parent, m_parent in (("W", w, t, m_t), ("q", q, w, m_w)):
            _, k = boost(child[:, 3], child[:, :3], parent[:, 3], parent[:, :3], m_parent, sign=-1.0)
            cols[f"cos_{name}{side}"] = k[:, 2] / np.linalg.norm(k, axis=-1)
            cols[f"phi_{name}{side}"] = np.arctan2(k[:, 1], k[:, 0])
    return np.stack([cols[c] for c in TTBAR_DECAY_COORDINATES], axis=1)
