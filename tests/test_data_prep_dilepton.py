import awkward as ak
import numpy as np
import pytest
import vector

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")

from gan4hep import io  # noqa: E402
from data_prep import dilepton, wt_process  # noqa: E402


def _objects(el, mu, jets, met):
    """Hand-made events: lists of (PT, Eta, Phi, Charge) / (PT, Eta, Phi, Mass, BTag) / (MET, Phi)."""
    def coll(rows, fields):
        return ak.Array([[dict(zip(fields, r)) for r in ev] for ev in rows])
    return {"Electron": coll(el, ["PT", "Eta", "Phi", "Charge"]), "Muon": coll(mu, ["PT", "Eta", "Phi", "Charge"]),
            "Jet": coll(jets, ["PT", "Eta", "Phi", "Mass", "BTag"]), "MissingET": coll(met, ["MET", "Phi"])}


HAND = _objects(
    el=[[(60.0, 0.5, 0.1, -1)], [(60.0, 0.5, 0.1, -1)], [(60.0, 0.5, 0.1, -1), (30.0, 1.0, 2.0, 1)],
        [(60.0, 0.5, 0.1, -1)], [(24.0, 0.5, 0.1, -1)]],
    mu=[[(40.0, -1.0, 2.5, 1)], [(40.0, -1.0, 2.5, -1)], [(40.0, -1.0, 2.5, 1)], [(40.0, -1.0, 2.5, 1)],
        [(40.0, -1.0, 2.5, 1)]],
    jets=[[(50.0, 0.0, -1.0, 5.0, 1), (25.0, 3.0, 1.0, 3.0, 0)], [(50.0, 0.0, -1.0, 5.0, 1)],
          [(50.0, 0.0, -1.0, 5.0, 1)], [(50.0, 0.0, -1.0, 5.0, 0)], [(50.0, 0.0, -1.0, 5.0, 1)]],
    met=[[(70.0, -2.0)]] * 5,
)


def test_selection_and_features_on_hand_made_events():
    df = dilepton.features_from_objects(HAND)
    # event 0 passes; 1 same sign; 2 three leptons; 3 no b-tag; 4 electron below 25 GeV
    assert len(df) == 1
    row = df.iloc[0]
    e = vector.obj(pt=60.0, eta=0.5, phi=0.1, mass=dilepton.M_E)
    m = vector.obj(pt=40.0, eta=-1.0, phi=2.5, mass=dilepton.M_MU)
    ll = e + m
    met = vector.obj(pt=70.0, phi=-2.0)
    mt = np.sqrt((np.hypot(ll.pt, ll.mass) + met.pt) ** 2 - ((ll.px + met.px) ** 2 + (ll.py + met.py) ** 2))
    expected = dict(pt_l0=60.0, pt_l1=40.0, pt_ll=ll.pt, m_ll=ll.mass, met=70.0, mt=mt,
                    dphi_ll=abs(e.deltaphi(m)), dr_ll=e.deltaR(m))
    for k, v in expected.items():
        assert row[k] == pytest.approx(v, rel=1e-7), k
    assert row["njet"] == 1 and row["nbjet"] == 1


def _write_delphes(path, objs, drop=()):
    objs = {k: v for k, v in objs.items()}
    if drop:
        coll, field = drop.split(".")
        objs[coll] = ak.zip({f: objs[coll][f] for f in objs[coll].fields if f != field})
    io.write_root(path, {"Delphes": objs}, delphes_trees=("Delphes",))


def test_delphes_reader_and_missing_branch(tmp_path):
    path = tmp_path / "delphes.root"
    _write_delphes(path, HAND)
    df = dilepton.read_delphes(path)
    ref = dilepton.features_from_objects(HAND)
    np.testing.assert_allclose(df[list(dilepton.FEATURES)], ref[list(dilepton.FEATURES)])
    _write_delphes(tmp_path / "bad.root", HAND, drop="Jet.BTag")
    with pytest.raises(KeyError, match=r"bad\.root.*Jet\.BTag"):
        dilepton.read_delphes(tmp_path / "bad.root")
    with pytest.raises(FileNotFoundError):
        dilepton.read_delphes(tmp_path / "none.root")


def test_hadron_flavour_codes():
    codes = ak.Array([[511, 5122, 10521, 421, 4122, 211, 5, 5103, 2212, 553]])
    assert ak.to_list(dilepton._hadron_flavour(codes))[0] == [5, 5, 5, 4, 4, 0, 0, 0, 0, 5]


def test_wt_matrix_element_is_gauge_invariant():
    for s, t in [(400.0**2, -2.0e4), (1000.0**2, -3.0e5)]:
        assert wt_process.ward_identity_residual(s, t) < 1e-8
        assert wt_process.me2_summed(s, t, 172.5, 80.4) > 0


def test_wt_matrix_element_batched_equals_one_at_a_time():
    # Pythia's sigmaKin evaluates both orientations (t and u) in one call; each must equal the single evaluation.
    s, m3, m4 = 700.0**2, 170.0, 81.0
    ts = np.array([-1.0e4, -1.2e5, -3.0e5])
    batched = wt_process.me2_summed(s, ts, m3, m4)
    single = [wt_process.me2_summed(s, t, m3, m4) for t in ts]
    np.testing.assert_allclose(batched, single, rtol=1e-12)
    assert len(set(np.round(single, 6))) == 3  # the three points differ: the comparison is not trivial


@pytest.fixture(scope="module")
def small_sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("dl") / "dl.root"
    path = dilepton.make_sample(out, events=400, seed=5, mpi=False, block_size=200, progress=False)
    return out, path


def test_small_sample(small_sample):
    out, path = small_sample
    df = io.read_table(path, columns=list(dilepton.FEATURES) + ["weight", "process"])
    assert len(df) > 20
    assert set(df["process"].astype(str)) <= {"ttbar", "Wt"}
    assert (df.pt_l0 >= df.pt_l1).all() and (df.pt_l1 > 25).all()
    assert 20 < df.m_ll.median() < 250 and 0 <= df.dphi_ll.max() <= np.pi
    meta = io.read_metadata(path)
    assert meta["events_generated"] == 400 and meta["events_selected"] == len(df)
    # ttbar dilepton (e/mu/tau) at LO ~ 50 pb; Wt adds ~ 5.5 pb
    assert 35 < meta["sigma_ttbar_pb"] < 70 and 3 < meta["sigma_wt_pb"] < 9
    # the Delphes-style tree gives back the same features
    again = dilepton.read_delphes(out)
    np.testing.assert_allclose(again[list(dilepton.FEATURES)], df[list(dilepton.FEATURES)])


def test_same_seed_same_events_whatever_the_split(small_sample, tmp_path):
    _, path = small_sample
    ref = io.read_table(path)
    second = dilepton.make_sample(tmp_path / "b1.root", events=400, seed=5, mpi=False, block_size=200,
                                  job_index=1, n_jobs=2, progress=False)
    part = io.read_table(second)
    n_first = (io.read_metadata(path)["events_selected"] - len(part))
    np.testing.assert_allclose(part[list(dilepton.FEATURES)], ref[list(dilepton.FEATURES)].iloc[n_first:])


def test_merge_parts_gives_the_full_sample(small_sample, tmp_path):
    from data_prep import merge

    out, path = small_sample
    parts = []
    for k in range(2):
        part = tmp_path / f"part{k}.root"
        dilepton.make_sample(part, events=400, seed=5, mpi=False, block_size=200, job_index=k, n_jobs=2,
                             progress=False)
        parts.append(part)
    merged = merge.merge(parts, tmp_path / "all.root")
    np.testing.assert_allclose(io.read_table(merged)[list(dilepton.FEATURES)],
                               io.read_table(path)[list(dilepton.FEATURES)])
    np.testing.assert_allclose(dilepton.read_delphes(tmp_path / "all.root")[list(dilepton.FEATURES)],
                               dilepton.read_delphes(out)[list(dilepton.FEATURES)])
    assert io.read_metadata(merged)["events_generated"] == 400


def test_validate_writes_means_table(small_sample, tmp_path):
    from data_prep import validate

    _, path = small_sample
    text = validate.validate_dilepton(path, tmp_path)
    table = io.read_table(tmp_path / "dilepton_means.csv")
    assert list(table.feature) == list(dilepton.FEATURES)
    assert table.loc[table.feature == "m_ll", "published"].item() == 89.262
    assert (tmp_path / "dilepton_features.png").stat().st_size > 1000 and "published" in text
