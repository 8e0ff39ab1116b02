"""Generated ttbar -> 6 quark events as Les Houches Event files (LHE 3.0, written by scikit-hep ``pylhe`` through
``gan4hep.io.write_events``), so they can be showered (Pythia 8: ``Beams:frameType = 4``).

Each event lists g g -> t tbar (incoming gluons along the beam with E = (E_tot +- pz_tot) / 2), the intermediate
t, tbar, W+, W- (status 2, four-vectors summed from their decay products) and the six quarks (status 1), with a
colour flow consistent with g g -> t tbar. Flavours are fixed (W+ -> u d~, W- -> d u~): the generator emits
momenta only.

The generator's events balance pT only approximately (the slides quote 1 %), while the incoming partons of an LHE
event run along the beam. ``balance="boost"`` (the default) therefore boosts each event transversely into the
frame where the six quarks carry no total pT: a Lorentz transformation, so every invariant mass (t, W, ttbar) is
unchanged and the event record conserves four-momentum exactly, as a shower program checks. ``balance="none"``
writes the momenta as generated (Pythia then refuses imbalanced events).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gan4hep.io import EventRecord, read_events, write_events

# (pdg id, colour, anticolour) of the quarks in model.COLUMNS order: t -> W+ b, W+ -> u d~; tbar -> W- b~, W- -> d u~
QUARKS = ((2, 504, 0), (-1, 0, 504), (5, 503, 0), (1, 505, 0), (-2, 0, 505), (-5, 0, 502))

#: The particles of one event in LHE order (1-based indices in ``MOTHERS``): g g t t~ W+ W- and the six quarks.
PID = (21, 21, 6, -6, 24, -24) + tuple(q[0] for q in QUARKS)
STATUS = (-1, -1, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1)
MOTHERS = ((0, 0), (0, 0), (1, 2), (1, 2), (3, 3), (4, 4), (5, 5), (5, 5), (3, 3), (6, 6), (6, 6), (4, 4))
COLORS = ((501, 502), (503, 501), (503, 0), (0, 502), (0, 0), (0, 0)) + tuple(q[1:] for q in QUARKS)


def _mass(p: np.ndarray) -> np.ndarray:
    """Invariant mass of ``(..., 4)`` four-vectors (px, py, pz, E), 0 where m^2 < 0."""
    return np.sqrt(np.maximum(p[..., 3] ** 2 - (p[..., :3] ** 2).sum(-1), 0.0))


def boost_to_zero_pt(quarks: np.ndarray) -> np.ndarray:
    """Boost each event of ``(n, k, 4)`` four-vectors (GeV) transversely so that their sum has no pT.

    The boost velocity is ``beta = (px, py, 0) / E`` of the event's total momentum (applied with the opposite
    sign); invariant masses of any subset of the particles, and the total pz, are unchanged.
    """
    q = np.asarray(quarks, dtype=np.float64)
    tot = q.sum(axis=1)
    beta = np.zeros((len(q), 3))
    beta[:, :2] = -tot[:, :2] / tot[:, 3:4]
    b2 = (beta**2).sum(-1)
    gamma = 1.0 / np.sqrt(1.0 - b2)
    bp = (q[..., :3] * beta[:, None, :]).sum(-1)  # (n, k): beta . p
    coef = np.where(b2 > 0, (gamma - 1.0) / np.where(b2 > 0, b2, 1.0), 0.0)
    out = np.empty_like(q)
    out[..., :3] = q[..., :3] + (coef[:, None] * bp + gamma[:, None] * q[..., 3])[..., None] * beta[:, None, :]
    out[..., 3] = gamma[:, None] * (q[..., 3] + bp)
    return out


def event_record(events, balance: str = "boost") -> EventRecord:
    """The LHE event record of ``(n, 24)`` generated events (GeV, ``p0_px ... p5_E`` in ``model.COLUMNS`` order).

    Args:
        events: ``(n, 24)`` quark four-vectors.
        balance: "boost" (default: transverse boost to zero total pT, see the module docstring) or "none".

    Returns:
        An ``EventRecord`` of 12 particles per event (``PID``, ``STATUS``, ``MOTHERS``, ``COLORS``).

    Raises:
        ValueError: ``events`` is not (n, 24), or an unknown ``balance``.
    """
    x = np.asarray(events, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 24:
        raise ValueError(f"write_lhe: expected events of shape (n, 24), got {x.shape}")
    if balance not in ("boost", "none"):
        raise ValueError(f"write_lhe: balance must be 'boost' or 'none', got {balance!r}")
    q = x.reshape(len(x), 6, 4)
    if balance == "boost":
        q = boost_to_zero_pt(q)
    w_p, w_m = q[:, 0] + q[:, 1], q[:, 3] + q[:, 4]
    t, tb = w_p + q[:, 2], w_m + q[:, 5]
    tot = t + tb
    plus, minus = 0.5 * (tot[:, 3] + tot[:, 2]), 0.5 * (tot[:, 3] - tot[:, 2])
    zero = np.zeros(len(x))
    g1 = np.stack([zero, zero, plus, plus], 1)
    g2 = np.stack([zero, zero, -minus, minus], 1)
    p = np.concatenate([np.stack([g1, g2, t, tb, w_p, w_m], 1), q], axis=1)
    masses = _mass(p)
    masses[:, :2] = 0.0
    return EventRecord(momenta=p, pid=np.array(PID), status=np.array(STATUS), mothers=np.array(MOTHERS),
                       colors=np.array(COLORS), masses=masses, scales=_mass(tot))


def write_lhe(events, path, beam_energy: float = 6500.0, cross_section_pb: float = 1.0, comment: str = "",
              balance: str = "boost") -> Path:
    """Write ``events`` ((n, 24) GeV, p0_px ... p5_E) to ``path`` (.lhe or .lhe.gz) atomically; returns the path.

    Args:
        events: ``(n, 24)`` generated quark four-vectors in GeV.
        path: the output file.
        beam_energy: energy of each proton beam in GeV (13 TeV collisions: 6500).
        cross_section_pb: the process cross section written in ``<init>``.
        comment: an XML comment at the top of the file.
        balance: "boost" (default) or "none" (see the module docstring).

    Raises:
        ValueError: ``events`` is not (n, 24).
    """
    return write_events(path, event_record(events, balance), beam_energies=(beam_energy, beam_energy),
                        cross_section_pb=cross_section_pb, comment=comment or None)


def read_lhe_momenta(path) -> np.ndarray:
    """The final-state (status 1) four-vectors of each event, (n, 24) in GeV: for round-trip checks."""
    record = read_events(path).arrays()
    final = record["status"][0] == 1
    return record["momenta"][:, final].reshape(len(record["momenta"]), -1)
