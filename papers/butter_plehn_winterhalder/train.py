"""Train the Butter, Plehn & Winterhalder ttbar -> 6 quark GAN (10 x 512, BCE + Roth regulariser, MMD on W/top masses).

    python papers/butter_plehn_winterhalder/train.py --preset quick --baseline --out runs/bpw_quick
    python papers/butter_plehn_winterhalder/train.py --preset paper --baseline --out runs/bpw_paper   # GPU

The parton sample is generated with data_prep.ttbar_partons (or read with --data). --no-mmd trains without the MMD
term; --baseline trains the no-MMD twin into OUT/no_mmd as well, so the evaluation shows what the MMD term does.
The quick preset uses the same networks with far fewer steps and events and switches on named options that are
not in the paper (batch 256, lambda_G 10, extra MMD kernel widths, a compressed learning-rate decay, checkpoint
selection on a validation sample); every setting that differs from the paper's recipe is printed and recorded in
config.json. It does not reach the paper's precision.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import model as bpw  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
# The paper's recipe (slides + EventGAN). A preset or a command-line option that changes one of these is a
# deviation: printed at the start and recorded in config.json (see `deviations`).
PAPER_RECIPE = dict(lr=1e-3, decay=0.1, decay_steps=1000, batch_size=1024, reg_weight=1e-3, mmd_weight=1.0,
                    kernel="breit_wigner", widths=[w for _, _, w in bpw.RESONANCES], mmd_extra_widths=[],
                    ema_decay=None, select_best=False, init="glorot", component_mmd=0.0)
PRESETS = {
    # slides: 1e6 training events, batch 1024, 1000 epochs x 1000 iterations
    "paper": dict(PAPER_RECIPE, train_events=1_000_000, test_events=100_000, steps=1_000_000, steps_per_epoch=1000,
                  eval_every=10_000, checkpoint_every=10_000),
    # Our choice: the same networks, ~5 minutes per network on 2 CPU cores. Options that differ from the paper's
    # recipe (measured in the README): batch 256 (more steps per minute), lambda_G = 10 and MMD kernels of 10 and
    # 50 GeV next to the physical widths (a gradient while the masses are still far from the poles), the paper's
    # inverse-time decay compressed (x 1/(1 + floor(step / 200)) instead of 0.1 per 1000 steps), and the
    # checkpoint chosen on a validation part of the training sample.
    "quick": dict(PAPER_RECIPE, batch_size=256, mmd_weight=10.0, mmd_extra_widths=[10.0, 50.0], decay=1.0,
                  decay_steps=200, select_best=True, train_events=100_000, test_events=50_000, steps=1600,
                  steps_per_epoch=50, eval_every=50, checkpoint_every=100),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--seed", type=int, default=0, help="training seed (networks, noise, data split)")
    p.add_argument("--data", help="feature table with columns p{i}_px/py/pz/E, i=0..5 (default: generate one)")
    p.add_argument("--sample-seed", type=int, default=1, help="Pythia seed of the generated sample")
    p.add_argument("--events", type=int, help="training events (preset default)")
    p.add_argument("--test-events", type=int, help="held-out events for the evaluation (preset default)")
    p.add_argument("--steps", type=int, help="generator steps (preset default)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--no-mmd", action="store_true", help="drop the MMD term (lambda_G = 0)")
    p.add_argument("--baseline", action="store_true", help="also train the no-MMD twin into OUT/no_mmd")
    # Recipe options: default = the preset's value (the paper preset: the paper's recipe).
    p.add_argument("--kernel", choices=["breit_wigner", "gaussian", "cauchy"], help="MMD kernel (breit_wigner)")
    p.add_argument("--widths", type=float, nargs=4, metavar=("W1", "W2", "T1", "T2"),
                   help="kernel widths in GeV for m(W1), m(W2), m(t1), m(t2) (default: 2.1 2.1 1.5 1.5)")
    p.add_argument("--mmd-weight", type=float, help="lambda_G (slides: 1)")
    p.add_argument("--reg-weight", type=float, help="lambda_D, Roth regulariser (slides: 1e-3)")
    p.add_argument("--lr", type=float, help="Adam learning rate (EventGAN: 1e-3)")
    p.add_argument("--decay", type=float, help="inverse-time decay per --decay-steps steps (EventGAN: 0.1)")
    p.add_argument("--decay-steps", type=int, help="steps per inverse-time decay stage (EventGAN: 1000)")
    p.add_argument("--init", choices=bpw.INITS,
                   help="weight initialisation: glorot (Keras' default; the paper names none) or kaiming (option: "
                        "variance-preserving for LeakyReLU; not in the paper)")
    p.add_argument("--component-mmd", type=float, metavar="LAMBDA",
                   help="option: add LAMBDA x a Gaussian MMD on each of the 24 four-vector components, against mode "
                        "collapse, in both networks (not in the paper; 0: off)")
    p.add_argument("--ema-decay", type=float,
                   help="option: EMA of the generator weights, used for generation (not in the paper; 0: off)")
    p.add_argument("--mmd-extra-widths", type=float, nargs="*", metavar="GEV",
                   help="option: further MMD kernel widths in GeV added to every candidate, a multi-scale MMD "
                        "(not in the paper; the flag without values: none)")
    sel = p.add_mutually_exclusive_group()
    sel.add_argument("--select-best", dest="select_best", action="store_true", default=None,
                     help="option: hold out a validation part of the training sample and keep the checkpoint whose "
                          "W/top mass distributions are closest to it (clipped Wasserstein distance; not in the "
                          "paper; never uses the test sample)")
    sel.add_argument("--no-select-best", dest="select_best", action="store_false", default=None,
                     help="keep the final weights")
    p.add_argument("--no-xla", action="store_true", help="do not jit-compile the train step")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in OUT")
    p.add_argument("--no-evaluate", action="store_true", help="skip evaluate.py at the end")
    p.add_argument("--no-classifier", action="store_true", help="evaluation without the classifier test")
    p.add_argument("--jobs", type=int, default=1, help="processes for generating the sample")
    args = p.parse_args(argv)
    cfg = dict(PRESETS[args.preset])
    for key, val in (("train_events", args.events), ("test_events", args.test_events), ("steps", args.steps),
                     ("batch_size", args.batch_size)):
        if val is not None:
            cfg[key] = int(val)
    for key in ("kernel", "mmd_weight", "reg_weight", "lr", "decay", "decay_steps", "init", "component_mmd",
                "select_best"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    if cfg["decay_steps"] < 1 or cfg["component_mmd"] < 0 or cfg["mmd_weight"] < 0:
        p.error("--decay-steps must be >= 1, --component-mmd and --mmd-weight >= 0")
    if args.widths is not None:
        cfg["widths"] = list(args.widths)
    if args.mmd_extra_widths is not None:
        cfg["mmd_extra_widths"] = list(args.mmd_extra_widths)
    if args.ema_decay is not None:
        cfg["ema_decay"] = args.ema_decay or None  # 0 switches it off
    cfg["steps_per_epoch"] = min(cfg["steps_per_epoch"], cfg["steps"])
    cfg.update(preset=args.preset, seed=args.seed, sample_seed=args.sample_seed, data=args.data,
               jit_compile=not args.no_xla, use_mmd=not args.no_mmd)
    cfg["deviations"] = deviations(cfg)
    return args, cfg


def deviations(cfg):
    """Recipe settings of this run that differ from the paper's, as 'name: ours (paper: theirs)'."""
    out = [f"{k}: {cfg.get(k)} (paper: {v})" for k, v in PAPER_RECIPE.items() if cfg.get(k) != v]
    paper = PRESETS["paper"]
    for k in ("train_events", "steps"):
        if cfg.get(k) != paper[k]:
            out.append(f"{k}: {cfg.get(k)} (paper preset: {paper[k]})")
    return out


def sample_path(cfg):
    """The feature table: --data, or a data_prep sample cached under data/butter_plehn_winterhalder/."""
    if cfg.get("data"):
        return Path(cfg["data"])
    n = cfg["train_events"] + cfg["test_events"]
    out = REPO / "data" / "butter_plehn_winterhalder" / f"ttbar_partons_e{n}_s{cfg['sample_seed']}.root"
    return out.with_name(out.stem + "_features.root")


def load_events(cfg, jobs=1):
    """(train, test) arrays (n, 24) in GeV; generates the sample if needed; split fixed by ``cfg['seed']``."""
    from gan4hep import io

    path = sample_path(cfg)
    if not path.exists() and not cfg.get("data"):
        from data_prep import ttbar_partons

        raw = path.with_name(path.name.replace("_features.root", ".root"))
        print(f"generating {cfg['train_events'] + cfg['test_events']} parton-level ttbar events -> {raw}")
        path = Path(ttbar_partons.make_sample(raw, events=cfg["train_events"] + cfg["test_events"],
                                              seed=cfg["sample_seed"], jobs=jobs))
    x = io.read_table(path, columns=bpw.COLUMNS).to_numpy(dtype=np.float64)
    need = cfg["train_events"] + cfg["test_events"]
    if len(x) < need:
        raise ValueError(f"{path}: {len(x)} events, but {cfg['train_events']} training + {cfg['test_events']} "
                         "test events were requested")
    perm = np.random.default_rng(cfg["seed"]).permutation(len(x))[:need]
    return x[perm[cfg["test_events"]:]], x[perm[:cfg["test_events"]]]


def build(cfg, use_mmd):
    """The GAN of a run config; recipe keys missing from an older config.json take the paper's values."""
    cfg = {**PAPER_RECIPE, **cfg}
    return bpw.build_gan(use_mmd=use_mmd, reg_weight=cfg["reg_weight"], mmd_weight=cfg["mmd_weight"],
                         kernel=cfg["kernel"], widths=cfg["widths"], lr=cfg["lr"], decay=cfg["decay"],
                         decay_steps=cfg["decay_steps"], ema_decay=cfg["ema_decay"], jit_compile=cfg["jit_compile"],
                         seed=cfg["seed"], extra_widths=cfg["mmd_extra_widths"], init=cfg["init"],
                         component_mmd=cfg["component_mmd"])


POLES = (80.4, 173.0)  # GeV: where the monitor counts W and top candidates
PEAK_WINDOW = 30.0     # GeV: masses are clipped to pole +- this for the selection distance


def _peak_fractions(m):
    """Fractions of W and top candidates (pooled) within 5 and 15 GeV of the poles, from (n, 4) masses."""
    w, t = m[:, :2].ravel(), m[:, 2:].ravel()
    return {f"{name}_within_{d}GeV": float(np.mean(np.abs(v - pole) < d))
            for name, v, pole in (("W", w, POLES[0]), ("top", t, POLES[1])) for d in (5, 15)}


def peak_distance(m, m_ref):
    """Mean over the four candidates of the 1-d Wasserstein distance (GeV) between two mass samples, each mass
    clipped to pole +- PEAK_WINDOW: sensitive to the peak position and width, bounded for far-off events."""
    from gan4hep.metrics import wasserstein

    lo = np.repeat(np.asarray(POLES), 2) - PEAK_WINDOW
    hi = np.repeat(np.asarray(POLES), 2) + PEAK_WINDOW
    m = np.nan_to_num(np.asarray(m, np.float64), nan=0.0)
    return float(np.mean(wasserstein(np.clip(m_ref, lo, hi), np.clip(m, lo, hi))))


def peak_summary(gan, n=20000, seed=12345, reference=None):
    """Cheap monitor during training: fractions of W/top candidates near the poles, and their quartiles.

    With ``reference`` (validation masses, (n, 4)), ``peak_distance`` (see there) is added: the
    checkpoint-selection metric of ``--select-best``.
    """
    import observables

    m = observables.masses(gan.generate(n, seed=seed))
    out = _peak_fractions(m)
    for name, pooled in (("W", m[:, :2]), ("top", m[:, 2:])):
        for q, v in zip(("q25", "median", "q75"), np.quantile(pooled, (0.25, 0.5, 0.75))):
            out[f"{name}_{q}"] = float(v)
    if reference is not None:
        out["peak_distance"] = peak_distance(m, reference)
    return out


def train_one(cfg, out, x_train, use_mmd, resume=False):
    """Train one GAN into ``out``; writes config.json, checkpoints/, history.json, generator.keras, model.npz."""
    import keras
    import tensorflow as tf

    from gan4hep import callbacks, io, plotting

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(cfg["seed"])
    gan = build(cfg, use_mmd)
    run_cfg = {**cfg, "use_mmd": use_mmd, "sample": str(sample_path(cfg))}
    io.write_json(run_cfg, out / "config.json")
    start = callbacks.resume(gan, out / "checkpoints") if resume else 0
    reference, n_val = None, 0
    if cfg.get("select_best"):  # validation events: the end of the (already shuffled) training part
        import observables

        n_val = max(1, min(10_000, len(x_train) // 10))
        x_train, x_val = x_train[:-n_val], x_train[-n_val:]
        reference = observables.masses(x_val)
    x = (x_train / bpw.SCALE).astype(np.float32)
    ds = (tf.data.Dataset.from_tensor_slices(x).shuffle(min(len(x), 200_000), seed=cfg["seed"] + start).repeat()
          .batch(cfg["batch_size"], drop_remainder=True).prefetch(2))
    spe = cfg["steps_per_epoch"]
    best = out / "checkpoints" / "best.npz"
    evaluation = callbacks.PeriodicEvaluation(cfg["eval_every"], lambda m: peak_summary(m, reference=reference),
                                              monitor=None if reference is None else "peak_distance", mode="min",
                                              best_path=None if reference is None else best,
                                              history_path=out / "peak_history.json", resume=start > 0)
    cbs = [callbacks.DivergenceGuard(out / "checkpoints"),
           callbacks.PeriodicCheckpoint(out / "checkpoints", cfg["checkpoint_every"], keep=2), evaluation,
           callbacks.StopAt(cfg["steps"])]
    t0 = time.time()
    remaining = max(cfg["steps"] - start, 0)
    hist = gan.fit(ds, epochs=-(-remaining // spe), steps_per_epoch=spe, callbacks=cbs, verbose=2)
    seconds = time.time() - t0
    final_step, selected = gan.step, None
    if reference is not None and evaluation.best_step is not None and best.exists():
        selected = evaluation.best_step
        gan.load_checkpoint(best)
        print(f"selected the checkpoint of step {selected} (validation peak_distance {evaluation.best:.4f}, "
              f"{n_val} validation events)")
    gan.save_checkpoint(out / "model.npz")
    gan.save_generator(out / "generator.keras")
    io.write_json({**run_cfg, "trained_steps": final_step, "selected_step": selected, "n_validation": n_val},
                  out / "config.json")
    info = {"steps": final_step, "selected_step": selected, "seconds": seconds,
            "steps_per_second": (final_step - start) / max(seconds, 1e-9),
            "loss_history": {k: [float(v) for v in vals] for k, vals in hist.history.items()},
            "peak_history": evaluation.history}
    io.write_json(info, out / "history.json")
    if hist.history:
        fig, _ = plotting.training_curves(hist.history, xlabel=f"Epoch ({spe} steps)")
        plotting.save_figure(fig, out / "training_curves")
    print(f"[{cfg['preset']} preset] {'with' if use_mmd else 'without'} MMD: {final_step} steps in {seconds:.0f} s")
    return gan


def main(argv=None):
    args, cfg = parse_args(argv)
    out = Path(args.out)
    print(f"preset: {cfg['preset']}  (the quick preset does not reach the paper's precision)"
          if cfg["preset"] == "quick" else "preset: paper (1e6 steps: GPU work, ~26 h in the paper)")
    for line in cfg["deviations"]:
        print(f"  differs from the paper: {line}")
    x_train, _ = load_events(cfg, args.jobs)
    train_one(cfg, out, x_train, cfg["use_mmd"], args.resume)
    baseline = None
    if args.baseline and cfg["use_mmd"]:
        baseline = out / "no_mmd"
        train_one(cfg, baseline, x_train, False, args.resume)
    if not args.no_evaluate:
        import evaluate

        evaluate.evaluate_run(out, baseline, classifier=not args.no_classifier)


if __name__ == "__main__":
    main()
