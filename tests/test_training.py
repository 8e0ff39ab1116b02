"""The core's run folder, recipes and the one training entry point: resume continues the same schedule to the
exact step, checkpoint selection keeps the best evaluation, a resumed run keeps its own recipe."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from gan4hep import recipes, training
from gan4hep.recipes import deviations
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
    assert recipes.deviations(QUICK, PAPER, unused=("lr",)) == ["steps: 12 (paper: 1000)"]  # a field the run ignores
    with pytest.raises(TypeError, match="no field"):
        recipes.deviations(QUICK, PAPER, unused=("epochs",))
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


def test_run_input_table_is_the_one_the_run_started_with(tmp_path):
    run = Run(tmp_path / "r")
    assert run.input_table(None) is None
    assert run.input_table(tmp_path / "a.root") == (tmp_path / "a.root").resolve()
    run.write_json("sample.json", {"input": str((tmp_path / "a.root").resolve())})
    assert run.input_table(None) == (tmp_path / "a.root").resolve() == run.input_table(tmp_path / "a.root")
    with pytest.raises(RunMismatch, match="was trained on .*a.root, not .*b.root"):
        run.input_table(tmp_path / "b.root")
    run.write_json("sample.json", {"input": None})
    assert run.input_table(None) is None
    with pytest.raises(RunMismatch, match="the generated sample"):
        run.input_table(tmp_path / "b.root")


def _build(seed_shift=0):
    def build():
        model = GAN(mlp(3, [8], 2), mlp(2, [8], 1, "leaky_relu"), 3, objective="wgan_gp", n_critic=2)
        model.compile(keras.optimizers.Adam(1e-3, 0.5, 0.9), keras.optimizers.Adam(1e-3, 0.5, 0.9))
        return model
    return build


def _data(n=256):
    return np.random.default_rng(0).normal(size=(n, 2)).astype("float32")


def _weights_of(model):
    return [np.asarray(v) for v in model.state_variables() + model.run_state_variables()]


def test_start_recipe_returns_the_runs_recipe_and_what_it_ignores(tmp_path):
    """``Run.start_recipe``: a new run takes the asked recipe; --resume continues with the stored one and names what
    of the asked one it ignores; a field added after a run was made lets the run continue when asked at the paper's
    value, and is a mismatch otherwise."""
    run = Run(tmp_path / "r")
    recipe, ignored = run.start_recipe(QUICK, PAPER)
    assert recipe == QUICK and isinstance(recipe, Toy) and ignored == []
    recipe, ignored = run.start_recipe(PAPER, PAPER, resume=True)
    assert recipe == QUICK and ignored == deviations(PAPER, QUICK, label="run") and ignored
    with pytest.raises(RunMismatch):
        run.start_recipe(PAPER, PAPER)
    older = Run(tmp_path / "older")  # a run made before the field "lr" existed
    older.start({k: v for k, v in recipes.to_dict(QUICK).items() if k != "lr"})
    with pytest.raises(RunMismatch, match="lr"):
        older.start_recipe(dataclasses.replace(QUICK, lr=PAPER.lr), PAPER)
    recipe, _ = older.start_recipe(dataclasses.replace(QUICK, lr=PAPER.lr), PAPER, added_fields=("lr",))
    assert recipe == dataclasses.replace(QUICK, lr=PAPER.lr)  # the missing field reads as the paper's
    with pytest.raises(RunMismatch, match="lr"):
        older.start_recipe(QUICK, PAPER, added_fields=("lr",))  # asked at another value: not the old run


def test_train_resume_reaches_the_same_state_as_one_run(tmp_path):
    """12 steps in one go and 7 + 5 steps with a kill in between give the same weights, optimizer and random
    state, byte for byte, and the same loss record (the resumed run's extra entry at step 7 aside)."""
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
    # the loss windows count from step 0: 4, 8, 12; the first invocation also logged its open window at step 7
    assert [e["step"] for e in json.loads((split / "losses.json").read_text())] == [4, 7, 8, 12]
    losses = split.losses()
    assert losses["step"] == [4, 7, 8, 12] and len(losses["g_loss"]) == 4
    assert again.losses["step"] == [8, 12]
    record = {e["step"]: e for e in json.loads((split / "losses.json").read_text())}
    assert [record[s] for s in (4, 8, 12)] == json.loads((whole / "losses.json").read_text())
    # the resumed run saw the same batches, noise and gradient-penalty interpolates: the same state, exactly
    assert int(again.model.d_optimizer.iterations.numpy()) == 24
    for a, b in zip(_weights_of(one.model), _weights_of(again.model), strict=True):
        np.testing.assert_array_equal(a, b)
    # a folder with checkpoints but no recipe is not silently taken over by a new run
    with pytest.raises(RunMismatch, match="checkpoints but no recipe.json"):
        Run(split).start(recipes.to_dict(QUICK))


def test_progress_logs_show_the_logged_window_means(tmp_path):
    """What Keras shows at each epoch end (the progress bar, History) is the window's mean that losses.json records,
    not the reset trackers of the next window (a progress bar of zeros)."""
    seen = []

    class Seen(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append({k: float(v) for k, v in logs.items()})

    run = Run(tmp_path / "bar")
    training.train(_build(), _data(), run, steps=8, batch_size=32, seed=3, steps_per_epoch=4, verbose=0,
                   callbacks=[Seen()])
    logged = json.loads((run / "losses.json").read_text())
    assert [e["step"] for e in logged] == [4, 8] and len(seen) == 2
    for shown, entry in zip(seen, logged):
        assert shown["g_loss"] == pytest.approx(entry["g_loss"]) and shown["d_loss"] == pytest.approx(entry["d_loss"])
        assert shown["d_loss"] != 0.0


def test_batch_order_is_a_function_of_seed_and_step():
    """``dataset``: each pass is a permutation of the events (each event exactly once, the remainder left out),
    passes differ, and the stream started at step k is the tail of the stream started at 0."""
    x = np.arange(70, dtype=np.float32).reshape(-1, 1)  # 70 events, batches of 16: 4 per pass, 6 left out
    full = [b.numpy().ravel() for b in training.dataset(x, 16, seed=5).take(12)]
    for p in range(3):
        seen = np.concatenate(full[4 * p:4 * p + 4])
        assert len(seen) == 64 and len(np.unique(seen)) == 64
    assert not np.array_equal(np.concatenate(full[:4]), np.concatenate(full[4:8]))
    for k in (1, 4, 7):
        tail = [b.numpy().ravel() for b in training.dataset(x, 16, seed=5, start_step=k).take(12 - k)]
        for a, b in zip(full[k:], tail, strict=True):
            np.testing.assert_array_equal(a, b)
    other = [b.numpy().ravel() for b in training.dataset(x, 16, seed=6).take(4)]
    assert not np.array_equal(np.concatenate(full[:4]), np.concatenate(other))


def test_random_streams_follow_the_run_seed_not_the_global_state(tmp_path):
    """A gradient penalty (and noise) constructed before ``train`` seeds anything, under different global random
    states, gives the same run for the same run seed: ``train`` derives every unseeded stream from the seed."""
    import random

    from gan4hep.objectives import WassersteinGP

    results = []
    for global_seed in (1, 2):
        random.seed(global_seed)
        keras.utils.set_random_seed(global_seed)
        objective = WassersteinGP(10.0)  # its SeedGenerator's initial state drawn from the global state

        def build():
            model = GAN(mlp(3, [8], 2), mlp(2, [8], 1, "leaky_relu"), 3, objective=objective, n_critic=2)
            model.compile(keras.optimizers.Adam(1e-3, 0.5, 0.9), keras.optimizers.Adam(1e-3, 0.5, 0.9))
            return model

        trained = training.train(build, _data(), Run(tmp_path / f"g{global_seed}"), steps=3, batch_size=32,
                                 seed=4, verbose=0)
        results.append(_weights_of(trained.model))
    for a, b in zip(*results, strict=True):
        np.testing.assert_array_equal(a, b)
    states = [sg for sg in trained.model.seed_generators()]
    assert len(states) == 2  # the noise and the gradient penalty


def test_flow_resume_reaches_the_same_state_as_one_run(tmp_path):
    """The same exact resume for a normalising flow on weighted events (weights of both signs)."""
    from gan4hep.flows import spline_flow

    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 2)).astype("float32")
    w = np.where(rng.random(200) < 0.2, -0.5, 1.0)

    def build():
        flow = spline_flow(2, steps=2, bins=4, hidden_features=8, num_blocks=1)
        flow.compile(keras.optimizers.Adam(1e-3))
        return flow

    kw = dict(batch_size=32, seed=1, steps_per_epoch=3, checkpoint_every=4, verbose=0, weights=w)
    one = training.train(build, x, Run(tmp_path / "one"), steps=9, **kw)
    training.train(build, x, Run(tmp_path / "two"), steps=4, **kw)
    two = training.train(build, x, Run(tmp_path / "two"), steps=9, **kw)
    assert two.start_step == 4
    for a, b in zip(_weights_of(one.model), _weights_of(two.model), strict=True):
        np.testing.assert_array_equal(a, b)
    whole = json.loads((tmp_path / "one" / "losses.json").read_text())
    resumed = [e for e in json.loads((tmp_path / "two" / "losses.json").read_text()) if e["step"] != 4]
    assert [e["step"] for e in whole] == [3, 6, 9] and resumed == whole


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


# ---------------------------------------------------------------------------------------------------------------
# per-event weights
# ---------------------------------------------------------------------------------------------------------------
def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _softplus(v):
    return np.log1p(np.exp(v))


def test_weighted_objectives_equal_the_hand_computed_losses():
    """Every expectation over the real batch is mean(w * term); generated events stay unweighted."""
    from gan4hep import objectives as O

    rng = np.random.default_rng(3)
    r, f = rng.normal(size=(6, 1)).astype("float32"), rng.normal(size=(6, 1)).astype("float32")
    w = np.array([1.5, -0.5, 2.0, 0.25, 1.0, 1.75], "float32")
    rr, ff = r[:, 0].astype(np.float64), f[:, 0].astype(np.float64)
    expected = {"bce": np.mean(w * _softplus(-rr)) + np.mean(_softplus(ff)),
                "lsgan": 0.5 * np.mean(w * (rr - 1) ** 2) + 0.5 * np.mean(ff ** 2),
                "wgan": np.mean(ff) - np.mean(w * rr)}
    for name, value in expected.items():
        got = float(O.get_objective(name).critic_loss(r, f, real_weight=w))
        assert got == pytest.approx(value, rel=1e-6), name
        unweighted = float(O.get_objective(name).critic_loss(r, f))
        assert unweighted == pytest.approx(float(O.get_objective(name).critic_loss(r, f, np.ones(6, "float32"))),
                                           rel=1e-7), name
    # Roth et al. with a linear critic D(v) = v a: the input gradient is a for every event
    a = np.array([[0.5], [-2.0]], "float32")
    xr, xf = rng.normal(size=(6, 2)).astype("float32"), rng.normal(size=(6, 2)).astype("float32")
    critic = keras.ops.convert_to_tensor(a)
    got = float(O.RothRegulariser(0.1)(lambda v: keras.ops.matmul(v, critic), keras.ops.convert_to_tensor(xr),
                                        keras.ops.convert_to_tensor(xf), real_weight=w))
    g2 = float((a ** 2).sum())
    dr, df = (xr @ a)[:, 0].astype(np.float64), (xf @ a)[:, 0].astype(np.float64)
    assert got == pytest.approx(0.05 * np.mean(w * (1 - _sigmoid(dr)) ** 2 * g2 + _sigmoid(df) ** 2 * g2), rel=1e-5)


def test_weighted_gan_step_logs_the_hand_computed_critic_loss():
    """One GAN train_step on a fixed weighted batch: the logged d_loss is mean D(G(z)) - mean(w D(x)) with the
    step's own noise, recomputed by hand from the weights before the update."""
    model = GAN(mlp(3, [8], 2), mlp(2, [8], 1, "leaky_relu"), 3, objective="wgan", n_critic=1)
    model.compile()
    model.seed_random_state(0)
    x = _data(16)
    w = np.linspace(-0.5, 2.5, 16).astype("float32")
    noise_state = np.asarray(model.noise.seed_generator.state)
    g_weights, c_weights = model.generator.get_weights(), model.critic.get_weights()
    logs = model.train_step((x, np.zeros((16, 0), "float32"), w))

    gen, critic = mlp(3, [8], 2), mlp(2, [8], 1, "leaky_relu")
    gen.set_weights(g_weights)
    critic.set_weights(c_weights)
    model.noise.seed_generator.state.assign(noise_state)
    z = model.noise.tf_sample(16, 3)
    d_fake = np.asarray(critic(gen(z))).astype(np.float64)[:, 0]
    d_real = np.asarray(critic(x)).astype(np.float64)[:, 0]
    assert float(logs["d_loss"]) == pytest.approx(d_fake.mean() - np.mean(w * d_real), rel=1e-5, abs=1e-6)


def test_weighted_flow_loss_is_the_weighted_nll():
    from gan4hep.flows import spline_flow

    flow = spline_flow(2, steps=1, bins=4, hidden_features=8, num_blocks=1)
    flow.compile()
    x = _data(10)
    w = np.linspace(-1.0, 2.0, 10).astype("float32")
    logp = np.asarray(flow.log_prob(x)).astype(np.float64)
    loss = float(flow._loss((x, np.zeros((10, 0), "float32"), w), training=False))
    assert loss == pytest.approx(-np.mean(w * logp), rel=1e-5)


def test_weighted_training_moves_toward_the_weighted_target(tmp_path):
    """Trained briefly on the same events, with and without weights, each model lands near its own target.

    GAN (bce): N(-1, 0.25) and N(1, 0.25), 1000 events each, weights 1 and 3: weighted, 75 % of the events are
    above 0 (mean 0.5); unweighted 50 % (mean 0). Flow, negative weights: 1400 events of N(0, 1) with weight +1
    and 700 of N(0, 0.5) with weight -1, i.e. the density 2 N(0, 1) - N(0, 0.5), which is 0 at x = 0: a fraction
    2 * 0.383 - 0.683 = 0.083 within |x| < 0.5 and E[x^2] = 2 - 0.25 = 1.75; unweighted 0.483 and 0.75."""
    from gan4hep.flows import maf

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-1, 0.25, 1000), rng.normal(1, 0.25, 1000)])[:, None].astype("float32")
    w = np.repeat([1.0, 3.0], 1000)

    def gan():
        model = GAN(mlp(4, [32, 32], 1, "leaky_relu"), mlp(1, [32, 32], 1, "leaky_relu"), 4, objective="bce")
        model.compile(keras.optimizers.Adam(1e-3, 0.5, 0.9), keras.optimizers.Adam(1e-3, 0.5, 0.9))
        return model

    above = {}
    for label, weights in (("unweighted", None), ("weighted", w)):
        trained = training.train(gan, x, Run(tmp_path / f"gan_{label}"), steps=200, batch_size=128, seed=0,
                                 verbose=0, weights=weights)
        above[label] = float((trained.model.sample(20000, seed=1) > 0).mean())
    assert 0.65 < above["weighted"] < 0.9 and 0.4 < above["unweighted"] < 0.62

    y = np.concatenate([rng.normal(0, 1, 1400), rng.normal(0, 0.5, 700)])[:, None].astype("float32")
    v = np.repeat([1.0, -1.0], [1400, 700])

    def flow():
        model = maf(1, steps=2, bins=8, hidden_features=16, num_layers=1)
        model.compile(keras.optimizers.Adam(3e-3))
        return model

    central, second = {}, {}
    for label, weights in (("unweighted", None), ("weighted", v)):
        trained = training.train(flow, y / 3.0, Run(tmp_path / f"flow_{label}"), steps=300, batch_size=256,
                                 seed=0, verbose=0, weights=weights)
        s = trained.model.sample(20000, seed=1) * 3.0
        central[label], second[label] = float((np.abs(s) < 0.5).mean()), float((s ** 2).mean())
    assert central["weighted"] < 0.2 and 0.4 < central["unweighted"] < 0.56
    assert 1.5 < second["weighted"] < 2.1 and second["unweighted"] < 1.0


def test_weights_the_loss_is_not_defined_for_are_refused_by_name(tmp_path):
    from gan4hep.errors import InputError
    from gan4hep.penalties import MMDPenalty

    negative = np.where(np.arange(256) % 5 == 0, -1.0, 1.0)

    def gan(**kw):
        def build():
            model = GAN(mlp(3, [8], 2), mlp(2, [8], 1, "leaky_relu"), 3, **kw)
            model.compile()
            return model
        return build

    run = Run(tmp_path / "r")
    with pytest.raises(InputError, match=r"negative.*'roth'"):
        training.train(gan(objective="bce_roth"), _data(), run, steps=2, batch_size=32, seed=0, verbose=0,
                       weights=negative)
    with pytest.raises(InputError, match=r"penalties \['mmd'\]"):
        training.train(gan(objective="bce", penalties=[MMDPenalty()]), _data(), run, steps=2, batch_size=32,
                       seed=0, verbose=0, weights=np.ones(256))
    with pytest.raises(InputError, match="sum to -"):
        training.train(gan(), _data(), run, steps=2, batch_size=32, seed=0, verbose=0, weights=-np.ones(256))

    class OwnStep(GAN):
        def train_step(self, data):
            return super().train_step(data)

    def own():
        model = OwnStep(mlp(3, [8], 2), mlp(2, [8], 1, "leaky_relu"), 3)
        model.compile()
        return model

    with pytest.raises(InputError, match="OwnStep has its own train_step"):
        training.train(own, _data(), run, steps=2, batch_size=32, seed=0, verbose=0, weights=np.ones(256))
    assert not (run / "checkpoints").exists()
    # accepted: positive weights with Roth, negative weights with the Wasserstein objectives, bce and lsgan
    for objective, weights in (("bce_roth", np.ones(256)), ("wgan_gp", negative), ("lsgan", negative)):
        trained = training.train(gan(objective=objective), _data(), Run(tmp_path / objective), steps=2,
                                 batch_size=32, seed=0, verbose=0, weights=weights)
        assert trained.final_step == 2 and trained.model.finite()


BIT_REPRODUCIBLE = """
import sys
import numpy as np
from gan4hep import training
from gan4hep.runs import Run
sys.path.insert(0, sys.argv[3])
from test_training import _build, _data, _weights_of
if sys.argv[2] == "deterministic":
    training.set_deterministic()
t = training.train(_build(), _data(), Run(sys.argv[1]), steps=12, batch_size=32, seed=3, verbose=0)
np.savez(sys.argv[1] + ".npz", *_weights_of(t.model))
"""


def test_a_cpu_run_is_bit_reproducible_across_processes_and_thread_counts(tmp_path):
    """The same seed in a fresh process gives the same final state byte for byte: with 1 or 2 intra-op threads, and
    with TensorFlow's op determinism switched on (``set_deterministic``, README "Reproducibility")."""
    import os

    tests = str(Path(__file__).resolve().parent)
    out = {}
    for name, threads, mode in (("two", "2", "default"), ("one", "1", "default"), ("det", "2", "deterministic")):
        env = {**os.environ, "TF_NUM_INTRAOP_THREADS": threads, "TF_CPP_MIN_LOG_LEVEL": "3"}
        subprocess.run([sys.executable, "-c", BIT_REPRODUCIBLE, str(tmp_path / name), mode, tests], check=True,
                       env=env, cwd=Path(__file__).resolve().parents[1])
        with np.load(tmp_path / f"{name}.npz") as f:
            out[name] = [f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))]
    for other in ("one", "det"):
        for a, b in zip(out["two"], out[other], strict=True):
            np.testing.assert_array_equal(a, b)


def test_run_require_names_the_first_missing_file(tmp_path):
    run = Run(tmp_path / "run")
    run.path.mkdir()
    (run.path / "metrics.json").write_text("{}")
    run.require("metrics.json")
    with pytest.raises(FileNotFoundError, match=r"run: no model.keras; train and evaluate the run first"):
        run.require("metrics.json", "model.keras", "table1.csv")
    with pytest.raises(FileNotFoundError, match=r"no table1.csv; run train.py first"):
        run.require("table1.csv", hint="run train.py first")
