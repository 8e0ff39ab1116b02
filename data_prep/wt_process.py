"""g b -> t W- (and g bbar -> tbar W+) as a Pythia 8 user process with the LO matrix element.

Pythia 8.3 has no tW process. The spin- and colour-summed |M|^2 of the two diagrams (s-channel b, u-channel top)
is evaluated numerically as a Dirac trace with explicit gamma matrices (massless b, V_tb = 1, G_F scheme for the
weak coupling, polarisation sums -g for the gluon and -g + k k / m_W^2 for the W). ``ward_identity_residual``
checks gauge invariance of the summed diagrams; ``python -m data_prep.wt_process`` prints sigma(tW) at 13 TeV
(LO reference ~54 pb for tW- + tbar W+ at 13 TeV).
"""

from __future__ import annotations

import numpy as np
import pythia8mc

G_F = 1.1663787e-5
M_W = 80.385
G2_WEAK = 4 * np.sqrt(2) * G_F * M_W**2  # g^2 in the G_F scheme

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


def me2_summed(s, t, m3, m4, m_top_prop=172.5):
    """Spin/colour-summed |M|^2 / (g_s^2 g^2 / 2), i.e. without couplings and without averaging.

    t may be a number or an array (then the result is an array of the same length)."""
    tr, pg, pw = _amplitude_traces(s, t, m3, m4, m_top_prop)
    colour = 4.0  # Tr(T^a T^a)
    out = colour * np.real(np.einsum("kabcd,ac,kbd->k", tr, -_METRIC, _w_polarisation_sums(pw, m4)))
    return float(out[0]) if np.ndim(t) == 0 else out


def ward_identity_residual(s, t, m3=172.5, m4=80.4):
    """|sum over W polarisations with the gluon polarisation replaced by its momentum| / the physical value."""
    tr, pg, pw = _amplitude_traces(s, t, m3, m4, m3)
    kg = pg @ _METRIC
    ward = np.real(np.einsum("ka,kc,kbd,kabcd->k", kg, kg, _w_polarisation_sums(pw, m4), tr))[0]
    return abs(ward) / abs(me2_summed(s, t, m3, m4, m3) / 4.0)


def dsigma_dt(s, t, m3, m4, alpha_s, m_top_prop=172.5):
    """d sigma / d t for g b -> t W- in GeV^-4 (averaged over 2 x 2 spins and 3 x 8 colours); t: number or array."""
    me2 = 4 * np.pi * alpha_s * G2_WEAK / 2 * me2_summed(s, t, m3, m4, m_top_prop) / (4 * 24)
    return me2 / (16 * np.pi * s**2)


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

    def sigmaKin(self):
        # t with respect to the b: b first -> tH, gluon first -> uH (p3 = top).
        args = (self.m3, self.m4, self.alpS, self.m_top)
        f = self.open_frac
        self._sigma = tuple(f * dsigma_dt(self.sH, np.array([self.tH, self.uH]), *args))

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
