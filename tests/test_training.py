"""The core's run folder, recipes and the one training entry point: resume continues the same schedule to the
exact step, checkpoint selection keeps the best evaluation, a resumed run keeps its own recipe."""

import dataclasses
import json

import keras
import numpy as np
import pytest

from gan4hep import recipes, training
from gan4hep.callbacks import TrainingDiverged
from gan4hep.models import GAN, load_sampler
from gan4hep.networks import mlp
from gan4hep.preprocessing import MinMax, Pipeline
from gan4hep.runs import Run, RunMismatch


@dataclasses.dataclass(frozen=True)
class Toy:
    steps: int = 1000
    lr: float = 1e-4
    widths: tuple = (64, 64)
    label: str = "paper"


PAPER = Toy()
QUICK = dataclasses.replace(PAPER, steps=12, lr=1e-3)


def test_recipe_deviations_are_computed():
    assert recipes.deviations(QUICK, PAPER) == ["steps: 12 (paper: 1000)", "lr: 0.001 (paper: 0.0001)"]
    assert recipes.deviations(PAPER, PAPER) == []
    assert recipes.override(QUICK, steps=None, lr=5e-4) == dataclasses.replace(QUICK, lr=5e-4)
    with pytest.raises(TypeError, match="no field"):
        recipes.override(QUICK, epochs=3)
    with pytest.raises(ValueError, match="unknown preset 'fast'"):
        recipes.select({"paper": PAPER}, "fast")


def test_recipe_round_trip_and_older_runs():
    d = json.loads(json.dumps(recipes.to_dict(QUICK)))
    assert d["widths"] == [64, 64]
    assert recipes.from_dict(Toy, d) == QUICK  # tuples come back as tuples
    older = {k: v for k, v in d.items() if k != "label"}  # a run written before "label" existed
    assert recipes.from_dict(Toy, older, base=PAPER) == QUICK
    with pytest.raises(ValueError, match="lacks field"):
        recipes.from_dict(Toy, older)
    with pytest.raises(ValueError, match="unknown field"):
        recipes.from_dict(Toy, {**d, "epochs": 3})


def test_run_start_resume_and_mismatch(tmp_path):
    run = Run(tmp_path / "run")
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        run.start(recipes.to_dict(QUICK), resume=True)
    assert run.start(recipes.to_dict(QUICK)) == recipes.to_dict(QUICK)
    assert run.start(recipes.to_dict(QUICK)) == recipes.to_dict(QUICK)  # same recipe: continued
    with pytest.raises(RunMismatch, match="steps: 12 in the run, 1000 asked"):
        run.start(recipes.to_dict(PAPER))
    # --resume with another preset: the run's own recipe, and the file is not rewritten
    assert recipes.from_dict(Toy, run.start(recipes.to_dict(PAPER), resume=True)) == QUICK
    assert json.loads((run / "recipe.json").read_text()) == recipes.to_dict(QUICK)
    # a mutable field (a longer schedule) is taken and written back; the rest must still match
    longer = dataclasses.replace(QUICK, steps=20)
    assert run.start(recipes.to_dict(longer), mutable=("steps",))["steps"] == 20
    assert run.recipe()["steps"] == 20
    with pytest.raises(RunMismatch, match="lr"):
        run.start(recipes.to_dict(dataclasses.replace(longer, lr=1.0)), mutable=("steps",))
    run.update_results(a=1)
    run.update_results(b=2)
    assert run.results() == {"a": 1, "b": 2}
    assert "a" not in run.recipe()  # results never merged into the recipe
    with pytest.raises(FileNotFoundError, match="not a gan4hep run folder"):
        Run(tmp_path / "none").recipe()


def _build(seed_shift=0):
    def build():
        model = GAN(mlp(3, [8], 2), mlp(2, [8], 1, "leaky_relu"), 3, objective="wgan_gp", n_critic=2)
        model.compile(keras.optimizers.Adam(1e-3, 0.5, 0.9), keras.optimizers.Adam(1e-3, 0.5, 0.9))
        return model
    return build


def _data(n=256):
    return np.random.default_rng(0).normal(size=(n, 2)).astype("float32")


def test_train_resume_reaches_the_same_state_as_one_run(tmp_path):
    """12 steps in one go and 7 + 5 steps with a kill in between give the same weights and the same record."""
    whole = Run(tmp_path / "whole")
    one = training.train(_build(), _data(), whole, steps=12, batch_size=32, seed=3, steps_per_epoch=4,
                         checkpoint_every=7, verbose=0)
    assert one.final_step == 12 and one.start_step == 0

    split = Run(tmp_path / "split")
    first = training.train(_build(), _data(), split, steps=7, batch_size=32, seed=3, steps_per_epoch=4,
                           checkpoint_every=7, verbose=0)
    assert first.final_step == 7 and split.results()["trained_steps"] == 7
    again = training.train(_build(), _data(), split, steps=12, batch_size=32, seed=3, steps_per_epoch=4,
                           checkpoint_every=7, verbose=0)
    assert again.start_step == 7 and again.final_step == 12
    results = split.results()
    assert results["trained_steps"] == 12 and results["resumed_from"] == 7
    assert results["train_seconds"] == pytest.approx(first.seconds + again.seconds)
    assert [e["step"] for e in json.loads((split / "losses.json").read_text())] == [4, 7, 11, 12]
    losses = split.losses()
    assert losses["step"] == [4, 7, 11, 12] and len(losses["g_loss"]) == 4
    # a folder with checkpoints but no recipe is not silently taken over by a new run
    with pytest.raises(RunMismatch, match="checkpoints but no recipe.json"):
        Run(split).start(recipes.to_dict(QUICK))
    # the resumed run saw other batches (the shuffle is reseeded with the start step), but it is a continuation
    # of the same model: every variable is finite and the optimizer counts 12 generator and 24 critic steps
    assert int(again.model.d_optimizer.iterations.numpy()) == 24
    assert again.model.finite()


def test_train_selects_the_best_evaluation(tmp_path):
    run = Run(tmp_path / "run")
    scores = iter([5.0, 1.0, 3.0, 4.0, 2.0])

    trained = training.train(_build(), _data(), run, steps=8, batch_size=32, seed=0, eval_every=2,
                             evaluate=lambda m: {"score": next(scores)}, monitor="score",
                             evaluate_at_start=True, restore_best=True, verbose=0)
    assert [e["step"] for e in trained.evaluations] == [0, 2, 4, 6, 8]
    assert trained.best_step == 2 and trained.best_value == 1.0
    assert run.results()["selected_step"] == 2
    best = _build()()
    best.load_checkpoint(run / "best.npz")
    for a, b in zip(best.state_variables(), trained.model.state_variables()):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # restore_best loaded the step-2 weights
    assert trained.model.step == 2 and trained.final_step == 8  # the selected weights; training ran to step 8


def test_train_patience_and_divergence(tmp_path):
    scores = iter([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    trained = training.train(_build(), _data(), Run(tmp_path / "p"), steps=20, batch_size=32, seed=0, eval_every=2,
                             evaluate=lambda m: {"score": next(scores)}, monitor="score", patience=2,
                             verbose=0)
    assert trained.final_step == 6  # best at step 2; no improvement at the 2 evaluations after it (steps 4, 6)

    bad = _data()
    bad[5] = np.nan  # one poisoned event: its batch (within the first pass of 8 batches) gives NaN losses
    with pytest.raises(TrainingDiverged, match="nan"):
        training.train(_build(), bad, Run(tmp_path / "d"), steps=10, batch_size=32, seed=0, verbose=0)
    stopped = training.train(_build(), bad, Run(tmp_path / "s"), steps=10, batch_size=32, seed=0, verbose=0,
                             on_divergence="stop")
    assert "diverged" in stopped.diverged and Run(tmp_path / "s").results()["diverged"] == stopped.diverged
    assert stopped.final_step < 10


def test_train_refuses_too_few_events(tmp_path):
    with pytest.raises(ValueError, match="fewer than one batch"):
        training.train(_build(), _data(10), Run(tmp_path / "r"), steps=2, batch_size=32, seed=0, verbose=0)


def test_conditional_training_and_export(tmp_path):
    rng = np.random.default_rng(1)
    c = rng.uniform(10, 20, (256, 1))
    x = c + rng.normal(0, 1, (256, 1))
    prep, cprep = Pipeline([MinMax()]).fit(x), Pipeline([MinMax()]).fit(c)

    def build():
        model = GAN(mlp(4, [8], 1), mlp(2, [8], 1), 3, objective="bce", context_dim=1, preprocessing=prep,
                    context_preprocessing=cprep)
        model.compile()
        return model

    run = Run(tmp_path / "c")
    trained = training.train(build, (prep.transform(x), cprep.transform(c)), run, steps=3, batch_size=32, seed=0,
                             verbose=0)
    trained.model.export(run / Run.MODEL)
    ctx = np.full((10, 1), 15.0)
    np.testing.assert_allclose(load_sampler(run / Run.MODEL).sample(10, context=ctx, seed=2),
                               trained.model.sample(10, context=ctx, seed=2), rtol=1e-6)


MIRRORED_RESUME = """
import json, sys
import numpy as np, tensorflow as tf, keras
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from gan4hep import training
from gan4hep.models import GAN
from gan4hep.runs import Run
from papers.lebese_ruan.model import build_critic, build_generator

def build():  # the Lebese & Ruan networks (trainable-swish generator, LeakyReLU critic), WGAN-GP
    model = GAN(build_generator(), build_critic(), 128, noise="normal_to_uniform", objective="wgan_gp",
                n_critic=2)
    model.compile()
    return model

x = np.random.default_rng(0).uniform(size=(256, 8)).astype("float32")
run = Run(sys.argv[1])
steps = []
for total in (4, 7):  # a run, then its resumption
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    t = training.train(build, x, run, steps=total, batch_size=32, seed=1, verbose=0, strategy=strategy)
    steps.append((t.start_step, t.final_step, strategy.num_replicas_in_sync, t.model.finite()))
print("RESULT", json.dumps(steps))
"""


def test_mirrored_strategy_trains_and_resumes(tmp_path):
    """Two CPU replicas (MirroredStrategy) train the Lebese & Ruan networks through the training entry point: 4
    steps, then resumed to 7."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    res = subprocess.run([sys.executable, "-c", MIRRORED_RESUME, str(tmp_path / "run")], capture_output=True,
                         text=True, env=env, timeout=300)
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT")]
    assert line, res.stderr[-3000:]
    assert json.loads(line[0].split(" ", 1)[1]) == [[0, 4, 2, True], [4, 7, 2, True]]
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert names[0] == "ckpt-000000004.npz" and names[-1] == "ckpt-000000007.npz"
