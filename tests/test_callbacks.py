"""Callbacks: checkpoint + resume after an interruption, divergence guard, periodic evaluation with best
checkpoint, and the GAN checkpoint round trip itself."""

import json

import keras
import numpy as np
import pytest

from gan4hep.callbacks import (DivergenceGuard, PeriodicCheckpoint, PeriodicEvaluation, TrainingDiverged,
                               latest_checkpoint, list_checkpoints, resume)
from gan4hep.models import GAN
from gan4hep.networks import mlp


def _model(seed=0, ema=None):
    keras.utils.set_random_seed(seed)
    model = GAN(mlp(3, [8], 2, "trainable_swish"), mlp(2, [8], 1, "leaky_relu"), 3, objective="wgan_gp",
                n_critic=2, ema_decay=ema)
    model.compile(keras.optimizers.Adam(1e-3, 0.5, 0.9), keras.optimizers.Adam(1e-3, 0.5, 0.9))
    return model


def _data(n=160, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 2)).astype("float32")


def test_resume_after_interruption(tmp_path):
    model = _model(ema=0.9)

    class Interrupt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.model.step == 7:
                raise KeyboardInterrupt  # the job is killed mid-epoch

    with pytest.raises(KeyboardInterrupt):
        model.fit(_data(), batch_size=16, epochs=3, verbose=0,
                  callbacks=[PeriodicCheckpoint(tmp_path, every=3, keep=None), Interrupt()])
    assert [s for s, _ in list_checkpoints(tmp_path)] == [3, 6]
    # what checkpoint 6 holds: load it into a throwaway model to read the reference state
    ref = _model(seed=5, ema=0.9)
    ref.load_checkpoint(latest_checkpoint(tmp_path))

    fresh = _model(seed=1, ema=0.9)  # different initial weights
    assert not np.allclose(fresh.generator.get_weights()[0], ref.generator.get_weights()[0])
    assert resume(fresh, tmp_path) == 6
    assert fresh.step == 6
    for a, b in zip(fresh.state_variables(), ref.state_variables()):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(fresh.d_optimizer.iterations.numpy()) == 12  # n_critic = 2 critic updates per generator step
    adam_m = [v for v in fresh.g_optimizer.variables if "momentum" in v.path]
    assert adam_m and all(np.any(np.asarray(v) != 0) for v in adam_m)
    # training continues from step 6 and the schedule carries on
    fresh.fit(_data(), batch_size=16, epochs=1, verbose=0, callbacks=[PeriodicCheckpoint(tmp_path, every=3, keep=2)])
    assert fresh.step == 16
    assert [s for s, _ in list_checkpoints(tmp_path)] == [15, 16]
    assert resume(_model(), tmp_path / "empty") == 0


def test_checkpoint_rejects_other_architecture(tmp_path):
    model = _model()
    path = model.save_checkpoint(tmp_path / "c.npz")
    other = GAN(mlp(3, [9], 2), mlp(2, [8], 1), 3)
    other.compile()
    with pytest.raises(ValueError, match="c.npz"):
        other.load_checkpoint(path)


def test_divergence_guard_names_loss_and_keeps_last_good_checkpoint(tmp_path):
    model = _model()
    x = _data(160)
    x[100] = np.nan  # batch 6 (events 96-111) poisons the losses at generator step 7
    with pytest.raises(TrainingDiverged, match=r"d_loss.*nan.*ckpt-000000006\.npz"):
        model.fit(x, batch_size=16, epochs=1, verbose=0, shuffle=False,
                  callbacks=[PeriodicCheckpoint(tmp_path, every=2), DivergenceGuard(tmp_path)])
    assert [s for s, _ in list_checkpoints(tmp_path)] == [2, 4, 6]
    good = _model(seed=3)
    good.load_checkpoint(latest_checkpoint(tmp_path))
    assert all(np.all(np.isfinite(np.asarray(v))) for v in good.state_variables())
    assert not all(np.all(np.isfinite(w)) for w in model.critic.get_weights())  # the live model is broken


def test_periodic_evaluation_tracks_best(tmp_path):
    model = _model()
    values = iter([5.0, 2.0, 3.0, 1.5, 4.0, 9.0])

    def evaluate(m):
        return {"w1": next(values), "step_seen": m.step}

    cb = PeriodicEvaluation(every=2, evaluate=evaluate, monitor="w1", best_path=tmp_path / "best.npz",
                            history_path=tmp_path / "history.json")
    model.fit(_data(160), batch_size=16, epochs=1, verbose=0, callbacks=[cb])
    assert [h["step"] for h in cb.history] == [2, 4, 6, 8, 10]  # end of training at step 10 is not repeated
    assert [h["step_seen"] for h in cb.history] == [2, 4, 6, 8, 10]
    assert (cb.best, cb.best_step) == (1.5, 8)
    best = _model(seed=9)
    assert best.load_checkpoint(tmp_path / "best.npz") == 8
    assert json.loads((tmp_path / "history.json").read_text())[3]["w1"] == 1.5
    with pytest.raises(KeyError, match="no monitored metric 'auc'"):
        model.fit(_data(32), batch_size=16, epochs=1, verbose=0,
                  callbacks=[PeriodicEvaluation(1, lambda m: {"w1": 0.0}, monitor="auc")])
    with pytest.raises(ValueError, match="mode"):
        PeriodicEvaluation(1, evaluate, mode="best")


def test_stop_at_ends_exactly_and_stale_checkpoints_are_replaced(tmp_path):
    from gan4hep.callbacks import StopAt

    stale = tmp_path / "ckpt-000000004.npz"
    stale.write_bytes(b"left by an earlier run")
    model = _model()
    model.fit(_data(), batch_size=16, epochs=5, verbose=0,
              callbacks=[PeriodicCheckpoint(tmp_path, every=4), StopAt(7)])
    assert model.step == 7  # 5 epochs of 10 steps would have run 50
    assert [s for s, _ in list_checkpoints(tmp_path)] == [4, 7]
    fresh = _model(seed=3)
    assert fresh.load_checkpoint(stale) == 4  # a real checkpoint of this run, not the stale bytes


def test_periodic_evaluation_resume_keeps_history_and_best(tmp_path):
    hist = tmp_path / "history.json"
    values = iter([3.0, 1.0, 2.0, 5.0])
    first = PeriodicEvaluation(2, lambda m: {"score": next(values)}, monitor="score", history_path=hist)
    model = _model()
    model.fit(_data(64), batch_size=16, epochs=1, verbose=0, callbacks=[first])  # steps 2, 4 (best 1.0 at 4)
    assert (first.best, first.best_step) == (1.0, 4)
    again = PeriodicEvaluation(2, lambda m: {"score": next(values)}, monitor="score", history_path=hist, resume=True)
    assert (again.best, again.best_step) == (1.0, 4) and len(again.history) == 2
    model.fit(_data(64), batch_size=16, epochs=1, verbose=0, callbacks=[again])  # steps 6, 8: 2.0, 5.0
    assert (again.best, again.best_step) == (1.0, 4)
    assert [h["step"] for h in json.loads(hist.read_text())] == [2, 4, 6, 8]
    fresh = PeriodicEvaluation(2, lambda m: {}, monitor="score", history_path=hist)
    assert fresh.best is None and fresh.history == []


def test_checkpoint_holds_the_run_state_and_reads_older_checkpoints(tmp_path):
    """A checkpoint carries the random streams' positions (noise, gradient penalty) and the loss trackers, so the
    model it is loaded into draws the same next noise; a checkpoint of an older version (weights and optimizer
    only) still loads, leaving the model's own run state."""
    model = _model()
    model.fit(_data(), batch_size=16, epochs=1, steps_per_epoch=3, verbose=0)
    path = model.save_checkpoint(tmp_path / "c.npz")
    with np.load(path) as z:
        run_state = sorted(f for f in z.files if f.startswith("s"))
    assert len(run_state) == 2 + 2 * 3  # 2 seed generators; total and count of d_loss, g_loss, gp
    other = _model(seed=9)
    other.seed_random_state(9)
    other.load_checkpoint(path)
    np.testing.assert_array_equal(np.asarray(other.noise.tf_sample(4, 3)), np.asarray(model.noise.tf_sample(4, 3)))
    assert float(other.metrics[0].result()) == float(model.metrics[0].result())

    with np.load(path) as z:
        older = {k: z[k] for k in z.files if k.startswith("v")}
    np.savez(tmp_path / "old.npz", **older)
    third = _model(seed=3)
    third.seed_random_state(3)
    before = np.asarray(third.noise.seed_generator.state)
    assert third.load_checkpoint(tmp_path / "old.npz") == 3
    np.testing.assert_array_equal(np.asarray(third.noise.seed_generator.state), before)
    for a, b in zip(third.state_variables(), model.state_variables(), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
