"""End-to-end test of the ``gan4hep`` console script on a tiny table: train, resume, generate, evaluate, and the
errors a user can cause."""

import json

import numpy as np
import pandas as pd
import pytest

from gan4hep.cli import main


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 512
    c = rng.uniform(0, 1, n)
    df = pd.DataFrame({"pt": rng.exponential(30, n) + 20, "eta": rng.normal(0, 1.5, n), "m": 80 + 10 * c,
                       "c": c})
    path = tmp_path_factory.mktemp("data") / "events.parquet"
    df.to_parquet(path)
    return path, df


def _train(path, run, *extra):
    return main(["train", "--input", str(path), "--columns", "pt,eta,m", "--out", str(run), "--preset", "quick",
                 "--batch-size", "64", "--widths", "16,16", "--checkpoint-every", "5", "--verbose", "0", *extra])


def test_train_generate_evaluate(table, tmp_path, capsys):
    path, df = table
    run = tmp_path / "run"
    assert _train(path, run, "--steps", "10") == 0
    recipe = json.loads((run / "recipe.json").read_text())
    assert recipe["columns"] == ["pt", "eta", "m"] and recipe["objective"] == "wgan_gp" and recipe["n_critic"] == 5
    prep = json.loads((run / "preprocessing.json").read_text())
    assert prep["class"] == "Pipeline" and prep["steps"][0]["class"] == "MinMax"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["ckpt-000000005.npz", "ckpt-000000010.npz"]
    assert (run / "model.keras").exists()
    from gan4hep.models import load_sampler

    exported = load_sampler(run / "model.keras").sample(500, seed=1)  # physical units without the run folder
    assert 40 < exported[:, 2].mean() < 130
    assert "preset quick" in capsys.readouterr().out

    # a second call with more steps resumes at step 10 instead of starting again, with the run's own scaling
    frozen = (run / "preprocessing.json").read_bytes()
    assert _train(path, run, "--steps", "15") == 0
    assert "resuming at step 10, 5 steps to go" in capsys.readouterr().out
    assert (run / "preprocessing.json").read_bytes() == frozen
    assert (run / "checkpoints" / "ckpt-000000015.npz").exists()
    assert [h["step"] for h in json.loads((run / "losses.json").read_text())][-1] == 15
    assert json.loads((run / "recipe.json").read_text())["steps"] == 15
    assert json.loads((run / "results.json").read_text())["trained_steps"] == 15

    for ext in ("csv", "root"):
        out = tmp_path / f"gen.{ext}"
        assert main(["generate", "--run", str(run), "--samples", "300", "--out", str(out), "--seed", "3"]) == 0
        from gan4hep.io import read_table

        gen = read_table(out)
        assert list(gen.columns) == ["pt", "eta", "m"] and len(gen) == 300
        # min-max preprocessing is undone: values are in physical units (m near 80-90, not in [-1, 1])
        assert 40 < gen["m"].mean() < 130
    again = tmp_path / "again.csv"
    main(["generate", "--run", str(run), "--samples", "300", "--out", str(again), "--seed", "3"])
    assert np.allclose(pd.read_csv(again).to_numpy(), pd.read_csv(tmp_path / "gen.csv").to_numpy())

    capsys.readouterr()
    assert main(["evaluate", "--run", str(run), "--input", str(path), "--no-classifier"]) == 0
    printed = capsys.readouterr().out
    assert "preset quick" in printed and "| pt |" in printed
    ev = run / "evaluation"
    report = pd.read_csv(ev / "fidelity.csv", index_col=0)
    assert list(report.index) == ["pt", "eta", "m"] and "wasserstein" in report.columns
    assert (ev / "histograms.png").exists() and (ev / "histograms.pdf").exists()
    summary = json.loads((ev / "summary.json").read_text(), parse_constant=_not_strict_json)
    assert summary["step"] == 15
    assert summary["classifier_auc"] is None and summary["undefined"]["classifier_auc"] == \
        "not computed (--no-classifier)"


def _not_strict_json(name):
    raise ValueError(f"{name} is not strict JSON")


def test_conditional_run(table, tmp_path):
    path, df = table
    run = tmp_path / "crun"
    assert _train(path, run, "--steps", "5", "--context", "c", "--objective", "bce") == 0
    out = tmp_path / "cgen.parquet"
    assert main(["generate", "--run", str(run), "--input", str(path), "--out", str(out)]) == 0
    gen = pd.read_parquet(out)
    assert list(gen.columns) == ["c", "pt", "eta", "m"]
    np.testing.assert_allclose(gen["c"], df["c"])  # one event per condition row, conditions passed through
    assert main(["generate", "--run", str(run), "--samples", "10", "--out", str(out)]) == 2  # no context


def test_user_errors_name_the_problem(table, tmp_path, capsys):
    path, df = table
    assert _train(path, tmp_path / "r1", "--steps", "2", "--columns", "pt,mass") == 2
    assert "missing columns ['mass']" in capsys.readouterr().err
    bad = df.copy()
    bad.loc[7, "eta"] = np.nan
    bad_path = tmp_path / "bad.csv"
    bad.to_csv(bad_path, index=False)
    assert _train(bad_path, tmp_path / "r2", "--steps", "2") == 2
    err = capsys.readouterr().err
    assert "bad.csv" in err and "'eta'" in err and "NaN" in err
    assert _train(tmp_path / "nope.root", tmp_path / "r3", "--steps", "2") == 2
    assert "nope.root: no such file" in capsys.readouterr().err
    assert main(["generate", "--run", str(tmp_path), "--samples", "5", "--out", str(tmp_path / "x.csv")]) == 2
    assert "not a gan4hep run folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--help"])


def test_resume_continues_the_runs_own_recipe(table, tmp_path, capsys):
    """A run started with one preset and options, resumed with another preset: it continues its own recipe."""
    path, _ = table
    run = tmp_path / "run"
    assert _train(path, run, "--steps", "6", "--objective", "bce") == 0
    stored = json.loads((run / "recipe.json").read_text())
    # other options without --resume: refused, naming what differs
    assert main(["train", "--input", str(path), "--columns", "pt,eta,m", "--out", str(run), "--preset", "default",
                 "--verbose", "0"]) == 2
    err = capsys.readouterr().err
    assert "another recipe" in err and "objective" in err and "--resume" in err
    # with --resume the stored recipe wins over the command line's preset
    assert main(["train", "--out", str(run), "--resume", "--preset", "default", "--verbose", "0"]) == 0
    assert json.loads((run / "recipe.json").read_text()) == stored
    assert json.loads((run / "results.json").read_text())["trained_steps"] == 6  # already done: nothing to add
    assert stored["widths"] == [16, 16] and stored["objective"] == "bce"


def test_internal_errors_keep_their_traceback(table, tmp_path, monkeypatch):
    """Only the user's input becomes a one-line error and exit 2: a bug inside training is not disguised as one."""
    from gan4hep import training

    def broken(*args, **kwargs):
        raise ValueError("an internal bug")

    monkeypatch.setattr(training, "train", broken)
    with pytest.raises(ValueError, match="an internal bug"):
        _train(table[0], tmp_path / "run", "--steps", "2")


def test_flow_train_generate_evaluate(table, tmp_path, capsys):
    """--model flow: a conditional spline flow through the same run folder, generate and evaluate as the GAN."""
    path, df = table
    run = tmp_path / "flow"
    assert _train(path, run, "--model", "flow", "--steps", "30", "--context", "c", "--flow-steps", "2",
                  "--bins", "4", "--lr", "3e-3") == 0
    assert "flow" in capsys.readouterr().out
    recipe = json.loads((run / "recipe.json").read_text())
    assert recipe["model"] == "flow" and recipe["context"] == ["c"]
    out = tmp_path / "fgen.parquet"
    assert main(["generate", "--run", str(run), "--input", str(path), "--out", str(out), "--seed", "1"]) == 0
    gen = pd.read_parquet(out)
    assert list(gen.columns) == ["c", "pt", "eta", "m"] and np.isfinite(gen.to_numpy()).all()
    # m = 80 + 10 c in the table: the flow follows the context after a few steps
    assert np.corrcoef(gen["c"], gen["m"])[0, 1] > 0.3
    from gan4hep.models import load_sampler

    exported = load_sampler(run / "model.keras")
    np.testing.assert_allclose(exported.sample(20, context=df[["c"]].to_numpy()[:20], seed=2)[:, 2].mean(),
                               gen["m"].mean(), rtol=0.2)
    assert main(["evaluate", "--run", str(run), "--input", str(path), "--no-classifier"]) == 0
    assert "| m |" in capsys.readouterr().out
