"""Shipped generators (issue 23): every model in gan4hep/pretrained_models loads, generates finite events inside its
support, reproduces the reference table of its card within the card's tolerances, and is the file the card was made
from (SHA-256), so a stale or broken shipped model fails here; ``gan4hep generate --pretrained`` and the paper's
``generate.py --pretrained`` work without a run folder, training, Pythia or the paper packages."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from gan4hep import cli, pretrained
from gan4hep.errors import InputError
from gan4hep.io import read_metadata, read_table

SHIPPED = pretrained.available()


def test_the_lebese_ruan_generator_is_shipped_and_small():
    assert "lebese_ruan:gan" in SHIPPED
    size = sum(p.stat().st_size for p in pretrained.ROOT.rglob("*") if p.is_file())
    assert size <= 20e6, f"shipped models take {size / 1e6:.1f} MB (limit ~20 MB)"
    assert pretrained.get("lebese_ruan").name == pretrained.get("lebese_ruan:gan").name == "lebese_ruan:gan"


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_reproduces_its_reference_table(name):
    item = pretrained.get(name)
    card = item.card
    assert pretrained.sha256(item.model_file) == card["sha256"], "model.keras is not the file the card was made from"
    ref = card["reference"]
    df = item.generate(ref["test_events"], seed=ref["test_seed"])
    assert list(df.columns) == item.columns and len(df) == ref["test_events"]
    assert np.isfinite(df.to_numpy()).all()
    assert item.outside_support(df) == {}
    assert pretrained.check_reference(df, ref) == []
    # the card holds what a user needs to judge the model
    for key in ("preset", "seed", "data", "training", "fidelity", "support", "units"):
        assert card[key] is not None, key
    assert card["training"]["train_minutes"] > 0 and card["fidelity"]["table"]
    text = (item.path / "MODEL_CARD.md").read_text()
    assert "must not be used for" in text and card["sha256"][:16] in text


def test_reference_check_catches_a_shifted_model():
    """The check is not vacuous: a generator whose output moved by 0.15 standard deviations in one feature, or whose
    spread grew by 20 %, fails it."""
    item = pretrained.get("lebese_ruan")
    ref = item.card["reference"]
    df = item.generate(ref["test_events"], seed=ref["test_seed"])
    std = ref["statistics"]["m_ll"]["std"]
    shifted = df.assign(m_ll=df["m_ll"] + 0.15 * std)
    failures = pretrained.check_reference(shifted, ref)
    assert failures and all(f.startswith("m_ll ") for f in failures)
    assert any(f.startswith("m_ll mean") for f in failures)
    wider = df.assign(met=df["met"].mean() + 1.2 * (df["met"] - df["met"].mean()))
    assert any(f.startswith("met q") for f in pretrained.check_reference(wider, ref))


def test_generation_is_reproducible_and_chunk_independent_in_count():
    item = pretrained.get("lebese_ruan")
    sampler = item.load()
    a = item.generate(3000, seed=5, sampler=sampler, chunk=1000)
    b = item.generate(3000, seed=5, sampler=sampler, chunk=1000)
    pd.testing.assert_frame_equal(a, b)
    assert len(item.generate(2500, seed=5, sampler=sampler, chunk=1000)) == 2500
    assert len(item.generate(0, seed=5, sampler=sampler)) == 0
    assert not item.generate(3000, seed=6, sampler=sampler, chunk=1000).equals(a)


def test_unknown_name_is_refused_with_the_list():
    with pytest.raises(InputError, match="no pretrained model 'nope'; shipped: .*lebese_ruan:gan"):
        pretrained.get("nope")
    with pytest.raises(InputError, match="no pretrained model 'lebese_ruan:vae'"):
        pretrained.get("lebese_ruan:vae")


@pytest.mark.parametrize("suffix", [".parquet", ".root"])
def test_cli_generate_pretrained(tmp_path, capsys, suffix):
    out = tmp_path / f"toys{suffix}"
    assert cli.main(["generate", "--pretrained", "lebese_ruan", "--events", "4000", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "4000 events from the pretrained lebese_ruan:gan" in printed and "events/s" in printed
    df = read_table(out)
    item = pretrained.get("lebese_ruan")
    assert list(df.columns) == item.features and len(df) == 4000
    assert np.isfinite(df.to_numpy()).all() and item.outside_support(df) == {}
    pd.testing.assert_frame_equal(df, item.generate(4000, seed=0), check_dtype=False)  # --seed default 0
    if suffix == ".root":
        assert read_metadata(out)["pretrained"] == "lebese_ruan:gan"


def test_cli_generate_errors(tmp_path, capsys):
    assert cli.main(["generate", "--pretrained", "nope", "--events", "10", "--out", str(tmp_path / "a.parquet")]) == 2
    assert "no pretrained model 'nope'" in capsys.readouterr().err
    assert cli.main(["generate", "--out", str(tmp_path / "a.parquet"), "--events", "10"]) == 2
    assert "either --run RUN or --pretrained NAME" in capsys.readouterr().err
    assert cli.main(["generate", "--pretrained", "lebese_ruan", "--out", str(tmp_path / "a.parquet")]) == 2
    assert "--events N" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_paper_generate_script_pretrained(tmp_path, capsys):
    from papers.lebese_ruan import generate

    out = tmp_path / "toys.csv"
    generate.main(["--pretrained", "--samples", "3000", "--out", str(out), "--seed", "3"])
    assert "events/s" in capsys.readouterr().out
    df = read_table(out)
    assert len(df) == 3000 and np.isfinite(df.to_numpy()).all()
    assert pretrained.get("lebese_ruan").outside_support(df) == {}


def test_fresh_install_needs_no_pythia_and_no_paper(tmp_path):
    """In a fresh interpreter where pythia8mc, fastjet, data_prep and papers cannot be imported, the console script
    generates from the shipped model."""
    out = tmp_path / "toys.parquet"
    code = textwrap.dedent(f"""
        import sys
        for blocked in ("pythia8mc", "fastjet", "data_prep", "papers"):
            sys.modules[blocked] = None  # import raises ImportError
        from gan4hep import cli
        sys.exit(cli.main(["generate", "--pretrained", "lebese_ruan", "--events", "2000", "--out", {str(out)!r}]))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(read_table(out)) == 2000


@pytest.mark.slow
def test_acceptance_one_million_toys(tmp_path, capsys):
    """The issue's acceptance: 1e6 finite events inside the selection's support, events/s printed."""
    out = tmp_path / "toys.parquet"
    assert cli.main(["generate", "--pretrained", "lebese_ruan", "--events", "1000000", "--out", str(out)]) == 0
    assert "events/s" in capsys.readouterr().out
    df = read_table(out)
    item = pretrained.get("lebese_ruan")
    assert len(df) == 1_000_000 and np.isfinite(df.to_numpy()).all() and item.outside_support(df) == {}
    cut = item.card["data"]["tail_cut_90pct"]
    assert all((df[f] <= cut[f]).all() for f in item.features)  # the paper's tail cut: the selection's upper edge
    assert json.loads((item.path / "card.json").read_text())["preset"] == "quick"


def test_generation_record_and_shipped_line(tmp_path):
    """The card's generation entry (rounded, with the machine and the script) and the line printed after shipping
    (the folder's size, the card's wall-clock seconds per million)."""
    record = pretrained.generation_record((12.3456, 20.0049), "papers/x/pretrained.py")
    assert record["seconds_per_million_events"] == 12.35 and record["cpu_seconds_per_million_events"] == 20.0
    assert record["machine"].endswith("measured by papers/x/pretrained.py")
    (tmp_path / "card.json").write_text(json.dumps({"generation": record}))
    (tmp_path / "model.keras").write_bytes(b"x" * 1_000_000)
    size = sum(f.stat().st_size for f in tmp_path.iterdir())
    assert pretrained.shipped_line("runs/r", tmp_path, "jets") == (
        f"shipped runs/r -> {tmp_path} ({size / 1e6:.2f} MB, 12.35 s wall-clock per million jets)")


def test_lebese_ruan_model_card_of_one_run_gives_the_mean_alone():
    """A model shipped without --spread (one run: no standard deviation) gets its card instead of a TypeError."""
    from papers.lebese_ruan import pretrained as lebese

    card = json.loads((pretrained.ROOT / "lebese_ruan" / "gan" / "card.json").read_text())
    for entries in card["fidelity"]["spread"].values():
        for entry in (entries.values() if isinstance(entries, dict) else []):
            if isinstance(entry, dict) and "std" in entry:
                entry["std"], entry["values"] = None, entry["values"][:1]
    line = next(x for x in lebese.model_card(card).splitlines() if x.startswith("- on each run's own test MC"))
    assert "+-" not in line and "worst ks" in line
