import numpy as np
import pytest

pytest.importorskip("pythia8mc")

from gan4hep import io, physics  # noqa: E402
from data_prep import ttbar_partons  # noqa: E402


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("tp") / "tp.root"
    return out, ttbar_partons.make_sample(out, events=400, seed=3, block_size=200, progress=False)


def _vectors(df):
    return [tuple(df[f"p{i}_{c}"].to_numpy() for c in ("px", "py", "pz", "E")) for i in range(6)]


def test_masses_peak_and_momentum_balances(sample):
    _, path = sample
    df = io.read_table(path, columns=ttbar_partons.COLUMNS)
    assert len(df) == 400
    v = _vectors(df)
    for w, top in (((0, 1), (0, 1, 2)), ((3, 4), (3, 4, 5))):
        assert abs(np.median(physics.invariant_mass(*(v[i] for i in w))) - 80.4) < 1.0
        assert abs(np.median(physics.invariant_mass(*(v[i] for i in top))) - 173.0) < 1.0
    scale = np.abs(sum(x[3] for x in v)).max()
    assert np.abs(sum(x[0] for x in v)).max() < 1e-9 * scale
    assert np.abs(sum(x[1] for x in v)).max() < 1e-9 * scale
    masses = np.array([physics.mass(*x) for x in v])
    np.testing.assert_allclose(masses[[0, 1, 3, 4]], 0.0, atol=1e-3)
    np.testing.assert_allclose(masses[[2, 5]], 4.7, atol=1e-3)


def test_order_and_mothers(sample):
    out, _ = sample
    full = io.read_table(out)
    ids = full[[f"p{i}_id" for i in range(6)]].to_numpy()
    assert (ids[:, 2] == 5).all() and (ids[:, 5] == -5).all()
    assert (ids[:, [0, 3]] > 0).all() and (ids[:, [1, 4]] < 0).all()
    # top side: W+ -> up-type quark + down-type antiquark
    assert np.isin(ids[:, 0], [2, 4]).all() and np.isin(ids[:, 1], [-1, -3]).all()
    for c in ("px", "py", "pz", "E"):
        np.testing.assert_allclose(full[f"w1_{c}"], full[f"p0_{c}"] + full[f"p1_{c}"], atol=1e-6)
        np.testing.assert_allclose(full[f"t2_{c}"], full[f"p3_{c}"] + full[f"p4_{c}"] + full[f"p5_{c}"], atol=1e-6)


def test_same_seed_same_events(sample, tmp_path):
    _, path = sample
    again = ttbar_partons.make_sample(tmp_path / "x.root", events=400, seed=3, block_size=200, progress=False)
    np.testing.assert_array_equal(io.read_table(again).to_numpy(), io.read_table(path).to_numpy())
    other = ttbar_partons.make_sample(tmp_path / "y.root", events=200, seed=4, block_size=200, progress=False)
    assert not np.allclose(io.read_table(other)["p0_px"], io.read_table(path)["p0_px"][:200])
