"""Collider kinematics on numpy arrays (work elementwise, broadcast, accept awkward arrays of flat numbers).

Conventions: momenta in GeV; ``phi`` in radians in [-pi, pi); four-vectors as ``(px, py, pz, E)``.
``delta_phi`` is unsigned, in [0, pi], unless ``signed=True`` (then in [-pi, pi)). Tested against ``vector``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "wrap_phi", "delta_phi", "delta_r", "to_cartesian", "to_cylindrical", "mass", "pt", "eta", "phi",
    "sum_vectors", "invariant_mass", "mt_ww", "mt_two_body", "dilepton_features", "DILEPTON_FEATURES",
    "on_shell_energy",
]

DILEPTON_FEATURES = ("pt_l0", "pt_l1", "pt_ll", "m_ll", "met", "mt", "dphi_ll", "dr_ll")


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
