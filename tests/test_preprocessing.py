import json

import numpy as np
import pandas as pd
import pytest

from gan4hep import preprocessing as pp
from gan4hep.preprocessing import Log, MinMax, Pipeline, Scale, Standardise, TailClip

NAMES = ["pt_l0", "pt_l1", "met", "dphi"]


def _events(n=5000, seed=0):
    rng = np.random.default_rng(seed)
    return np.column_stack([
        25 + rng.exponential(60, n),
        25 + rng.exponential(30, n),
        rng.exponential(50, n),
        rng.uniform(-np.pi, np.pi, n),
    ])


@pytest.mark.parametrize("make", [
    lambda: MinMax(),
    lambda: MinMax(-1, 1, columns=[0, 2]),
    lambda: Standardise(),
    lambda: Standardise(columns=[3]),
    lambda: Log(columns=[0, 1]),
    lambda: Log(offset=1.0, columns=[2]),
    lambda: Scale(450.0),
    lambda: Pipeline([Log(offset=1.0, columns=[0, 1, 2]), Standardise(), MinMax()]),
    lambda: Pipeline([Log(columns=["pt_l0", "pt_l1"]), MinMax(columns=["met", "dphi"]), Standardise()],
                     names=NAMES),
])
def test_round_trip(make):
    x = _events()
    t = make().fit(x)
    y = t.transform(x)
    assert y.shape == x.shape and not np.allclose(y, x)
    np.testing.assert_allclose(t.inverse_transform(y), x, rtol=1e-6, atol=1e-6)
    # on events not seen in the fit
    x2 = _events(seed=1)[:500]
    x2 = x2[(x2 >= x.min(0)).all(1)]
    np.testing.assert_allclose(t.inverse_transform(t.transform(x2)), x2, rtol=1e-6, atol=1e-6)


def test_columns_subset_leaves_others_untouched():
    x = _events()
    y = Log(columns=[1]).fit_transform(x)
    np.testing.assert_array_equal(y[:, [0, 2, 3]], x[:, [0, 2, 3]])
    np.testing.assert_allclose(y[:, 1], np.log(x[:, 1]))


def test_minmax_exact_edges():
    x = _events()
    y = MinMax().fit_transform(x)
    assert np.all(y.min(axis=0) == 0.0) and np.all(y.max(axis=0) == 1.0)
    y = MinMax(-1.0, 1.0).fit_transform(x)
    np.testing.assert_allclose(y.min(0), -1.0, atol=1e-15)
    np.testing.assert_allclose(y.max(0), 1.0, atol=1e-15)


def test_standardise_moments():
    y = Standardise().fit_transform(_events())
    np.testing.assert_allclose(y.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.std(0), 1.0, atol=1e-12)


@pytest.mark.parametrize("t", [
    MinMax(columns=[0, 2]),
    Standardise(),
    Log(offset=0.5, columns=["met"]),
    TailClip(0.8, columns=[0, 1]),
    TailClip(0.9, mode="drop_events"),
    Pipeline([TailClip(0.95), Log(offset=1.0, columns=[0, 1, 2]), Standardise(), MinMax()], names=NAMES),
])
def test_json_save_load_reproduces_exactly(tmp_path, t):
    x = _events()
    t.fit(x, names=NAMES)
    path = t.save(tmp_path / "sub" / "prep.json")
    assert json.loads(path.read_text())["format"] == "gan4hep.preprocessing"
    assert not list(path.parent.glob(".*tmp*"))  # atomic write leaves no temporary behind
    back = pp.load(path)
    assert type(back) is type(t)
    assert back.to_json() == t.to_json()
    x2 = _events(seed=3)
    if isinstance(t, TailClip) and t.mode == "drop_events":
        np.testing.assert_array_equal(back.mask(x2), t.mask(x2))
    else:
        np.testing.assert_array_equal(back.transform(x2), t.transform(x2))
        np.testing.assert_array_equal(back.inverse_transform(t.transform(x2)), t.inverse_transform(t.transform(x2)))
    again = type(t).from_json(t.to_json())
    assert again.to_json() == t.to_json()


def test_unfitted_round_trip_and_errors(tmp_path):
    p = Pipeline([MinMax()], names=NAMES)
    back = Pipeline.from_json(p.to_json())
    assert not back.fitted and back.names == NAMES
    with pytest.raises(RuntimeError, match="not fitted"):
        back.transform(_events())
    with pytest.raises(FileNotFoundError, match="nope.json"):
        pp.load(tmp_path / "nope.json")
    with pytest.raises(ValueError, match="format"):
        Pipeline.from_json(json.dumps({"class": "Pipeline"}))


def test_tailclip_clip_quantile():
    x = _events(20000)
    t = TailClip(0.9).fit(x)
    q = np.quantile(x, 0.9, axis=0)
    np.testing.assert_array_equal(t.threshold_, q)
    y = t.transform(x)
    np.testing.assert_array_equal(y.max(axis=0), q)
    below = x <= q
    np.testing.assert_array_equal(y[below], x[below])
    frac_at_edge = (y == q).mean(axis=0)
    np.testing.assert_allclose(frac_at_edge, 0.1, atol=1e-3)
    # documented: not invertible on clipped values, identity otherwise
    np.testing.assert_array_equal(t.inverse_transform(y), y)


def test_tailclip_drop_events_mask_fraction():
    x = _events(20000)
    one = TailClip(0.9, mode="drop_events", columns=[2]).fit(x)
    m = one.mask(x)
    assert m.dtype == bool and m.shape == (len(x),)
    assert abs(m.mean() - 0.9) < 1e-3
    assert np.all(x[m, 2] <= np.quantile(x[:, 2], 0.9)) and np.all(x[~m, 2] > np.quantile(x[:, 2], 0.9))

    # independent features: an event survives with probability 0.9^k
    allcols = TailClip(0.9, mode="drop_events").fit(x)
    frac = allcols.mask(x).mean()
    assert abs(frac - 0.9 ** 4) < 4 * np.sqrt(0.9 ** 4 * (1 - 0.9 ** 4) / len(x))
    with pytest.raises(TypeError, match="mask"):
        allcols.transform(x)
    with pytest.raises(TypeError, match="event filter"):
        Pipeline([allcols])


def test_tailclip_bad_args():
    with pytest.raises(ValueError, match="not possible"):
        TailClip(0.9, mode="drop_feature")
    with pytest.raises(ValueError, match="quantile"):
        TailClip(1.5)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_error_names_column(bad):
    x = _events(100)
    x[17, 2] = bad
    with pytest.raises(ValueError, match=r"column 2 \('met'\).*row 17"):
        Pipeline([MinMax()], names=NAMES).fit(x)
    with pytest.raises(ValueError, match=r"column 2\b"):
        MinMax().fit(x)
    p = Pipeline([Standardise()], names=NAMES).fit(_events(100))
    with pytest.raises(ValueError, match=r"inverse_transform: column 2 \('met'\)"):
        p.inverse_transform(x)
    df = pd.DataFrame(x, columns=NAMES)
    with pytest.raises(ValueError, match="'met'"):
        Standardise().fit(df)


def test_wrong_feature_count_names_expected():
    p = Pipeline([MinMax()], names=NAMES).fit(_events(100))
    with pytest.raises(ValueError, match=r"expected 4 features \(pt_l0, pt_l1, met, dphi\), got 3"):
        p.transform(_events(100)[:, :3])
    with pytest.raises(ValueError, match="expected 4 features, got 5"):
        MinMax().fit(_events(100)).transform(np.ones((3, 5)))
    with pytest.raises(ValueError, match="2-d"):
        MinMax().fit(np.ones(5))
    with pytest.raises(ValueError, match="3 names given for 4 features"):
        Pipeline([MinMax()], names=NAMES[:3]).fit(_events(100))


def test_log_nonpositive_names_column():
    x = _events(100)
    x[5, 3] = -1.0
    with pytest.raises(ValueError, match=r"column 3 \('dphi'\).*x \+ offset <= 0"):
        Log().fit(x, names=NAMES)
    Log(offset=4.0, columns=["dphi"]).fit(x, names=NAMES)  # offset makes it valid
    t = Log(columns=[0]).fit(_events(100))
    bad = _events(10)
    bad[2, 0] = 0.0
    with pytest.raises(ValueError, match="column 0"):
        t.transform(bad)


def test_constant_column_and_column_errors():
    x = _events(100)
    x[:, 1] = 3.0
    with pytest.raises(ValueError, match=r"column 1 \('pt_l1'\) is constant"):
        MinMax().fit(x, names=NAMES)
    with pytest.raises(ValueError, match="no feature named 'mll'"):
        MinMax(columns=["mll"]).fit(_events(100), names=NAMES)
    with pytest.raises(ValueError, match="out of range"):
        MinMax(columns=[4]).fit(_events(100))
    with pytest.raises(ValueError, match="no feature names"):
        MinMax(columns=["met"]).fit(_events(100))


def test_dataframe_names_are_used():
    df = pd.DataFrame(_events(200), columns=NAMES)
    p = Pipeline([Log(columns=["pt_l0"]), MinMax()]).fit(df)
    assert p.names_ == NAMES
    np.testing.assert_allclose(p.inverse_transform(p.transform(df)), df.to_numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="differ from the fitted names"):
        p.transform(df[NAMES[::-1]])


def test_scale_is_a_fixed_division_and_survives_json():
    x = _events()
    t = Pipeline([Scale(450.0)]).fit(x)
    np.testing.assert_array_equal(t.transform(x), x / 450.0)
    np.testing.assert_array_equal(Pipeline.from_json(t.to_json()).transform(x), x / 450.0)
    with pytest.raises(ValueError, match="non-zero"):
        Scale(0.0)
