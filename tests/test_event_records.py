"""Event records (issue 23): ``gan4hep.io.write_events`` / ``read_events`` through pylhe (LHE) and pyhepmc (HepMC3),
round trips against the independent readers of those libraries, the Butter-Plehn-Winterhalder LHE record, and the
end-to-end check that the records are usable: Pythia 8 reads a ttbar -> 6 quark LHE file written from generated
events, showers and hadronises it without errors, and the W and top masses rebuilt from Pythia's hard-process record
equal those of the generated events."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pandas as pd
import pytest

from gan4hep.errors import InputError
from gan4hep.io import EventRecord, read_events, read_metadata, read_table, write_events


def _record(n=7, seed=0):
    """g g -> t (-> 3 particles): mothers, colours and a resonance, momenta conserved at each vertex."""
    rng = np.random.default_rng(seed)
    fin = rng.normal(0, 40, (n, 3, 4))
    fin[:, :, :2] -= fin[:, :, :2].mean(1, keepdims=True)  # no total pT: the incoming partons run along the beam
    fin[:, :, 3] = np.sqrt((fin[:, :, :3] ** 2).sum(-1) + np.array([0.0, 0.0, 4.7]) ** 2)
    top = fin.sum(1)
    plus, minus = 0.5 * (top[:, 3] + top[:, 2]), 0.5 * (top[:, 3] - top[:, 2])
    z = np.zeros(n)
    g1, g2 = np.stack([z, z, plus, plus], 1), np.stack([z, z, -minus, minus], 1)
    p = np.concatenate([np.stack([g1, g2, top], 1), fin], 1)
    return EventRecord(momenta=p, pid=[21, 21, 6, 2, -1, 5], status=[-1, -1, 2, 1, 1, 1],
                       mothers=[[0, 0], [0, 0], [1, 2], [3, 3], [3, 3], [3, 3]],
                       colors=[[501, 502], [502, 503], [501, 0], [504, 0], [0, 504], [501, 0]],
                       weights=rng.uniform(0.5, 2.0, n))


@pytest.mark.parametrize("name", ["ev.lhe", "ev.lhe.gz"])
def test_lhe_round_trip_and_independent_reader(tmp_path, name):
    import pylhe

    rec = _record()
    path = write_events(tmp_path / name, rec, metadata={"preset": "quick", "seed": 3}, comment="toy")
    back = read_events(path).arrays()
    want = rec.arrays()
    np.testing.assert_allclose(back["momenta"], want["momenta"], rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(back["masses"], want["masses"], rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(back["weights"], want["weights"], rtol=1e-10)
    np.testing.assert_allclose(back["scales"], want["scales"], rtol=1e-10)
    for key in ("pid", "status", "mothers", "colors"):
        np.testing.assert_array_equal(back[key], want[key])
    # pylhe's own reader, field by field
    lhef = pylhe.LesHouchesEvents.fromfile(path)
    events = list(lhef.events)
    assert len(events) == len(rec)
    assert (lhef.init.initInfo.beamA, lhef.init.initInfo.energyA) == (2212, 6500.0)
    assert [q.id for q in events[3].particles] == [21, 21, 6, 2, -1, 5]
    assert events[3].particles[4].px == pytest.approx(want["momenta"][3, 4, 0], rel=1e-10)
    # the scale is the invariant mass of the outgoing particles
    fin = want["momenta"][:, 3:].sum(1)
    np.testing.assert_allclose(want["scales"], np.sqrt(fin[:, 3] ** 2 - (fin[:, :3] ** 2).sum(-1)), rtol=1e-12)


def test_hepmc_round_trip_and_independent_reader(tmp_path):
    import pyhepmc

    rec = _record()
    path = write_events(tmp_path / "ev.hepmc3", rec, metadata={"preset": "quick"})
    back = read_events(path).arrays()
    want = rec.arrays()
    np.testing.assert_array_equal(back["momenta"], want["momenta"])  # HepMC3 ASCII keeps full double precision
    np.testing.assert_array_equal(back["pid"], want["pid"])
    np.testing.assert_array_equal(back["status"], want["status"])
    np.testing.assert_array_equal(back["mothers"], want["mothers"])
    np.testing.assert_allclose(back["weights"], want["weights"], rtol=1e-15)
    with pyhepmc.open(path) as f:
        events = list(f)
    assert len(events) == len(rec)
    ev = events[2]
    assert [p.status for p in ev.particles] == [4, 4, 2, 1, 1, 1]  # LHE -1 / 2 / 1 as HepMC 4 / 2 / 1
    top = ev.particles[2]
    assert [p.pid for p in top.end_vertex.particles_out] == [2, -1, 5]
    assert {p.pid for p in top.production_vertex.particles_in} == {21}
    assert ev.cross_section.xsec() == 1.0


def test_hepmc_particle_level_events(tmp_path):
    """Particle-level events (final-state particles only, no history) are written and read back exactly."""
    rng = np.random.default_rng(4)
    p = rng.normal(0, 20, (5, 4, 4))
    p[..., 3] = np.sqrt((p[..., :3] ** 2).sum(-1) + 0.13957**2)
    rec = EventRecord(momenta=p, pid=[211, -211, 211, -211], status=[1, 1, 1, 1])
    back = read_events(write_events(tmp_path / "pions.hepmc", rec)).arrays()
    np.testing.assert_array_equal(back["momenta"], p)
    np.testing.assert_array_equal(back["mothers"], 0)
    np.testing.assert_allclose(back["masses"], 0.13957, rtol=1e-9)


def test_tables_through_the_same_entry_point(tmp_path):
    df = pd.DataFrame({"a": np.arange(5.0), "b": np.arange(5) * 2.0})
    for suffix in (".parquet", ".root", ".csv", ".h5"):
        back = read_table(write_events(tmp_path / f"t{suffix}", df))
        pd.testing.assert_frame_equal(back, df, check_dtype=False)
    rec = _record(3)
    path = write_events(tmp_path / "rec.root", rec, metadata={"run": "x"})
    back = read_table(path)
    np.testing.assert_array_equal(back.to_numpy(), rec.momenta.reshape(3, -1))
    assert list(back.columns[:4]) == ["p0_px", "p0_py", "p0_pz", "p0_E"]
    assert read_metadata(path) == {"run": "x", "pid": [21, 21, 6, 2, -1, 5], "status": [-1, -1, 2, 1, 1, 1]}


def test_bad_input_is_refused_by_name(tmp_path):
    rec = _record(2)
    with pytest.raises(InputError, match="unsupported event format '.txt'"):
        write_events(tmp_path / "ev.txt", rec)
    with pytest.raises(InputError, match="needs particles"):
        write_events(tmp_path / "ev.lhe", pd.DataFrame({"a": [1.0]}))
    with pytest.raises(InputError, match="pid must have shape"):
        write_events(tmp_path / "ev.lhe", EventRecord(momenta=rec.momenta, pid=[1, 2], status=rec.status))
    bad = rec.momenta.copy()
    bad[1, 2, 0] = np.nan
    with pytest.raises(InputError, match="NaN/inf values \\(first in event 1\\)"):
        write_events(tmp_path / "ev.hepmc", EventRecord(momenta=bad, pid=rec.pid, status=rec.status))
    assert not list(tmp_path.iterdir())  # nothing half-written
    with pytest.raises(InputError, match="not an event record"):
        read_events(tmp_path / "ev.parquet")
    with pytest.raises(FileNotFoundError):
        read_events(tmp_path / "missing.lhe")


def test_read_events_refuses_mixed_particle_content(tmp_path):
    a = write_events(tmp_path / "a.lhe", _record(2)).read_text()
    b = write_events(tmp_path / "b.lhe", EventRecord(momenta=_record(1).momenta[:, 3:], pid=[1, 2, 3],
                                                    status=[1, 1, 1])).read_text()
    mixed = a.replace("</LesHouchesEvents>", b[b.index("<event>"):])
    (tmp_path / "mixed.lhe").write_text(mixed)
    with pytest.raises(InputError, match="event 2 has particles"):
        read_events(tmp_path / "mixed.lhe")


# ---- the Butter-Plehn-Winterhalder ttbar record and Pythia 8 ----------------------------------------------------
M_QUARK = np.array([0.0, 0.0, 4.7, 0.0, 0.0, 4.7])  # data_prep.ttbar_partons: u, d, s, c massless, b 4.7 GeV


def _generated_ttbar(n, seed):
    """``(n, 24)`` ttbar -> 6 quark events as the BPW generator emits them: Pythia 8 hard-process events
    (data_prep.ttbar_partons) with each quark's three-momentum smeared by 1 % and the energy put on shell with the
    generator's quark masses (its on-shell layer), so pT balances only to ~1 %, as in generated events."""
    pythia8mc = pytest.importorskip("pythia8mc")
    from data_prep import ttbar_partons

    pythia = pythia8mc.Pythia("", False)
    for s in ["Print:quiet = on", "Random:setSeed = on", f"Random:seed = {seed}", *ttbar_partons.pythia_settings()]:
        assert pythia.readString(s), s
    assert pythia.init()
    events = []
    while len(events) < n:
        if pythia.next():
            events.append(np.array(ttbar_partons.decay_chain(pythia.process)[0]))
    q = np.array(events)
    q[..., :3] *= 1.0 + 0.01 * np.random.default_rng(seed).normal(size=q[..., :3].shape)
    q[..., 3] = np.sqrt((q[..., :3] ** 2).sum(-1) + M_QUARK**2)
    return q.reshape(n, 24)


def _masses(x):
    """W+, t, W-, t~ masses of ``(n, 24)`` events (GeV)."""
    q = x.reshape(len(x), 6, 4)

    def m(p):
        return np.sqrt(np.maximum(p[:, 3] ** 2 - (p[:, :3] ** 2).sum(-1), 0.0))

    return np.stack([m(q[:, 0] + q[:, 1]), m(q[:, :3].sum(1)), m(q[:, 3] + q[:, 4]), m(q[:, 3:].sum(1))], 1)


def test_transverse_boost_keeps_every_mass_and_balances_pt():
    from papers.butter_plehn_winterhalder import lhe

    rng = np.random.default_rng(2)
    q = rng.normal(0, 60, (50, 6, 4))
    q[..., 3] = np.sqrt((q[..., :3] ** 2).sum(-1) + M_QUARK**2)
    b = lhe.boost_to_zero_pt(q)
    np.testing.assert_allclose(b.sum(1)[:, :2], 0.0, atol=1e-9)
    np.testing.assert_allclose(b.sum(1)[:, 2], q.sum(1)[:, 2], rtol=1e-12)
    np.testing.assert_allclose(_masses(b.reshape(50, 24)), _masses(q.reshape(50, 24)), rtol=1e-9)
    np.testing.assert_allclose(np.sqrt(np.maximum(b[..., 3] ** 2 - (b[..., :3] ** 2).sum(-1), 0)), M_QUARK[None] *
                               np.ones((50, 1)), atol=1e-5)
    rec = lhe.event_record(q.reshape(50, 24)).arrays()
    p = rec["momenta"]
    np.testing.assert_allclose(p[:, :2].sum(1), p[:, 6:].sum(1), atol=1e-8)  # in = out, all four components
    np.testing.assert_allclose(p[:, 2] - p[:, 4] - p[:, 8], 0.0, atol=1e-9)  # t = W+ + b


def _shower(path, n):
    """Shower and hadronise the LHE file with Pythia 8; returns the per-event W+, t, W-, t~ masses rebuilt from
    the daughters in Pythia's hard-process record, the number of events Pythia refused, the error lines of its
    statistics and the number of showered events with final-state partons (none expected)."""
    pythia8mc = pytest.importorskip("pythia8mc")
    pythia = pythia8mc.Pythia("", False)
    for s in ["Print:quiet = on", "Beams:frameType = 4", f"Beams:LHEF = {path}", "Random:setSeed = on",
              "Random:seed = 11", "Check:event = on"]:
        assert pythia.readString(s), s
    assert pythia.init()
    masses, refused, partonic = [], 0, 0
    for _ in range(n):
        if not pythia.next():
            assert not pythia.infoPython().atEndOfFile(), "Pythia read fewer events than written"
            refused += 1
            continue
        proc, ev = pythia.process, pythia.event
        row = []
        for pid in (24, 6, -24, -6):
            i = next(k for k in range(proc.size()) if proc[k].id() == pid)
            kids = [k for k in range(proc[i].daughter1(), proc[i].daughter2() + 1) if k > 0]
            p = np.sum([[proc[k].px(), proc[k].py(), proc[k].pz(), proc[k].e()] for k in kids], axis=0)
            if pid in (6, -6):  # rebuild the top from its W's daughters and the b
                w = next(k for k in kids if abs(proc[k].id()) == 24)
                b = next(k for k in kids if abs(proc[k].id()) == 5)
                p = np.sum([[proc[k].px(), proc[k].py(), proc[k].pz(), proc[k].e()] for k in
                            [*range(proc[w].daughter1(), proc[w].daughter2() + 1), b]], axis=0)
            row.append(np.sqrt(max(p[3] ** 2 - (p[:3] ** 2).sum(), 0.0)))
        masses.append(row)
        final = [ev[k] for k in range(ev.size()) if ev[k].isFinal()]
        partonic += any(q.isParton() for q in final) or not any(q.isHadron() for q in final)
    # Pythia writes its error statistics to the C++ stdout: capture file descriptor 1
    with tempfile.TemporaryFile(mode="w+") as buf:
        saved = os.dup(1)
        os.dup2(buf.fileno(), 1)
        try:
            pythia.stat()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        buf.seek(0)
        errors = [line.strip(" |") for line in buf.read().splitlines()
                  if ("Error in" in line or "Abort from" in line)]
    return np.array(masses), refused, errors, partonic


def _pythia_check(tmp_path, n, seed):
    from papers.butter_plehn_winterhalder import lhe

    x = _generated_ttbar(n, seed)
    imbalance = np.abs(x.reshape(n, 6, 4).sum(1)[:, :2]).max()
    assert imbalance > 0.1  # GeV: the generated events do not balance pT (hence the boost)
    path = lhe.write_lhe(x, tmp_path / "ttbar.lhe", comment="test")
    masses, refused, errors, partonic = _shower(path, n)
    assert refused == 0 and errors == [] and partonic == 0
    assert masses.shape == (n, 4)
    np.testing.assert_allclose(masses, _masses(x), rtol=1e-7)
    assert 60 < np.median(masses[:, 0]) < 100 and 150 < np.median(masses[:, 1]) < 200


def test_pythia_showers_generated_ttbar_lhe(tmp_path):
    _pythia_check(tmp_path, n=4, seed=3)


@pytest.mark.slow
def test_pythia_showers_generated_ttbar_lhe_many(tmp_path):
    _pythia_check(tmp_path, n=200, seed=4)


def test_unbalanced_record_is_what_pythia_refuses(tmp_path):
    """The reason for the boost: written as generated (balance="none"), Pythia's momentum check refuses events."""
    from papers.butter_plehn_winterhalder import lhe

    x = _generated_ttbar(4, seed=3)
    path = lhe.write_lhe(x, tmp_path / "raw.lhe", balance="none")
    _, refused, errors, _ = _shower(path, 4)
    assert refused > 0 and any("energy-momentum not conserved" in e for e in errors)
