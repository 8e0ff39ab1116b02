"""g b -> t W- (and g bbar -> tbar W+) as a Pythia 8 user process with the LO matrix element.

Pythia 8.3 has no tW process. The spin- and colour-summed |M|^2 of the two diagrams (s-channel b, u-channel top;
massless b, V_tb = 1, G_F scheme for the weak coupling, polarisation sums -g for the gluon and -g + k k / m_W^2 for
the W) is evaluated in closed form (``me2_summed``: a polynomial in s, u and the masses, a few dozen float
operations per value; derived by ``data_prep/derive_wt_me2.py``, run by hand, which needs sympy). The numeric Dirac
trace with explicit gamma matrices that it replaced is kept as the independent reference (``me2_trace``; the
tests require the two to agree to 1e-10 relative, off-shell masses included), and ``ward_identity_residual``
checks gauge invariance of the summed diagrams with it. ``python -m data_prep.wt_process`` prints sigma(tW) at
13 TeV (LO reference ~54 pb for tW- + tbar W+ at 13 TeV).
"""

from __future__ import annotations

import math

import numpy as np
import pythia8mc

G_F = 1.1663787e-5
M_W = 80.385
G2_WEAK = 4 * math.sqrt(2) * G_F * M_W**2  # g^2 in the G_F scheme (a Python float: per-event path)

_METRIC = np.diag([1.0, -1.0, -1.0, -1.0])
_I2, _Z2 = np.eye(2), np.zeros((2, 2))
_SIGMA = [np.array([[0, 1], [1, 0]], complex), np.array([[0, -1j], [1j, 0]]), np.array([[1, 0], [0, -1]], complex)]
_GAMMA = np.array([np.block([[_I2, _Z2], [_Z2, -_I2]])] + [np.block([[_Z2, s], [-s, _Z2]]) for s in _SIGMA],
                  dtype=complex)
_G5 = 1j * _GAMMA[0] @ _GAMMA[1] @ _GAMMA[2] @ _GAMMA[3]
_PL = (np.eye(4) - _G5) / 2


def _slash(p):
    """p_mu gamma^mu for momenta of shape (..., 4) -> (..., 4, 4)."""
    return np.tensordot(p @ _METRIC, _GAMMA, axes=1)


_GAMMA_PL = _GAMMA @ _PL
_GAMMA0 = _GAMMA[0]
_ONE = np.eye(4)


def _momenta(s, t, m3, m4):
    """b (along +z), g, top, W in the parton CM frame, each of shape (k, 4) for k values of t = (p_b - p_top)^2."""
    t = np.atleast_1d(np.asarray(t, dtype=float))
    rs = np.sqrt(s)
    e3 = (s + m3**2 - m4**2) / (2 * rs)
    p3 = np.sqrt(max(e3**2 - m3**2, 0.0))
    cos = np.clip((e3 - (m3**2 - t) / rs) / p3, -1.0, 1.0) if p3 > 0 else np.ones_like(t)
    sin = np.sqrt(1 - cos**2)
    zero = np.zeros_like(t)
    pb = np.broadcast_to([rs / 2, 0, 0, rs / 2], (len(t), 4))
    pg = np.broadcast_to([rs / 2, 0, 0, -rs / 2], (len(t), 4))
    pt = np.stack([np.full_like(t, e3), p3 * sin, zero, p3 * cos], axis=1)
    return pb, pg, pt, pb + pg - pt


def _amplitude_traces(s, t, m3, m4, m_top_prop):
    """T[k, mu, nu, mu', nu'] = Tr[(pt/ + m3) G^{mu nu} pb/ Gbar^{mu' nu'}] (upper indices; mu gluon, nu W) for
    each of the k values of t, evaluated together (one call of numpy per operation: Pythia calls this per event)."""
    pb, pg, pt, pw = _momenta(s, t, m3, m4)
    sb = _slash(pb + pg) / s  # b propagator (massless b)
    q = pt - pg
    den = np.einsum("ki,ij,kj->k", q, _METRIC, q) - m_top_prop**2
    st = (_slash(q) + m_top_prop * _ONE) / den[:, None, None]
    # G[k, mu, nu] = gamma^nu P_L S_b gamma^mu + gamma^mu S_t gamma^nu P_L
    g = (_GAMMA_PL[None, None] @ sb[:, None, None] @ _GAMMA[None, :, None]
         + _GAMMA[None, :, None] @ st[:, None, None] @ _GAMMA_PL[None, None])
    gbar = _GAMMA0 @ np.conj(np.swapaxes(g, -1, -2)) @ _GAMMA0
    k = len(q)
    x = ((_slash(pt) + m3 * _ONE)[:, None, None] @ g).reshape(k, 16, 16)
    y = np.swapaxes(_slash(pb)[:, None, None] @ gbar, -1, -2).reshape(k, 16, 16)
    return (x @ np.swapaxes(y, 1, 2)).reshape(k, 4, 4, 4, 4), pg, pw


def _w_polarisation_sums(pw, m4):
    kw = pw @ _METRIC
    return -_METRIC + kw[:, :, None] * kw[:, None, :] / m4**2


def me2_trace(s: float, t: float | np.ndarray, m3: float, m4: float,
              m_top_prop: float = 172.5) -> float | np.ndarray:
    """Spin/colour-summed |M|^2 / (g_s^2 g^2 / 2) as a numeric Dirac trace with explicit gamma matrices.

    The independent reference for the closed form ``me2_summed`` (~0.1 ms per call: not for the per-event path).

    Args:
        s: partonic s in GeV^2 (a number).
        t: (p_b - p_top)^2 in GeV^2, a number or an array of shape (k,).
        m3, m4: top and W masses of the event in GeV (numbers; may be off shell).
        m_top_prop: top mass in the u-channel propagator in GeV.

    Returns:
        A float, or an array of shape (k,) when t is an array.
    """
    tr, pg, pw = _amplitude_traces(s, t, m3, m4, m_top_prop)
    colour = 4.0  # Tr(T^a T^a)
    out = colour * np.real(np.einsum("kabcd,ac,kbd->k", tr, -_METRIC, _w_polarisation_sums(pw, m4)))
    return float(out[0]) if np.ndim(t) == 0 else out


def _me2_closed(s, t, m3, m4, m_prop):  # floats, arrays or sympy symbols: no hints
    """The closed form of ``me2_summed`` in plain arithmetic (floats, numpy arrays, or sympy symbols: the
    derivation script evaluates this very function symbolically and checks it against its result).

    |M|^2 = (8 / m4^2) [P_ss / s^2 + 2 P_st / (s D) + P_tt / D^2], D = u - M^2 the top propagator,
    u = m3^2 + m4^2 - s - t, a = m3^2, w = m4^2, M = m_prop (printed by data_prep/derive_wt_me2.py)."""
    a = m3 * m3
    w = m4 * m4
    u = a + w - s - t
    d = u - m_prop * m_prop
    mm = m3 * m_prop
    p_ss = (s - a) * (s + u - a) + w * (2 * a - s - 2 * u)  # P_ss / s
    p_st = (mm * (u * (s - a + w) + w * (a + s - w)) - s * u * (s + u - a) + w * (s * u - 2 * a * (s + u))
            + 2 * w * w * (a + s + u - w))
    p_tt = (m_prop * m_prop * (u * (a - s + 2 * w) - w * (a - 2 * s + 2 * w)) - 4 * mm * (u - w) * (u + 2 * w)
            + u * u * (s + u - w) - 2 * w * (s * u - a * u + a * w))
    return 8 / w * (p_ss / s + 2 * p_st / (s * d) + p_tt / (d * d))


def me2_summed(s: float | np.ndarray, t: float | np.ndarray, m3: float | np.ndarray, m4: float | np.ndarray,
               m_top_prop: float = 172.5) -> float | np.ndarray:
    """Spin/colour-summed |M|^2 / (g_s^2 g^2 / 2), i.e. without couplings and without averaging (closed form).

    Equal to the trace ``me2_trace`` (tested to 1e-10 relative; ~1e-13 in practice), a few microseconds per value.

    Args:
        s: partonic s in GeV^2.
        t: (p_b - p_top)^2 in GeV^2, a number or an array of shape (k,).
        m3, m4: top and W masses of the event in GeV (may be off shell: Pythia samples Breit-Wigner masses).
        m_top_prop: top mass in the u-channel propagator in GeV.

    Returns:
        A float for a number t (plain float arithmetic), else an array of shape (k,) (numpy; s, m3, m4 may then
        also be arrays that broadcast with t).
    """
    if np.ndim(t) == 0:
        return _me2_closed(float(s), float(t), float(m3), float(m4), float(m_top_prop))
    return _me2_closed(np.asarray(s, dtype=float), np.asarray(t, dtype=float), np.asarray(m3, dtype=float),
                       np.asarray(m4, dtype=float), float(m_top_prop))


def ward_identity_residual(s, t, m3=172.5, m4=80.4):
    """|sum over W polarisations with the gluon polarisation replaced by its momentum| / the physical value."""
    tr, pg, pw = _amplitude_traces(s, t, m3, m4, m3)
    kg = pg @ _METRIC
    ward = np.real(np.einsum("ka,kc,kbd,kabcd->k", kg, kg, _w_polarisation_sums(pw, m4), tr))[0]
    return abs(ward) / abs(me2_trace(s, t, m3, m4, m3) / 4.0)


_COUPLINGS = 4 * math.pi * G2_WEAK / 2 / (4 * 24) / (16 * math.pi)  # 4 pi alpha_s g^2 / 2, averages, 1/(16 pi)


def dsigma_dt(s: float, t: float | np.ndarray, m3: float, m4: float, alpha_s: float,
              m_top_prop: float = 172.5) -> float | np.ndarray:
    """d sigma / d t for g b -> t W- in GeV^-4 (averaged over 2 x 2 spins and 3 x 8 colours); t: number or array."""
    return alpha_s * _COUPLINGS / (s * s) * me2_summed(s, t, m3, m4, m_top_prop)


class SigmaGB2TW(pythia8mc.Sigma2Process):
    """Pythia 8 user process g b -> t W- + c.c. (code 9901); register with ``pythia.setSigmaPtr``."""

    CODE = 9901

    def __init__(self, m_top=172.5):
        super().__init__()
        self.m_top = m_top
        self.open_frac = 1.0  # fraction of t W decays left open; Pythia applies it for its own processes only
        self._sigma = (0.0, 0.0)

    def name(self):
        return "g b -> t W- (user, LO)"

    def code(self):
        return self.CODE

    def inFlux(self):
        return "qg"

    def id3Mass(self):
        return 6

    def id4Mass(self):
        return 24

    def sigmaKin(self) -> None:
        # t with respect to the b: b first -> tH, gluon first -> uH (p3 = top). Plain floats: called per event.
        s, m3, m4, m_top = self.sH, self.m3, self.m4, self.m_top
        norm = self.open_frac * self.alpS * _COUPLINGS / (s * s)
        self._sigma = (norm * _me2_closed(s, self.tH, m3, m4, m_top), norm * _me2_closed(s, self.uH, m3, m4, m_top))

    def sigmaHat(self):
        if abs(self.id1) == 5 and self.id2 == 21:
            return self._sigma[0]
        if self.id1 == 21 and abs(self.id2) == 5:
            return self._sigma[1]
        return 0.0

    def setIdColAcol(self):
        bottom = self.id1 if abs(self.id1) == 5 else self.id2
        sign = 1 if bottom > 0 else -1
        self.setId(self.id1, self.id2, 6 * sign, -24 * sign)
        if abs(self.id1) == 5:
            self.setColAcol(1, 0, 2, 1, 2, 0, 0, 0)
        else:
            self.setColAcol(2, 1, 1, 0, 2, 0, 0, 0)
        if sign < 0:
            self.swapColAcol()


def w_open_fraction(pythia):
    """Open W branching fraction from the decay table (before init; after init prefer resOpenFrac)."""
    entry = pythia.particleData.particleDataEntryPtr(24)
    chans = [entry.channel(i) for i in range(entry.sizeChannels())]
    total = sum(c.bRatio() for c in chans)
    return sum(c.bRatio() for c in chans if c.onMode() in (1, 2, 3)) / total


def attach(pythia, m_top=172.5):
    """Register the process with a configured, not yet initialised Pythia; call ``finalize`` after init."""
    proc = SigmaGB2TW(m_top)
    proc.open_frac = w_open_fraction(pythia) ** 2  # t -> W b always: the top's open fraction is the W's
    pythia.setSigmaPtr(proc)
    return proc


def finalize(pythia, proc):
    """After ``pythia.init()``: use Pythia's own open fraction of the t W pair."""
    proc.open_frac = pythia.particleData.resOpenFrac(6, -24, 0)


def cross_section(events=2000, seed=1, ecm=13000.0):
    """LO sigma(tW- + tbar W+) in pb with all W decays open, estimated by Pythia from ``events`` events."""
    pythia = pythia8mc.Pythia("", False)
    proc = SigmaGB2TW()
    for s in ["Print:quiet = on", "Next:numberCount = 0", f"Beams:eCM = {ecm}", "PartonLevel:all = off",
              "HadronLevel:all = off", "ProcessLevel:resonanceDecays = off", "Random:setSeed = on",
              f"Random:seed = {seed}"]:
        if not pythia.readString(s):
            raise RuntimeError(f"Pythia rejected {s!r}")
    pythia.setSigmaPtr(proc)
    if not pythia.init():
        raise RuntimeError("Pythia initialisation failed")
    for _ in range(events):
        pythia.next()
    info = pythia.infoPython()
    return info.sigmaGen() * 1e9, info.sigmaErr() * 1e9


if __name__ == "__main__":
    sigma, err = cross_section()
    print(f"sigma(g b -> t W- + c.c., 13 TeV, LO) = {sigma:.1f} +- {err:.1f} pb (LO reference ~54 pb)")
