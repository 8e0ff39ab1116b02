"""data_prep.drell_yan: the B (gamma*/Z) and S (gamma*) hard samples with their cross sections, the
Collins-Soper angle, and the detector-level Z -> mu mu sample whose m_ll peaks at the Z mass."""

import numpy as np
import pytest

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")

from gan4hep import io  # noqa: E402
from data_prep import drell_yan, runner  # noqa: E402

M_Z = 91.19


@pytest.fixture(scope="module")
def hard(tmp_path_factory):
    d = tmp_path_factory.mktemp("dy")
    out = {}
    for mode in ("B", "S"):
        path = drell_yan.make_sample(d / f"{mode}.root", 2000, 5, drell_yan.Settings(mode=mode, m_min=50, m_max=130),
                                     block_size=1000, progress=False)
        out[mode] = (io.read_table(path), io.read_metadata(path))
    return out


def test_settings_are_checked():
    with pytest.raises(runner.InputError):
        drell_yan.Settings(mode="X")
    with pytest.raises(runner.InputError):
        drell_yan.Settings(m_min=100, m_max=50)
    s = drell_yan.pythia_settings(drell_yan.Settings(mode="S"))
    assert "WeakZ0:gmZmode = 1" in s and "23:onIfMatch = 13 -13" in s


def test_hard_samples_are_back_to_back_muons_in_the_window(hard):
    for mode, (df, meta) in hard.items():
        assert len(df) == 2000 and meta["mode"] == mode
        assert df["m_ll"].between(50, 130).all()
        np.testing.assert_allclose(df["pt_lm"], df["pt_lp"], rtol=1e-6)
        np.testing.assert_allclose(df["pt_ll"], 0.0, atol=1e-6)
        assert df["cos_theta"].abs().max() <= 1 + 1e-9
        # no dilepton pT: with p* = sqrt(m^2 / 4 - m_mu^2), cos theta_CS = 2 p* cos theta / m, so
        # pT^2 = p*^2 - (m cos theta_CS / 2)^2
        m = df["m_ll"]
        expected = np.sqrt(m**2 / 4 - 0.10566**2 - (m * df["cos_theta"] / 2) ** 2)
        np.testing.assert_allclose(df["pt_lm"], expected, rtol=1e-4, atol=1e-3)


def test_b_has_the_z_peak_and_the_larger_cross_section(hard):
    (b, mb), (s, ms) = hard["B"], hard["S"]
    assert mb["sigma_pb"] > 5 * ms["sigma_pb"] > 0
    assert abs(np.median(b["m_ll"]) - M_Z) < 2.0
    assert np.median(s["m_ll"]) < 80  # the photon falls with the mass
    assert mb["sigma_err_pb"] < 0.05 * mb["sigma_pb"]


def test_collins_soper_angle_of_a_boosted_pair():
    # a mu- along +z in the rest frame of a pair of mass 90 GeV, boosted along z: cos theta = 1
    m, y = 90.0, 0.7
    lm = {"px": np.array([0.0]), "py": np.array([0.0]), "pz": np.array([m / 2 * np.cosh(y) + m / 2 * np.sinh(y)]),
          "e": np.array([m / 2 * np.cosh(y) + m / 2 * np.sinh(y)])}
    lp = {"px": np.array([0.0]), "py": np.array([0.0]), "pz": np.array([m / 2 * np.sinh(y) - m / 2 * np.cosh(y)]),
          "e": np.array([m / 2 * np.cosh(y) - m / 2 * np.sinh(y)])}
    f = drell_yan.dilepton_kinematics(lm, lp)
    assert f["m_ll"][0] == pytest.approx(m)
    assert f["y_ll"][0] == pytest.approx(y)
    assert f["cos_theta"][0] == pytest.approx(1.0)


def test_detector_level_mll_peaks_at_the_z_mass(tmp_path):
    """The sample of zll.py with the quick settings (no MPI, no pile-up), 600 events."""
    path = drell_yan.make_sample(tmp_path / "z.root", 600, 2, drell_yan.Settings(level="detector"),
                                 block_size=600, progress=False)
    df = io.read_table(path)
    assert 150 < len(df) < 400  # ~38 % pass two opposite-sign muons above 20 GeV
    assert list(df.columns[:len(drell_yan.DETECTOR_COLUMNS)]) == list(drell_yan.DETECTOR_COLUMNS)
    assert abs(np.median(df["m_ll"]) - M_Z) < 1.5
    counts, edges = np.histogram(df["m_ll"], np.arange(60, 121, 4))
    assert abs(edges[np.argmax(counts)] + 2 - M_Z) <= 4
    assert (df["mu0_pt"] >= df["mu1_pt"]).all() and (df["mu1_pt"] > drell_yan.MU_PT_MIN).all()
    assert (df["n_pv"] == 1).all()
    assert df[["mu0_iso", "mu1_iso"]].to_numpy().min() >= 0 and df[["mu0_iso", "mu1_iso"]].to_numpy().max() < 0.2
    # zero-padded jets: a jet slot is all zeros or has pT above the stored threshold
    for i in range(drell_yan.N_JETS):
        pt = df[f"jet{i}_pt"]
        assert ((pt == 0) | (pt > 15.0)).all()
        assert (df.loc[pt == 0, [f"jet{i}_eta", f"jet{i}_m"]] == 0).all().all()
    # n_jets15 counts every jet; the five slots hold the leading ones
    in_slots = (df[[f"jet{i}_pt" for i in range(drell_yan.N_JETS)]] > 15).sum(axis=1)
    assert (df["n_jets15"] >= in_slots).all()
    few = df["n_jets15"] <= drell_yan.N_JETS
    assert (df.loc[few, "n_jets15"] == in_slots[few]).all()


@pytest.mark.slow
def test_pileup_adds_vertices_and_missing_pt(tmp_path):
    path = drell_yan.make_sample(tmp_path / "pu.root", 100, 3, drell_yan.Settings(level="detector", pileup=5),
                                 block_size=100, progress=False)
    df = io.read_table(path)
    assert df["n_pv"].mean() == pytest.approx(6.0, abs=1.5)
    assert df["n_pv"].min() >= 1
