"""Tests for gan4hep.plotting: every figure writes PNG + PDF, and the plotted numbers are the right ones."""

import matplotlib
import numpy as np
import pandas as pd
import pytest

from gan4hep import plotting as P


@pytest.fixture
def rng():
    return np.random.default_rng(7)


@pytest.fixture
def frames(rng):
    n = 2000
    a = rng.normal(50, 10, n)
    ref = pd.DataFrame({"pt": a, "met": 0.5 * a + rng.normal(0, 5, n), "eta": rng.normal(0, 1, n)})
    b = rng.normal(52, 12, n)
    gen = pd.DataFrame({"pt": b, "met": rng.normal(25, 7, n), "eta": rng.normal(0, 1.1, n)})
    return ref, gen


def _check_written(paths, tmp_path, stem):
    assert [p.name for p in paths] == [f"{stem}.png", f"{stem}.pdf"]
    png, pdf = (tmp_path / f"{stem}.png"), (tmp_path / f"{stem}.pdf")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 1000
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_hist_ratio_numbers_and_files(rng, tmp_path):
    ref = rng.normal(0, 1, 5000)
    g1 = rng.normal(0.2, 1, 3000)
    g2 = rng.normal(0, 1.3, 4000)
    w1 = rng.uniform(0.5, 1.5, 3000)
    edges = np.linspace(-3, 3, 25)
    res = P.hist_ratio(ref, {"GAN": g1, "VAE": g2}, bins=edges, xlabel="x", weights={"GAN": w1})
    # numpy: normalised densities with overflow folded into the end bins, errors sqrt(sum w^2)
    r, _ = np.histogram(np.clip(ref, -3, 3), edges)
    g, _ = np.histogram(np.clip(g1, -3, 3), edges, weights=w1)
    gw2, _ = np.histogram(np.clip(g1, -3, 3), edges, weights=w1**2)
    width = np.diff(edges)
    rd, gd = r / (r.sum() * width), g / (g.sum() * width)
    np.testing.assert_allclose(res.ref_counts, rd)
    np.testing.assert_allclose(res.counts["GAN"], gd)
    np.testing.assert_allclose(res.errors["GAN"], np.sqrt(gw2) / (g.sum() * width))
    np.testing.assert_allclose(res.ratio["GAN"], gd / rd)
    expected_err = (gd / rd) * np.sqrt(gw2 / g**2 + 1.0 / r)
    np.testing.assert_allclose(res.ratio_errors["GAN"], expected_err)
    assert res.means["GAN"] == pytest.approx(np.average(g1, weights=w1))
    assert res.means["Reference"] == pytest.approx(ref.mean())
    assert set(res.ratio) == {"GAN", "VAE"}
    # the ratio panel shows exactly those points
    pts = res.rax.containers[0].lines[0].get_ydata()
    np.testing.assert_allclose(pts, gd / rd)
    assert np.mean(res.ratio["VAE"][[0, -1]]) > 1.5  # wider generator: more in the tails
    _check_written(P.save_figure(res.fig, tmp_path / "hist"), tmp_path, "hist")


def test_hist_ratio_raw_counts_empty_reference_bin_and_one_axes(rng):
    fig = P._figure((5, 5))
    ax = fig.add_subplot()
    res = P.hist_ratio(np.array([0.1, 0.2, 0.3]), np.array([0.1, 0.7, 0.8]), bins=[0, 0.5, 1], ax=ax,
                       density=False, show_means=False)
    np.testing.assert_allclose(res.ref_counts, [3, 0])
    np.testing.assert_allclose(res.counts["Generated"], [1, 2])
    assert res.ratio["Generated"][0] == pytest.approx(1 / 3) and np.isnan(res.ratio["Generated"][1])
    assert res.rax is not ax and res.means == {}


def test_hist_ratio_bad_input_names_sample(rng):
    g = rng.normal(size=10)
    g[2] = np.nan
    with pytest.raises(ValueError, match="GAN"):
        P.hist_ratio(rng.normal(size=10), {"GAN": g}, bins=5, xlabel="pt")


def test_grid_hist_ratio(frames, tmp_path):
    ref, gen = frames
    fig, out = P.grid_hist_ratio(ref, {"WGAN": gen}, ["pt", "met", "eta"], ["$p_T$", "MET", r"$\eta$"],
                                 bins={"eta": np.linspace(-3, 3, 13), "pt": 20, "met": 20}, ncols=2)
    assert set(out) == {"pt", "met", "eta"}
    assert len(out["eta"].edges) == 13
    assert out["met"].means["WGAN"] == pytest.approx(gen.met.mean())
    _check_written(P.save_figure(fig, tmp_path / "grid"), tmp_path, "grid")
    # arrays with names as labels
    fig2, out2 = P.grid_hist_ratio(ref.values, gen.values, ["pt", "met", "eta"], bins=10)
    e = out2["met"].edges
    np.testing.assert_allclose(out2["met"].counts["Generated"],
                               np.histogram(np.clip(gen.met, e[0], e[-1]), e, density=True)[0])
    with pytest.raises(ValueError, match="mll"):
        P.grid_hist_ratio(ref, gen, ["pt", "mll"])


def _drawn_cdf(line, t):
    """The value at each of ``t`` of a drawn step curve (matplotlib "steps-post": y[i] from x[i] on)."""
    assert line.get_drawstyle() == "steps-post"
    x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
    i = np.searchsorted(x, t, side="right") - 1
    return np.where(i >= 0, y[np.clip(i, 0, None)], 0.0)


def _ecdf(sample, t, weights=None):
    order = np.argsort(sample)
    w = np.ones(len(sample)) if weights is None else np.asarray(weights, float)[order]
    cum = np.r_[0.0, np.cumsum(w) / w.sum()]
    return cum[np.searchsorted(np.asarray(sample)[order], t, side="right")]


def test_cdf_plots(frames, tmp_path):
    """The drawn curves are the empirical CDFs of the samples (checked at every data point, and weighted), and the
    legend's KS is their largest distance, scipy's two-sample KS statistic."""
    from scipy import stats

    ref, gen = frames
    fig, ax = P.cdf_plot(ref.pt, {"GAN": gen.pt}, xlabel="pt")
    ks = stats.ks_2samp(ref.pt, gen.pt).statistic
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Reference", f"GAN (KS {ks:.3f})"]
    line_ref, line_gen = ax.get_lines()
    t = np.sort(np.r_[ref.pt, gen.pt, ref.pt.min() - 1, gen.pt.max() + 1])
    np.testing.assert_allclose(_drawn_cdf(line_ref, t), _ecdf(ref.pt, t), atol=1e-12)
    np.testing.assert_allclose(_drawn_cdf(line_gen, t), _ecdf(gen.pt, t), atol=1e-12)
    assert np.max(np.abs(_drawn_cdf(line_ref, t) - _drawn_cdf(line_gen, t))) == pytest.approx(ks)
    _check_written(P.save_figure(fig, tmp_path / "cdf"), tmp_path, "cdf")

    w = np.linspace(0.5, 2.0, len(gen))
    _, ax = P.cdf_plot(ref.pt, {"GAN": gen.pt}, weights={"GAN": w})
    np.testing.assert_allclose(_drawn_cdf(ax.get_lines()[1], t), _ecdf(gen.pt, t, w), atol=1e-9)

    fig = P.grid_cdf_plot(ref, gen, ["pt", "met", "eta"], ncols=2)
    panels = [a for a in fig.axes if a.get_visible() and a.get_lines()]
    assert [a.get_xlabel() for a in panels] == ["pt", "met", "eta"]
    for a, col in zip(panels, ["pt", "met", "eta"]):
        t = np.sort(np.r_[ref[col], gen[col]])
        np.testing.assert_allclose(_drawn_cdf(a.get_lines()[0], t), _ecdf(ref[col], t), atol=1e-12)
        np.testing.assert_allclose(_drawn_cdf(a.get_lines()[1], t), _ecdf(gen[col], t), atol=1e-12)
    _check_written(P.save_figure(fig, tmp_path / "cdf_grid"), tmp_path, "cdf_grid")


def test_correlation_heatmaps(frames, tmp_path):
    ref, gen = frames
    fig, (cr, cg, d) = P.correlation_heatmaps(ref, gen, ["pt", "met", "eta"])
    np.testing.assert_allclose(cr, np.corrcoef(ref.values.T))
    np.testing.assert_allclose(d, np.corrcoef(gen.values.T) - np.corrcoef(ref.values.T))
    assert len(fig.axes) == 6  # three heatmaps + three colour bars
    _check_written(P.save_figure(fig, tmp_path / "corr"), tmp_path, "corr")


def test_hist2d_and_compare(frames, tmp_path):
    ref, gen = frames
    fig, ax, counts, xe, ye = P.hist2d(ref.pt, ref.met, bins=20, xlabel="pt", ylabel="met", log=True)
    np.testing.assert_allclose(counts, np.histogram2d(ref.pt, ref.met, bins=20)[0])
    _check_written(P.save_figure(fig, tmp_path / "h2"), tmp_path, "h2")
    fig, (cr, cg), xe, ye = P.hist2d_compare((ref.pt, ref.met), (gen.pt, gen.met), bins=15)
    assert cr.sum() == pytest.approx(1) and cg.sum() == pytest.approx(1)
    _check_written(P.save_figure(fig, tmp_path / "h2c"), tmp_path, "h2c")


def test_training_curves(tmp_path):
    hist = {"d_loss": [1.0, 0.8, 0.7], "g_loss": [2.0, 1.5, 1.2], "val_d_loss": [1.1, 0.9, 0.8]}
    fig, ax = P.training_curves(hist)
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert lines["val_d_loss"].get_color() == lines["d_loss"].get_color()
    assert lines["val_d_loss"].get_linestyle() == "--"
    np.testing.assert_allclose(lines["g_loss"].get_ydata(), hist["g_loss"])
    _check_written(P.save_figure(fig, tmp_path / "loss"), tmp_path, "loss")
    with pytest.raises(ValueError, match="w_dist"):
        P.training_curves(hist, keys=["w_dist"])


def test_save_figure_suffix_handling_and_global_state(tmp_path):
    backend, rc = matplotlib.get_backend(), matplotlib.rcParams["font.size"]
    fig, _ = P.training_curves({"loss": [1, 2]})
    paths = P.save_figure(fig, tmp_path / "sub" / "mT_1.5")
    assert [p.name for p in paths] == ["mT_1.5.png", "mT_1.5.pdf"] and all(p.stat().st_size > 0 for p in paths)
    fig, _ = P.training_curves({"loss": [1, 2]})
    assert [p.name for p in P.save_figure(fig, tmp_path / "x.png")] == ["x.png", "x.pdf"]
    assert matplotlib.get_backend() == backend and matplotlib.rcParams["font.size"] == rc
