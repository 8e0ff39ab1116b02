"""The per-replica loss scaling of ``GAN.train_step`` under a ``tf.distribute`` strategy: two CPU replicas give the
same update as one replica on the same global batch; and ``GAN.fit`` with MMD and peak penalties (one replica).

Each replica computes its losses on its share of the batch and divides them by the number of replicas; the
optimizers sum the replicas' gradients. For losses that are means over events, the sum is the gradient of the mean
over the global batch. The noise is made identical in both set-ups: a deterministic noise object whose row i is a
fixed vector of i mod 16, with 16 events per replica. Each replica then sees the same 16 latent vectors, and the
one-replica batch of 32 sees them twice, so every mean over generated events (and the batch mean and spread of a
``PeakPenalty``, and the generator-side terms of an MMD V-statistic) is the same in both set-ups. Plain SGD
makes a missing (or doubled) scaling visible: the update would be twice (half) as large, where Adam would hide it.

Logical CPU devices must be configured before TensorFlow starts, so the comparison runs in a subprocess.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np, tensorflow as tf, keras
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from keras import ops
    from gan4hep.models import GAN
    from gan4hep.networks import mlp
    from gan4hep.noise import Noise
    from gan4hep.penalties import MMDPenalty, PeakPenalty

    PER_REPLICA, LATENT = 16, 3

    class PeriodicNoise(Noise):
        # row i: a fixed vector of (i mod PER_REPLICA); the same rows on every replica
        name = "periodic"
        def _tf(self, shape):
            i = ops.cast(ops.mod(ops.arange(shape[0]), PER_REPLICA), "float32")[:, None]
            j = ops.cast(ops.arange(LATENT), "float32")[None, :]
            return ops.sin(0.7 * (i + 1.0) * (j + 1.0))
        def _np(self, rng, shape):
            raise NotImplementedError

    def build(objective, penalties):
        keras.utils.set_random_seed(0)
        g, d = mlp(LATENT, [8], 2), mlp(2, [8], 1)
        gan = GAN(g, d, LATENT, noise=PeriodicNoise(), objective=objective, penalties=penalties, n_critic=2)
        gan.compile(keras.optimizers.SGD(0.05), keras.optimizers.SGD(0.05))
        return gan

    def penalties(kind):
        if kind == "peak":
            return [PeakPenalty(target_mean=[0.5, -0.2], target_std=[1.0, 0.8], lambda_mean=1.0, lambda_std=1.0)]
        if kind == "mmd":
            return [MMDPenalty(widths=[1.0, 2.0], kernel="gaussian", weight=1.0)]
        return []

    x = np.random.default_rng(0).normal(size=(96, 2)).astype("float32")
    out = {}
    for objective, kind in (("wgan", "none"), ("bce", "peak"), ("bce", "mmd")):
        result = {}
        for name, strategy in (("one", tf.distribute.get_strategy()),
                               ("two", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))):
            with strategy.scope():
                gan = build(objective, penalties(kind))
                before = [w.numpy().copy() for w in gan.generator.weights + gan.critic.weights]
            gan.fit(x, batch_size=2 * PER_REPLICA, epochs=1, shuffle=False, verbose=0)
            after = [w.numpy() for w in gan.generator.weights + gan.critic.weights]
            result[name] = {"replicas": strategy.num_replicas_in_sync, "step": gan.step,
                            "update": np.concatenate([(a - b).ravel() for a, b in zip(after, before)]).tolist(),
                            "before": np.concatenate([b.ravel() for b in before]).tolist()}
        out[f"{objective}+{kind}"] = result
    print("RESULT " + json.dumps(out))
""")


def test_two_replicas_give_the_update_of_one_on_the_same_global_batch():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    res = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, res.stderr[-3000:]
    out = json.loads(lines[0][len("RESULT "):])
    assert set(out) == {"wgan+none", "bce+peak", "bce+mmd"}
    for case, r in out.items():
        one, two = r["one"], r["two"]
        assert (one["replicas"], two["replicas"]) == (1, 2), case
        assert one["step"] == two["step"] == 3, case  # 96 events, global batch 32
        np.testing.assert_array_equal(one["before"], two["before"])  # the same initial weights
        u1, u2 = np.asarray(one["update"]), np.asarray(two["update"])
        scale = np.max(np.abs(u1))
        assert scale > 1e-3, case  # a real update, far above the float32 rounding of the comparison
        # a missing scaling (2x) or a scaling by the replicas twice (x 1/2) would miss this by ~scale
        np.testing.assert_allclose(u2, u1, rtol=0, atol=1e-4 * scale, err_msg=case)


def test_fit_with_mmd_and_peak_penalties():
    """GAN.fit with both generator penalties: their terms are logged, and a strong peak regression (target mean 3,
    spread 0.5) pulls the generated events to mean 3 against the data's 0 and falls tenfold."""
    import keras

    from gan4hep.models import GAN
    from gan4hep.networks import mlp
    from gan4hep.penalties import MMDPenalty, PeakPenalty

    keras.utils.set_random_seed(1)
    pens = [PeakPenalty(target_mean=[3.0], target_std=[0.5], lambda_mean=10.0, lambda_std=10.0),
            MMDPenalty(widths=[1.0], kernel="gaussian", weight=0.1)]
    gan = GAN(mlp(2, [16], 1), mlp(1, [16], 1), 2, objective="bce", penalties=pens)
    gan.compile(keras.optimizers.Adam(1e-2), keras.optimizers.Adam(1e-2))
    x = np.random.default_rng(0).normal(size=(640, 1)).astype("float32")
    before = gan.sample(4000, seed=3)
    hist = gan.fit(x, batch_size=64, epochs=6, verbose=0).history
    assert {"peak", "mmd", "d_loss", "g_loss"} <= set(hist)
    assert all(np.isfinite(v).all() for v in hist.values())
    assert hist["peak"][-1] < 0.1 * hist["peak"][0]
    after = gan.sample(4000, seed=3)
    assert abs(after.mean() - 3.0) < 0.4 < 2.0 < abs(before.mean() - 3.0)
