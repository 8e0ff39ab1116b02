"""Write generated ttbar -> 6 quark events as a Les Houches Event file (LHE 3.0), so they can be showered.

Each event lists g g -> t tbar (incoming gluons along the beam with E = (E_tot +- pz_tot) / 2), the intermediate
t, tbar, W+, W- (status 2, four-vectors summed from their decay products) and the six quarks (status 1), with a
colour flow consistent with g g -> t tbar. The generator's events balance pT only approximately (the slides quote
1 %); the incoming partons carry no pT, so LHE momentum balance holds only to that level.
"""

from __future__ import annotations

import numpy as np

from gan4hep import physics
from gan4hep.io import atomic_path

# (pdg id, colour, anticolour) of the quarks in model.COLUMNS order: t -> W+ b, W+ -> u d~; tbar -> W- b~, W- -> d u~
QUARKS = ((2, 504, 0), (-1, 0, 504), (5, 503, 0), (1, 505, 0), (-2, 0, 505), (-5, 0, 502))


def _line(pid, status, m1, m2, col, acol, p, m):
    px, py, pz, e = p
    return (f"{pid:>9d} {status:>2d} {m1:>4d} {m2:>4d} {col:>4d} {acol:>4d} "
            f"{px: .10e} {py: .10e} {pz: .10e} {e: .10e} {m: .10e} 0.0000e+00 9.0000e+00")


def write_lhe(events, path, beam_energy: float = 6500.0, cross_section_pb: float = 1.0, comment: str = ""):
    """Write ``events`` ((n, 24) GeV, p0_px ... p5_E) to ``path`` atomically; returns the path.

    Raises:
        ValueError: ``events`` is not (n, 24).
    """
    x = np.asarray(events, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 24:
        raise ValueError(f"write_lhe: expected events of shape (n, 24), got {x.shape}")
    lines = ['<LesHouchesEvents version="3.0">', "<header>", f"<!-- {comment} -->" if comment else "",
             "</header>", "<init>",
             f"2212 2212 {beam_energy:.6e} {beam_energy:.6e} 0 0 0 0 3 1",
             f"{cross_section_pb:.6e} 0.000000e+00 1.000000e+00 1", "</init>"]
    for ev in x.reshape(len(x), 6, 4):
        q = [tuple(v) for v in ev]
        w_p, w_m = physics.sum_vectors(q[0], q[1]), physics.sum_vectors(q[3], q[4])
        t, tb = physics.sum_vectors(w_p, q[2]), physics.sum_vectors(w_m, q[5])
        tot = physics.sum_vectors(t, tb)
        g1 = (0.0, 0.0, 0.5 * (tot[3] + tot[2]), 0.5 * (tot[3] + tot[2]))
        g2 = (0.0, 0.0, -0.5 * (tot[3] - tot[2]), 0.5 * (tot[3] - tot[2]))
        body = [
            _line(21, -1, 0, 0, 501, 502, g1, 0.0),
            _line(21, -1, 0, 0, 503, 501, g2, 0.0),
            _line(6, 2, 1, 2, 503, 0, t, float(physics.mass(*t))),       # 3
            _line(-6, 2, 1, 2, 0, 502, tb, float(physics.mass(*tb))),    # 4
            _line(24, 2, 3, 3, 0, 0, w_p, float(physics.mass(*w_p))),    # 5
            _line(-24, 2, 4, 4, 0, 0, w_m, float(physics.mass(*w_m))),   # 6
        ]
        mothers = (5, 5, 3, 6, 6, 4)
        for (pid, col, acol), p, mo in zip(QUARKS, q, mothers):
            body.append(_line(pid, 1, mo, mo, col, acol, p, max(float(physics.mass(*p)), 0.0)))
        lines += ["<event>", f"{len(body):>3d} 1 {cross_section_pb:.6e} {float(physics.mass(*tot)):.6e} -1.0 -1.0",
                  *body, "</event>"]
    lines.append("</LesHouchesEvents>")
    with atomic_path(path) as tmp:
        with open(tmp, "w") as fh:
            fh.write("\n".join(line for line in lines if line != "") + "\n")
    return path


def read_lhe_momenta(path) -> np.ndarray:
    """The final-state (status 1) four-vectors of each event, (n, 24) in GeV: for round-trip checks."""
    events, current, inside = [], [], False
    with open(path) as fh:
        for line in fh:
            s = line.strip()
            if s == "<event>":
                inside, current, header = True, [], True
            elif s == "</event>":
                inside = False
                events.append(np.concatenate(current))
            elif inside:
                if header:
                    header = False
                    continue
                f = s.split()
                if int(f[1]) == 1:
                    current.append(np.array([float(v) for v in f[6:10]]))
    return np.array(events)
