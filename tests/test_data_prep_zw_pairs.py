"""data_prep.zw_pairs: pp -> ZW -> (l+ l-)(q q') parton / detector pairs (Butter & Plehn review, Figs. 19-20)."""

import numpy as np
import pytest

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")

from gan4hep import io  # noqa: E402
from data_prep import runner, zw_pairs  # noqa: E402

M_Z, M_W = 91.19, 80.38


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    path = zw_pairs.make_sample(tmp_path_factory.mktemp("zw") / "zw.root", 400, 3, block_size=400, progress=False)
    return io.read_table(path), io.read_metadata(path)


def _p4(df, name):
    pt, eta, phi, e = (df[f"p_{name}_{c}"].to_numpy() for c in ("pt", "eta", "phi", "e"))
    return np.stack([e, pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], axis=1)


def _mass(p):
    return np.sqrt(np.maximum(p[:, 0] ** 2 - (p[:, 1:] ** 2).sum(axis=1), 0.0))


def test_settings_are_checked():
    with pytest.raises(runner.InputError):
        zw_pairs.Settings(n_jets_min=3, n_jets_max=2)
    with pytest.raises(runner.InputError):
        zw_pairs.Settings(n_jets_max=5)
    s = zw_pairs.pythia_settings(zw_pairs.Settings())
    assert "WeakDoubleBoson:ffbar2ZW = on" in s and "24:onIfAny = 1 2 3 4 5" in s


def test_columns_selection_and_cross_section(pairs):
    df, meta = pairs
    assert list(df.columns) == list(zw_pairs.COLUMNS)
    assert meta["events_generated"] == 400 and meta["events_selected"] == len(df)
    assert 40 < len(df) < 160  # ~20 % pass two same-flavour leptons and 2-4 jets
    assert df["n_jets"].isin([2, 3, 4]).all() and set(df["flavour"]) <= {11, 13}
    assert (df["d_l0_charge"] * df["d_l1_charge"] == -1).all()
    assert (df["d_l0_pt"] >= df["d_l1_pt"]).all() and (df["d_l1_pt"] > 15).all()
    for i in range(4):  # jets above the cut where present, zero-padded beyond n_jets
        present = df["n_jets"] > i
        assert (df.loc[present, f"d_j{i}_pt"] > 25).all() and (df.loc[present, f"d_j{i}_eta"].abs() < 2.5).all()
        assert (df.loc[~present, [f"d_j{i}_{c}" for c in ("pt", "eta", "phi", "m")]] == 0).all().all()
    assert 0.5 < meta["sigma_pb"] < 2.0  # pp -> ZW with Z -> ee/mumu, W -> hadrons: ~1 pb at 13 TeV


def test_hard_process_balances_and_has_the_boson_masses(pairs):
    df, _ = pairs
    p = {n: _p4(df, n) for n in zw_pairs.PARTONS}
    total = sum(p.values())
    np.testing.assert_allclose(total[:, 1:3], 0.0, atol=1e-6)  # pT balance of the 2 -> 2 process
    assert abs(np.median(_mass(p["lm"] + p["lp"])) - M_Z) < 3
    assert abs(np.median(_mass(p["q1"] + p["q2"])) - M_W) < 3
    assert (df["p_q1_pt"] >= df["p_q2_pt"]).all()


def test_to_hard_frame_preserves_mass_and_sums_to_the_boson():
    rng = np.random.default_rng(1)
    n = 5

    def on_shell(p3, mass):
        return np.column_stack([np.sqrt(mass**2 + (p3**2).sum(axis=1)), p3])

    d1 = on_shell(rng.normal(0, 40, (n, 3)), 0.0)
    d2 = on_shell(rng.normal(0, 40, (n, 3)), 0.0)
    boson = on_shell(rng.normal(0, 50, (n, 3)), 1.0)
    boson[:, 0] = np.sqrt(_mass(d1 + d2) ** 2 + (boson[:, 1:] ** 2).sum(axis=1))  # same mass as the pair
    a, b = zw_pairs.to_hard_frame([d1, d2], boson)
    np.testing.assert_allclose(a + b, boson, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(_mass(a), 0.0, atol=1e-4)


def test_wprime_sample_balances_and_peaks_at_its_mass(tmp_path):
    """The injected resonance: W' (600 GeV) -> W Z with the same decays; the parton level is moved into the W'
    frame (no pT), so the four partons balance and their mass peaks at the W' mass."""
    path = zw_pairs.make_sample(tmp_path / "wp.root", 150, 4, zw_pairs.Settings(wprime_mass=600.0), block_size=150,
                                progress=False)
    df = io.read_table(path)
    assert len(df) > 40  # ~55 % pass: harder leptons and jets than the SM sample
    total = sum(_p4(df, n) for n in zw_pairs.PARTONS)
    np.testing.assert_allclose(total[:, 1:3], 0.0, atol=1e-6)
    assert abs(np.median(_mass(total)) - 600) < 15
    assert "NewGaugeBoson:ffbar2Wprime = on" in zw_pairs.pythia_settings(zw_pairs.Settings(wprime_mass=600.0))
    with pytest.raises(runner.InputError):
        zw_pairs.Settings(wprime_mass=-1.0)
