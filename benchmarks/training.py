"""Training speed: ``model.fit`` (the framework) against a minimal hand-written ``tf.function`` loop with the same
networks, objective, optimisers and batch, with and without XLA, for each paper's model, in one run.

The minimal loop does what ``GAN.train_step`` does (``n_critic`` critic updates on fresh noise, the objective's
regularisers, one generator update with the penalties, the EMA update) without Keras' ``fit`` machinery (data
adapter, callbacks, metric trackers); for the flow, one maximum-likelihood step. Both read the same
``tf.data`` pipeline (already in memory). The overhead ratio is fit's CPU time per step over the loop's (1.10 =
10 % overhead); fit's steps are timed inside one call by a callback, without the fixed cost of starting a ``fit``
call, which a run pays once. The headline ratio is the one with the XLA setting the recipe's ``compile`` resolves
to. The FLOP of one step are counted by TensorFlow's profiler on the loop's traced graph (every MatMul of forward,
backward and gradient-penalty passes), so the achieved GFLOP/s compare with the matmul peak measured first in the
same process.

Presets: ``--quick`` uses each paper's ``quick`` recipe (its batch size and critic schedule); every rate is the
median of 3 timed windows of at least 8 steps and 1 s; without it, the ``paper`` recipes and windows of 4 s.
A benchmark, not a test.

    python benchmarks/training.py --quick
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks import common  # noqa: E402
from benchmarks.paper_models import CASES  # noqa: E402


# every rate is the median of REPEATS timed windows of at least MIN_STEPS steps (a 2-3 step window on a shared
# machine scattered the fit / loop ratio by +-30 %)
REPEATS = 3
MIN_STEPS = 8


def dataset(case, batch, seed=0):
    import numpy as np
    import tensorflow as tf

    data = case.training_data(batch * 8, np.random.default_rng(seed))
    return tf.data.Dataset.from_tensor_slices(data).repeat().batch(batch, drop_remainder=True).prefetch(4)


def minimal_step(case, xla: bool):
    """The hand-written step of ``case.model`` (fresh optimisers configured as the model's), as a
    ``tf.function``: ``step(batch) -> loss``; ``step.on_iterator(iterator)`` takes the batch from a ``tf.data``
    iterator inside the graph (as ``fit`` does), so no Python-side tensor conversion runs per step."""
    import keras
    import tensorflow as tf
    from keras import ops

    m = case.model
    if case.network is None:  # a flow
        opt = m.optimizer.__class__.from_config(m.optimizer.get_config())
        variables = m.transform.trainable_weights
        opt.build(variables)

        def step(data):
            x, c = data if isinstance(data, tuple) else (data, None)
            with tf.GradientTape() as tape:
                loss = -ops.mean(m.log_prob(x, c, training=True))
            opt.apply(tape.gradient(loss, variables), variables)
            return loss

        return _wrap(step, xla)

    gen, critic, obj, pens, noise = m.generator, m.critic, m.objective, m.penalties, m.noise
    g_opt = m.g_optimizer.__class__.from_config(m.g_optimizer.get_config())
    d_opt = m.d_optimizer.__class__.from_config(m.d_optimizer.get_config())
    g_opt.build(gen.trainable_weights)
    d_opt.build(critic.trainable_weights)
    latent, n_critic, ema = m.latent_dim, m.n_critic, m.ema_generator

    def join(a, c):
        return a if c is None else ops.concatenate([a, ops.cast(c, a.dtype)], axis=-1)

    def step(data):
        x, c = data if isinstance(data, tuple) else (data, None)
        batch = ops.shape(x)[0]
        for _ in range(n_critic):
            z = noise.tf_sample(batch, latent)
            with tf.GradientTape() as tape:
                fake = gen(join(z, c), training=True)
                d_loss = obj.critic_loss(critic(join(x, c), training=True), critic(join(fake, c), training=True))
                for reg in obj.regularisers:
                    d_loss = d_loss + reg(lambda v: critic(join(v, c), training=True), x, fake)
            d_opt.apply(tape.gradient(d_loss, critic.trainable_weights), critic.trainable_weights)
            obj.after_critic_step(critic)
        z = noise.tf_sample(batch, latent)
        with tf.GradientTape() as tape:
            fake = gen(join(z, c), training=True)
            g_loss = obj.generator_loss(critic(join(fake, c), training=True))
            for pen in pens:
                g_loss = g_loss + pen(x, fake)
        g_opt.apply(tape.gradient(g_loss, gen.trainable_weights), gen.trainable_weights)
        if ema is not None:
            for w_ema, w in zip(ema.weights, gen.weights):
                w_ema.assign(m.ema_decay * w_ema + (1.0 - m.ema_decay) * w)
        return g_loss

    del keras
    return _wrap(step, xla)


def _wrap(step, xla):
    import tensorflow as tf

    fn = tf.function(step, jit_compile=xla)
    compiled = tf.function(step, jit_compile=True) if xla else None

    @tf.function
    def on_iterator(iterator):
        data = next(iterator)
        return compiled(data) if xla else step(data)

    fn.on_iterator = on_iterator
    return fn


def step_flops(case, batch) -> int:
    """FLOP of one training step (profiler count on the minimal step's graph, batch ``batch``)."""
    import tensorflow as tf

    spec = tf.TensorSpec((batch, case.n_features), tf.float32)
    if case.context_dim:
        spec = (spec, tf.TensorSpec((batch, case.context_dim), tf.float32))
    return common.graph_flops(minimal_step(case, False), spec)


def _step_clock():
    """A Keras callback that reads the wall and CPU clocks at the end of every step: the per-step cost of ``fit``
    between the end of its first step and the end of its last, without the fixed cost of one ``fit`` call (setting
    up its data iterator and callbacks), which a real run pays once for all its steps."""
    import keras

    class StepClock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            now = (time.perf_counter(), time.process_time())
            if batch == 0:
                self.first = now
            self.last, self.steps = now, batch

        def timing(self) -> common.Timing:
            return common.Timing(self.steps, self.steps, self.last[0] - self.first[0], self.last[1] - self.first[1])

    return StepClock()


def _time_fit(case, ds, xla, min_seconds):
    model = case.model
    model.jit_compile = xla
    model.train_function = None  # rebuild the step with this jit setting
    w0 = time.perf_counter()
    model.fit(ds, epochs=1, steps_per_epoch=2, verbose=0)  # trace / compile
    compile_s = time.perf_counter() - w0
    clock = _step_clock()
    model.fit(ds, epochs=1, steps_per_epoch=3, verbose=0, callbacks=[clock])
    est = clock.timing().wall_s / 2
    steps = int(min(max(min_seconds / max(est, 1e-6), MIN_STEPS), 2000))
    windows = []
    for _ in range(REPEATS):
        clock = _step_clock()
        model.fit(ds, epochs=1, steps_per_epoch=steps + 1, verbose=0, callbacks=[clock])
        windows.append(clock.timing())
    return common.median_window(windows), compile_s


def _time_loop(case, ds, xla, min_seconds):
    step = minimal_step(case, xla).on_iterator
    it = iter(ds)
    w0 = time.perf_counter()
    step(it).numpy()
    compile_s = time.perf_counter() - w0
    w0 = time.perf_counter()
    for _ in range(2):
        out = step(it)
    out.numpy()
    est = (time.perf_counter() - w0) / 2
    steps = int(min(max(min_seconds / max(est, 1e-6), MIN_STEPS), 2000))

    def many():
        out = None
        for _ in range(steps):
            out = step(it)
        out.numpy()

    return common.timed(many, steps, min_seconds=0, repeats=REPEATS), compile_s


def measure(name, preset, peak, min_seconds, xla_modes=(False, True), print_fn=print):
    t0 = time.perf_counter()
    case = CASES[name](preset)
    build_s = time.perf_counter() - t0
    recipe_xla = bool(case.model.jit_compile)  # what the recipe's compile resolves to ("auto" decided by Keras)
    batch = case.batch_size
    ds = dataset(case, batch)
    try:
        flop = step_flops(case, batch)
    except Exception as e:  # noqa: BLE001 - the profiler is best effort
        print_fn(f"({name}: no FLOP count: {type(e).__name__}: {e})")
        flop = 0
    rows = {}
    for xla in xla_modes:
        for kind, fn in (("fit", _time_fit), ("loop", _time_loop)):
            key = f"{kind}{'_xla' if xla else ''}"
            try:
                t, compile_s = fn(case, ds, xla, min_seconds)
            except Exception as e:  # noqa: BLE001 - an op without an XLA kernel: report, go on
                rows[key] = {"error": f"{type(e).__name__}: {str(e)[:200]}"}
                continue
            rate = common.device_rate(t)
            rows[key] = {"steps_per_s": rate, "steps_per_s_wall": t.rate_wall, "steps": t.items,
                         "cores_used": t.cores_used, "compile_s": compile_s, "gflops_per_core": rate * flop / 1e9,
                         "fraction_of_peak": rate * flop / 1e9 / peak["gflops_per_core"] if flop else None}
    ratio = {}
    for suffix in ("", "_xla"):
        f, lp = rows.get("fit" + suffix, {}), rows.get("loop" + suffix, {})
        if "steps_per_s" in f and "steps_per_s" in lp:
            ratio["xla" if suffix else "no_xla"] = lp["steps_per_s"] / f["steps_per_s"]
    xla_gain = None
    if "steps_per_s" in rows.get("fit_xla", {}) and "steps_per_s" in rows.get("fit", {}):
        xla_gain = rows["fit_xla"]["steps_per_s"] / rows["fit"]["steps_per_s"]
    res = {"paper": case.paper, "preset": preset, "batch_size": batch, "n_critic": case.n_critic,
           "flop_per_step": flop, "build_s": build_s, "runs": rows, "fit_overhead_ratio": ratio,
           "xla_speedup_fit": xla_gain, "recipe_jit_compile": recipe_xla}
    print_fn(report(name, res))
    return res


def report(name, r):
    lines = [f"\n{name} ({r['paper']}, {r['preset']} preset): batch {r['batch_size']}, n_critic {r['n_critic']}, "
             f"{r['flop_per_step'] / 1e9:.3g} GFLOP per generator step (profiler), recipe jit_compile "
             f"{r['recipe_jit_compile']}"]
    rows = []
    for key, v in r["runs"].items():
        if "error" in v:
            rows.append([key, "-", "-", "-", "-", "-", v["error"][:70]])
        else:
            rows.append([key, v["steps_per_s"], v["steps_per_s_wall"], v["cores_used"], v["gflops_per_core"],
                         v["fraction_of_peak"], f"{v['compile_s']:.1f}"])
    lines.append(common.markdown(["run", "steps/s/core", "steps/s wall", "cores busy", "GFLOP/s/core",
                                  "fraction of peak", "first step s"], rows))
    lines.append("fit overhead (loop steps/s over fit steps/s, per core): " +
                 ", ".join(f"{k} {v:.3f}" for k, v in r["fit_overhead_ratio"].items()) +
                 (f"; XLA speed-up of fit: {r['xla_speedup_fit']:.3f}" if r["xla_speedup_fit"] else ""))
    return "\n".join(lines)


def run(models, quick=True, peak=None, min_seconds=None, print_fn=print):
    common.quiet_tf()
    min_seconds = min_seconds or (1.0 if quick else 4.0)
    peak = peak or common.matmul_peak(min_seconds=2.0)
    preset = "quick" if quick else "paper"
    res = {name: measure(name, preset, peak, min_seconds, print_fn=print_fn) for name in models}
    headline = {}
    for name, r in res.items():
        ratios = r["fit_overhead_ratio"]
        headline[name] = ratios.get("xla" if r["recipe_jit_compile"] else "no_xla")
    return {"training": res, "fit_overhead_ratio": headline}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="quick recipes, windows of >= 1 s")
    p.add_argument("--models", default=",".join(CASES), help=f"comma-separated subset of {list(CASES)}")
    p.add_argument("--min-seconds", type=float)
    p.add_argument("--out", help="write the results as JSON here")
    args = p.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    unknown = set(models) - set(CASES)
    if unknown:
        p.error(f"unknown model(s) {sorted(unknown)}; choose from {list(CASES)}")
    m = common.machine()
    peak = common.matmul_peak(min_seconds=2.0)
    print(common.header("training: GAN.fit / Flow.fit against a minimal tf.function loop, with and without XLA",
                        m, peak))
    res = run(models, args.quick, peak, args.min_seconds)
    if args.out:
        common.write_json({"machine": m, "matmul": peak, **res}, args.out)


if __name__ == "__main__":
    main()
