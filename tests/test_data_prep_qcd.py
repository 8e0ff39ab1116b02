import awkward as ak
import numpy as np
import pytest

pytest.importorskip("pythia8mc")
fastjet = pytest.importorskip("fastjet")

from gan4hep import io  # noqa: E402
from data_prep import qcd_jets  # noqa: E402


def test_regions_follow_table_1():
    cases = [  # njet, pT1, |deta12|, M_J^Sigma -> region
        (3, 250, 0.5, 300, 1), (3, 900, 2.0, 1500, 1), (2, 900, 2.0, 1500, 0), (1, 500, -1, 100, 0),
        (4, 450, 1.5, 500, 2), (4, 350, 1.5, 500, 0), (4, 450, 1.0, 1100, 3), (4, 450, 1.0, 900, 0),
        (4, 350, 1.0, 1500, 0), (5, 250, 1.5, 500, 2), (6, 250, 1.0, 850, 3), (5, 250, 1.0, 750, 0),
    ]
    n, pt, de, mj, want = (np.array(c) for c in zip(*cases))
    np.testing.assert_array_equal(qcd_jets.assign_region(n, pt, de, mj), want)


def test_event_table_on_hand_made_jets():
    jets = ak.Array([
        [{"pt": 500.0, "eta": 1.0, "phi": 0.0, "mass": 100.0, "ntrk": 20},
         {"pt": 300.0, "eta": -0.5, "phi": 3.0, "mass": 80.0, "ntrk": 30},
         {"pt": 250.0, "eta": 0.2, "phi": 1.0, "mass": 60.0, "ntrk": 10},
         {"pt": 210.0, "eta": 0.1, "phi": -1.0, "mass": 900.0, "ntrk": 15},
         {"pt": 205.0, "eta": 0.3, "phi": -2.0, "mass": 50.0, "ntrk": 12}],
        [],
        [{"pt": 220.0, "eta": 0.0, "phi": 0.0, "mass": 30.0, "ntrk": 9}],
    ])
    df = qcd_jets.event_table(jets, np.array([7, 8, 9]), np.array([1.0, 1.0, 0.5]))
    assert list(df["event"]) == [7] * 5 + [9]
    first = df[df.event == 7].iloc[0]
    assert first.njet == 5 and first.pt_lead == 500.0
    assert first.deta12 == pytest.approx(1.5) and first.sum_mj == pytest.approx(1140.0)
    assert first.region == 2 and first.region_name == "validation"  # N >= 5, |deta| > 1.4
    last = df[df.event == 9].iloc[0]
    assert last.deta12 == -1.0 and last.region == 0 and last.weight == 0.5


@pytest.fixture(scope="module")
def events():
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    for s in ["Print:quiet = on", "Next:numberCount = 0", "Random:setSeed = on", "Random:seed = 11",
              *qcd_jets.pythia_settings(pthat_min=300.0, bias=False)]:
        assert pythia.readString(s)
    assert pythia.init()
    return pythia, pythia.nextBatch(8, errorMode="skip")


def test_trimming_matches_fastjet_filter(events):
    pythia, batch = events
    cfg = qcd_jets.JetConfig()
    ours = qcd_jets.cluster_and_trim(batch.prt, qcd_jets.ChargeLookup(pythia), cfg)
    fastjet._swig.ClusterSequence.set_fastjet_banner_stream(None)
    n_checked = 0
    for i in range(len(batch)):
        prt = batch.prt[i]
        sel = (prt.status > 0) & ~np.isin(abs(prt.id), [12, 14, 16])
        p = prt.p[sel]
        pts = [fastjet.PseudoJet(float(a), float(b), float(c), float(d))
               for a, b, c, d in zip(p.px, p.py, p.pz, p.e)]
        pts = [q for q in pts if abs(q.eta()) < cfg.particle_eta_max]
        cs = fastjet.ClusterSequence(pts, fastjet.JetDefinition(fastjet.antikt_algorithm, 1.0))
        trimmer = fastjet.Filter(fastjet.JetDefinition(fastjet.kt_algorithm, 0.2), fastjet.SelectorPtFractionMin(0.05))
        ref = sorted((trimmer(j) for j in cs.inclusive_jets(200.0)), key=lambda j: -j.pt())
        ref = [j for j in ref if j.pt() > 200.0 and abs(j.eta()) < 2.0]
        got = ours[i]
        assert len(got) == len(ref)
        for j, r in zip(got, ref):
            assert j.pt == pytest.approx(r.pt(), rel=1e-9)
            assert j.mass == pytest.approx(r.m(), rel=1e-6, abs=1e-6)
            assert j.eta == pytest.approx(r.eta(), abs=1e-9)
            n_checked += 1
    assert n_checked >= 4
    assert ak.all(ours.mass <= ours.ungroomed_mass + 1e-9) and ak.all(ours.ntrk > 0)


def test_small_sample_round_trip(tmp_path):
    path = qcd_jets.make_sample(tmp_path / "q.root", events=60, seed=2, pthat_min=300.0, bias=False,
                                block_size=60, progress=False)
    df = io.read_table(path, columns=qcd_jets.JET_COLUMNS + ["weight"])
    assert len(df) > 20 and (df.pt > 200).all() and (df.eta.abs() < 2).all()
    assert (df.groupby("event").size() == df.groupby("event").njet.first()).all()
    import uproot

    with uproot.open(tmp_path / "q.root") as f:
        fat = f["events"].arrays(["FatJet.PT", "FatJet.Mass"])
    np.testing.assert_allclose(ak.flatten(fat["FatJet.PT"]), df.pt)
    assert io.read_metadata(path)["events_generated"] == 60
