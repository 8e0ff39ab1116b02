"""Training speed of the GAN train_step: generator steps per second at a fixed batch size.

Two reference networks:

* ``small``: a Lebese & Ruan-sized generator, 128 -> 16, 32, 64, 128, 256, 512 (trainable swish) -> 8 (sigmoid),
  with a mirrored critic 8 -> 512, ..., 16 (LeakyReLU) -> 1; WGAN-GP, 5 critic steps;
* ``deep``: a 10 x 512 WGAN-GP, generator 18 -> 10 x 512 -> 18, critic 24 -> 10 x 512 -> 1 (conditioned on 6
  features), 5 critic steps.

The first ``--warmup`` steps (tracing, XLA compilation) are excluded from the timing. The machine and the float32
matmul rate measured first in the same process (``benchmarks.common.matmul_peak``) are printed with the table; the
FLOP of one step are counted by TensorFlow's profiler on the traced ``train_step`` graph, and the achieved rate per
core (per CPU-second) is given as a fraction of the matmul rate per core. This is a benchmark, not a test: only the
ratios compare between runs. For the papers' own networks and ``fit`` against a minimal loop see ``training.py``.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks import common  # noqa: E402


def build(name):
    from gan4hep.models import GAN
    from gan4hep.networks import mlp

    if name == "small":
        widths = [16, 32, 64, 128, 256, 512]
        gen = mlp(128, widths, 8, "trainable_swish", output_activation="sigmoid")
        critic = mlp(8, widths[::-1], 1, "leaky_relu")
        return GAN(gen, critic, 128, objective="wgan_gp", n_critic=5), 8, 0
    gen = mlp(18, [512] * 10, 18, "leaky_relu")
    critic = mlp(24, [512] * 10, 1, "leaky_relu")
    return GAN(gen, critic, 12, objective="wgan_gp", n_critic=5, context_dim=6), 18, 6


def time_model(name, batch, steps, warmup, seed, jit):
    import keras
    import numpy as np
    import tensorflow as tf

    from gan4hep.networks import count_trainable

    keras.utils.set_random_seed(seed)
    model, n_x, n_c = build(name)
    model.compile(keras.optimizers.Adam(1e-4, 0.5, 0.9), keras.optimizers.Adam(1e-4, 0.5, 0.9), jit_compile=jit)
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(batch * 8, n_x)).astype("float32")
    data = (x, rng.uniform(size=(batch * 8, n_c)).astype("float32")) if n_c else x
    ds = tf.data.Dataset.from_tensor_slices(data).repeat().batch(batch, drop_remainder=True).prefetch(4)
    model.fit(ds, epochs=1, steps_per_epoch=warmup, verbose=0, shuffle=False)
    t = common.timed(lambda: model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False), steps,
                     min_seconds=0)
    params = count_trainable(model.generator) + count_trainable(model.critic)
    spec = tf.TensorSpec((batch, n_x), tf.float32)
    flop = common.graph_flops(tf.function(model.train_step),
                              (spec, tf.TensorSpec((batch, n_c), tf.float32)) if n_c else spec)
    return {"model": name, "params": params, "steps_per_s": t.rate_wall, "events_per_s": t.rate_wall * batch,
            "steps_per_s_per_core": t.rate_cpu, "flop_per_step": flop,
            "gflops_per_core": t.rate_cpu * flop / 1e9}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", choices=["paper", "quick"], default="paper",
                   help="paper: batch 1024, 50 timed steps; quick: batch 256, 5 timed steps")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--steps", type=int, help="timed generator steps (after warm-up)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--models", default="small,deep")
    p.add_argument("--no-xla", action="store_true", help="run without XLA compilation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the table as Markdown here (atomically)")
    args = p.parse_args(argv)
    batch = args.batch_size or (1024 if args.preset == "paper" else 256)
    steps = args.steps or (50 if args.preset == "paper" else 5)

    common.quiet_tf()
    m = common.machine()
    peak = common.matmul_peak(min_seconds=2.0)
    rows = [time_model(mod, batch, steps, args.warmup, args.seed, "auto" if not args.no_xla else False)
            for mod in args.models.split(",")]
    lines = [f"train_step benchmark [preset {args.preset}]: batch {batch}, {steps} timed generator steps "
             f"(+{args.warmup} warm-up), n_critic 5, WGAN-GP, XLA {'off' if args.no_xla else 'auto'}",
             common.machine_line(m), common.peak_line(peak),
             "", "| model | trainable params (G+D) | generator steps/s | events/s | steps/s per core | "
             "GFLOP per step | GFLOP/s per core | fraction of peak |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['params']:,} | {r['steps_per_s']:.2f} | {r['events_per_s']:,.0f} | "
              f"{r['steps_per_s_per_core']:.2f} | {r['flop_per_step'] / 1e9:.3g} | {r['gflops_per_core']:.1f} | "
              f"{r['gflops_per_core'] / peak['gflops_per_core']:.2f} |" for r in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        from pathlib import Path

        from gan4hep.io import atomic_path

        with atomic_path(args.out) as tmp:
            Path(tmp).write_text(text)


if __name__ == "__main__":
    main()
