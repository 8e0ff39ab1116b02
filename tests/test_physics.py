import numpy as np
import pytest
import vector

from gan4hep import physics


@pytest.fixture
def leptons():
    rng = np.random.default_rng(3)
    n = 200
    return dict(pt0=rng.uniform(20, 200, n), eta0=rng.uniform(-2.5, 2.5, n), phi0=rng.uniform(-np.pi, np.pi, n),
                m0=np.full(n, 0.000511), pt1=rng.uniform(20, 200, n), eta1=rng.uniform(-2.5, 2.5, n),
                phi1=rng.uniform(-np.pi, np.pi, n), m1=np.full(n, 0.10566), met=rng.uniform(0, 300, n),
                met_phi=rng.uniform(-np.pi, np.pi, n))


def test_delta_phi_wraps():
    assert physics.delta_phi(3.0, -3.0) == pytest.approx(2 * np.pi - 6.0)
    assert physics.delta_phi(-3.0, 3.0, signed=True) == pytest.approx(2 * np.pi - 6.0)
    assert physics.delta_phi(3.0, -3.0, signed=True) == pytest.approx(6.0 - 2 * np.pi)
    assert physics.delta_phi(0.5, 0.2) == pytest.approx(0.3)
    d = physics.delta_phi(np.linspace(-10, 10, 101), 0.3)
    assert d.min() >= 0 and d.max() <= np.pi


def test_dilepton_features_match_vector(leptons):
    f = physics.dilepton_features(**leptons)
    a = vector.array({"pt": leptons["pt0"], "eta": leptons["eta0"], "phi": leptons["phi0"], "mass": leptons["m0"]})
    b = vector.array({"pt": leptons["pt1"], "eta": leptons["eta1"], "phi": leptons["phi1"], "mass": leptons["m1"]})
    ll = a + b
    np.testing.assert_allclose(f["pt_l0"], np.maximum(a.pt, b.pt))
    np.testing.assert_allclose(f["pt_l1"], np.minimum(a.pt, b.pt))
    np.testing.assert_allclose(f["pt_ll"], ll.pt, rtol=1e-10)
    np.testing.assert_allclose(f["m_ll"], ll.mass, rtol=1e-7)
    np.testing.assert_allclose(f["dphi_ll"], np.abs(a.deltaphi(b)), atol=1e-12)
    np.testing.assert_allclose(f["dr_ll"], a.deltaR(b), atol=1e-12)
    met = vector.array({"pt": leptons["met"], "phi": leptons["met_phi"]})
    et_ll = np.sqrt(ll.pt**2 + ll.mass**2)
    mt2 = (et_ll + met.pt) ** 2 - ((ll.px + met.px) ** 2 + (ll.py + met.py) ** 2)
    np.testing.assert_allclose(f["mt"], np.sqrt(mt2), rtol=1e-7)


def test_cartesian_round_trip_and_mass():
    p = physics.to_cartesian(50.0, 1.2, -2.0, 10.0)
    np.testing.assert_allclose(physics.to_cylindrical(*p), (50.0, 1.2, -2.0, 10.0))
    w = physics.to_cartesian(30.0, 0.3, 0.1, 0.0), physics.to_cartesian(40.0, -0.5, 2.5, 0.0)
    v = vector.obj(px=w[0][0], py=w[0][1], pz=w[0][2], E=w[0][3]) + \
        vector.obj(px=w[1][0], py=w[1][1], pz=w[1][2], E=w[1][3])
    assert physics.invariant_mass(*w) == pytest.approx(v.mass)


def test_mt_of_back_to_back_massless_w():
    # W at rest decaying transversely: mT = mW for both definitions
    assert physics.mt_two_body(40.2, 0.0, 40.2, np.pi) == pytest.approx(80.4)
    assert physics.mt_ww(0.0, 0.0, 0.0, 0.0, 0.0) == 0.0


def _massless_pairs(n=500, seed=11):
    """Random massless lepton pairs and MET: the 6 underlying quantities and the cartesian features."""
    rng = np.random.default_rng(seed)
    args = dict(pt0=rng.uniform(20, 200, n), eta0=rng.uniform(-2.5, 2.5, n), phi0=rng.uniform(-np.pi, np.pi, n),
                m0=0.0, pt1=rng.uniform(20, 200, n), eta1=rng.uniform(-2.5, 2.5, n),
                phi1=rng.uniform(-np.pi, np.pi, n), m1=0.0, met=rng.uniform(0, 300, n),
                met_phi=rng.uniform(-np.pi, np.pi, n))
    reference = physics.dilepton_features(**args)
    lead = args["pt0"] >= args["pt1"]
    eta_l, eta_s = np.where(lead, args["eta0"], args["eta1"]), np.where(lead, args["eta1"], args["eta0"])
    ll = physics.sum_vectors(physics.to_cartesian(args["pt0"], args["eta0"], args["phi0"], 0.0),
                             physics.to_cartesian(args["pt1"], args["eta1"], args["phi1"], 0.0))
    underlying = dict(pt0=reference["pt_l0"], pt1=reference["pt_l1"], deta=np.abs(eta_l - eta_s),
                      dphi=reference["dphi_ll"], met=args["met"],
                      dphi_met=physics.delta_phi(args["met_phi"], physics.phi(ll[0], ll[1])))
    return underlying, reference


def test_massless_pair_features_match_the_cartesian_reference():
    underlying, reference = _massless_pairs()
    ours = physics.dilepton_features_massless(**underlying)
    assert list(ours) == list(physics.DILEPTON_FEATURES)
    for name in physics.DILEPTON_FEATURES:
        np.testing.assert_allclose(ours[name], reference[name], rtol=1e-9, atol=1e-9, err_msg=name)
    u = underlying
    np.testing.assert_allclose(physics.pair_pt(u["pt0"], u["pt1"], u["dphi"]), reference["pt_ll"], rtol=1e-10)
    np.testing.assert_allclose(physics.pair_mass(u["pt0"], u["pt1"], u["deta"], u["dphi"]), reference["m_ll"],
                               rtol=1e-8)


def test_numpy_and_keras_ops_paths_agree():
    from keras import ops

    underlying, _ = _massless_pairs(seed=12)
    with_np = physics.dilepton_features_massless(**underlying)
    with_ops = physics.dilepton_features_massless(**{k: ops.convert_to_tensor(v, "float64")
                                                     for k, v in underlying.items()}, lib=ops)
    for name in physics.DILEPTON_FEATURES:
        np.testing.assert_allclose(np.asarray(with_ops[name]), with_np[name], rtol=1e-12, atol=1e-12, err_msg=name)
    # the Keras layer's guard: a finite gradient where a square root's argument vanishes
    import tensorflow as tf

    pt = tf.Variable([30.0, 30.0])
    with tf.GradientTape() as tape:
        m = physics.pair_mass(pt, pt, ops.zeros(2), ops.zeros(2), lib=ops, eps=1e-12)  # collinear: m = 0
    assert np.all(np.asarray(m) < 1e-5) and np.all(np.isfinite(tape.gradient(m, pt)))


def test_mt_ww_polar_matches_mt_ww():
    rng = np.random.default_rng(5)
    px, py, m_ll = rng.normal(0, 50, 100), rng.normal(0, 50, 100), rng.uniform(0, 150, 100)
    met, met_phi = rng.uniform(0, 200, 100), rng.uniform(-np.pi, np.pi, 100)
    cartesian = physics.mt_ww(px, py, m_ll, met * np.cos(met_phi), met * np.sin(met_phi))
    polar = physics.mt_ww_polar(np.hypot(px, py), m_ll, met, physics.delta_phi(met_phi, np.arctan2(py, px)))
    np.testing.assert_allclose(polar, cartesian, rtol=1e-9, atol=1e-6)


def test_underlying_quantities_round_trip_the_cartesian_features():
    """``dilepton_underlying`` inverts the feature map: from features computed from full massless momenta
    (``dilepton_features``, an independent path) back to the 6 quantities, and forward again to the same features;
    the Keras layer gives the numpy values."""
    from gan4hep.layers import DileptonFeatures

    underlying, reference = _massless_pairs(n=2000, seed=21)
    features = np.stack([reference[name] for name in physics.DILEPTON_FEATURES], axis=1)
    u = physics.dilepton_underlying(features)
    np.testing.assert_allclose(u[:, 0], underlying["pt0"], rtol=1e-12)
    np.testing.assert_allclose(u[:, 1], underlying["pt1"] / underlying["pt0"], rtol=1e-12)
    np.testing.assert_allclose(u[:, 2], underlying["deta"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(u[:, 5], underlying["dphi_met"], atol=2e-5)
    assert np.all((u[:, 1] > 0) & (u[:, 1] <= 1)) and np.all((u[:, 5] >= 0) & (u[:, 5] <= np.pi))
    np.testing.assert_allclose(physics.dilepton_features_from_underlying(u), features, rtol=1e-7, atol=1e-6)
    layer = np.asarray(DileptonFeatures()(u.astype(np.float32)), dtype=np.float64)
    np.testing.assert_allclose(layer, features, rtol=2e-3, atol=2e-3)
    with pytest.raises(ValueError, match="pt_l0"):
        physics.dilepton_underlying(np.vstack([features[:2], np.zeros(8)]))
    with pytest.raises(ValueError, match="8"):
        physics.dilepton_underlying(features[:, :6])
