"""The shipped FlashSim quick-preset flow ``vaselli:flow`` (issue 23): a conditional model of 15 jet targets given a
generator jet's 14 conditioning values; its card names both, with the derived reconstructed pT and mass; the
conditioning acts (b jets get b-tags, pT scales with the generator pT); it loads without the ``papers`` package.
(Its reference table is checked by tests/test_pretrained.py; context handling by the Lin, Bhimji & Nachman tests.)"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from gan4hep import pretrained
from gan4hep.io import read_table

NAME = "vaselli:flow"
CONDITIONING = ["mu1_dr", "mu1_pt", "mu1_deta", "mu1_dphi", "mu2_dr", "mu2_pt", "mu2_deta", "mu2_dphi", "gen_eta",
                "gen_mass", "gen_phi", "gen_pt", "parton_flavour", "hadron_flavour"]
TARGETS = ["area", "btag", "ctag", "eta_minus_gen", "mass_ratio", "n_constituents", "phi_minus_gen", "pt_ratio", "qgl",
           "mu_ef", "ch_had_ef", "ne_had_ef", "ch_em_ef", "ne_em_ef", "jet_id"]


@pytest.fixture(scope="module")
def item():
    return pretrained.get(NAME)


def test_card_names_the_fifteen_targets_and_fourteen_conditioning_columns(item):
    assert NAME in pretrained.available()
    assert item.context_columns == CONDITIONING and item.features == TARGETS
    assert item.columns == CONDITIONING + TARGETS + ["pt", "mass"]
    table = item.context_table()
    assert list(table.columns) == CONDITIONING and len(table) == item.card["context"]["rows"] == 5000
    assert (table["gen_pt"] > 15).all() and (table["gen_eta"].abs() < 2.5).all()
    assert set(np.unique(table["hadron_flavour"])) <= {0.0, 4.0, 5.0}
    spread = item.card["fidelity"]["spread"]
    assert spread["n_runs"] == 3 and len(spread["classifier_auc"]["values"]) == 3
    assert set(spread["wasserstein_over_std"]) == set(TARGETS)
    assert item.card["preset"] == "quick" and item.card["postprocessed"] is False


def test_conditioning_acts(item):
    """Same jets, flavour set to b or to light: the b-tag discriminant separates them; pt = pt_ratio x gen_pt;
    doubling the generator pT roughly doubles the reconstructed pT."""
    sampler = item.load()
    jets = item.context_table().iloc[:1000].reset_index(drop=True)
    b = item.generate(context=jets.assign(parton_flavour=5.0, hadron_flavour=5.0), seed=4, sampler=sampler)
    light = item.generate(context=jets.assign(parton_flavour=21.0, hadron_flavour=0.0), seed=4, sampler=sampler)
    assert b["btag"].mean() > light["btag"].mean() + 0.3
    np.testing.assert_allclose(b["pt"], np.maximum(b["pt_ratio"] * b["gen_pt"], 0.0))
    np.testing.assert_allclose(b["mass"], np.maximum(b["mass_ratio"] * b["gen_mass"], 0.0))
    hard = item.generate(context=jets.assign(gen_pt=2 * jets["gen_pt"]), seed=4, sampler=sampler)
    assert 1.7 < hard["pt"].mean() / b["pt"].mean() < 2.3


def test_loads_without_the_papers_package(tmp_path, item):
    """The FlashSim flow's layers (LU-linear, ResidualNet, spline coupling) deserialise from gan4hep alone."""
    ctx = tmp_path / "genjets.parquet"
    item.context_table().iloc[:300].to_parquet(ctx)
    out = tmp_path / "jets.parquet"
    code = textwrap.dedent(f"""
        import sys
        for blocked in ("pythia8mc", "fastjet", "data_prep", "papers"):
            sys.modules[blocked] = None
        from gan4hep import cli
        sys.exit(cli.main(["generate", "--pretrained", {NAME!r}, "--context", {str(ctx)!r}, "--out", {str(out)!r}]))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    df = read_table(out)
    assert len(df) == 300 and list(df.columns) == item.columns and np.isfinite(df.to_numpy()).all()
