"""Shipped Butter, Plehn & Winterhalder generators (issue 23): the quick-preset GAN and flow in
gan4hep/pretrained_models/butter_plehn_winterhalder load, are the files their cards were made from, reproduce the
reference table and the W / top peak fractions of their cards, emit on-shell four-vectors in GeV, and work through
``gan4hep generate --pretrained`` (both also with the paper packages unimportable)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from gan4hep import cli, pretrained
from gan4hep.io import read_table

PAPER = "butter_plehn_winterhalder"
KINDS = ("gan", "flow")
MASSES = (0.0, 0.0, 4.7, 0.0, 0.0, 4.7)  # GeV, the on-shell layer's (papers/butter_plehn_winterhalder/model.py)


def _masses(x):
    """W1, W2, t1, t2 masses (GeV) of (n, 24) events, computed here with numpy."""
    p = x.reshape(-1, 6, 4)
    out = []
    for idx in ((0, 1), (3, 4), (0, 1, 2), (3, 4, 5)):
        s = p[:, list(idx)].sum(1)
        out.append(np.sqrt(np.clip(s[:, 3] ** 2 - (s[:, :3] ** 2).sum(1), 0, None)))
    return np.stack(out, 1)


def test_both_are_shipped_and_small():
    names = pretrained.available()
    assert {f"{PAPER}:gan", f"{PAPER}:flow"} <= set(names)
    assert pretrained.get(PAPER).name == f"{PAPER}:gan"
    assert (pretrained.ROOT / PAPER / "flow" / "model.keras").stat().st_size < 3e6
    total = sum(p.stat().st_size for p in pretrained.ROOT.rglob("*") if p.is_file())
    assert total <= 20e6, f"shipped models take {total / 1e6:.1f} MB"


@pytest.mark.parametrize("kind", KINDS)
def test_shipped_model_reproduces_its_card(kind):
    item = pretrained.get(f"{PAPER}:{kind}")
    card = item.card
    assert pretrained.sha256(item.model_file) == card["sha256"]
    ref = card["reference"]
    df = item.generate(ref["test_events"], seed=ref["test_seed"])
    x = df.to_numpy()
    assert x.shape == (ref["test_events"], 24) and np.isfinite(x).all()
    assert item.outside_support(df) == {}
    assert pretrained.check_reference(df, ref) == []
    # the peaks: fractions of the W (top) candidates within 5 GeV of 80.4 (173.0) GeV, as on the card
    m = _masses(x)
    for name, cols, pole in (("W", slice(0, 2), 80.4), ("top", slice(2, 4), 173.0)):
        frac = np.mean(np.abs(m[:, cols] - pole) < 5)
        assert frac == pytest.approx(card["peaks"][f"{name}_within_5GeV"], abs=card["peaks"]["tolerance"])
    # four-vectors on shell with the six quark masses (the OnShell layer), energies in GeV
    p = x.reshape(-1, 6, 4)
    np.testing.assert_allclose(np.sqrt(np.clip(p[:, :, 3] ** 2 - (p[:, :, :3] ** 2).sum(-1), 0, None)).mean(0),
                               MASSES, atol=0.05)
    for key in ("preset", "seed", "data", "training", "fidelity", "support", "units"):
        assert card[key] is not None, key
    text = (item.path / "MODEL_CARD.md").read_text()
    assert "must not be used for" in text and card["sha256"][:16] in text


def test_the_flow_card_has_the_spread_and_the_flow_balances_pt():
    item = pretrained.get(f"{PAPER}:flow")
    spread = item.card["fidelity"]["spread_over_runs"]
    assert spread["n_runs"] >= 3 and spread["statistics"]["classifier_auc"]["std"] is not None
    x = item.generate(2000, seed=3).to_numpy().reshape(-1, 6, 4)
    np.testing.assert_allclose(x[:, :, :2].sum(1), 0, atol=0.05)  # parton-level ttbar pT = 0, built in


@pytest.mark.parametrize("kind", KINDS)
def test_cli_generate_pretrained(tmp_path, capsys, kind):
    out = tmp_path / "ttbar.parquet"
    name = PAPER if kind == "gan" else f"{PAPER}:flow"
    assert cli.main(["generate", "--pretrained", name, "--events", "3000", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"3000 events from the pretrained {PAPER}:{kind}" in printed and "events/s" in printed
    df = read_table(out)
    assert len(df) == 3000 and list(df.columns) == pretrained.get(name).features


@pytest.mark.parametrize("kind", KINDS)
def test_no_paper_package_is_needed(tmp_path, kind):
    """The shipped models use only core layers (the flow's output layer is gan4hep.layers.TTbarDecayChain): a fresh
    interpreter that cannot import papers, data_prep or Pythia generates from them."""
    out = tmp_path / "ttbar.parquet"
    code = textwrap.dedent(f"""
        import sys
        for blocked in ("pythia8mc", "fastjet", "data_prep", "papers"):
            sys.modules[blocked] = None
        from gan4hep import cli
        sys.exit(cli.main(["generate", "--pretrained", "{PAPER}:{kind}", "--events", "1000", "--out", {str(out)!r}]))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(read_table(out)) == 1000


def test_cards_are_valid_json_with_the_support_note():
    for kind in KINDS:
        card = json.loads((pretrained.ROOT / PAPER / kind / "card.json").read_text())
        assert "unbounded" in card["support_note"] and len(card["support"]) == 24
