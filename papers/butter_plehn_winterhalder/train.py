"""Train the Butter, Plehn & Winterhalder ttbar -> 6 quark GAN (10 x 512, BCE + Roth regulariser, MMD on W/top masses).

    python papers/butter_plehn_winterhalder/train.py --preset quick --baseline --out runs/bpw_quick
    python papers/butter_plehn_winterhalder/train.py --preset paper --baseline --out runs/bpw_paper   # GPU

The parton sample is generated with data_prep.ttbar_partons (or read with --data). --no-mmd trains without the MMD
term; --baseline trains the no-MMD twin into OUT/no_mmd as well, so the evaluation shows what the MMD term does.
The quick preset uses the same networks and recipe with far fewer steps and events; it does not reach the
paper's precision.
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
PRESETS = {
    # slides: 1e6 training events, batch 1024, 1000 epochs x 1000 iterations
    "paper": dict(train_events=1_000_000, test_events=100_000, steps=1_000_000, steps_per_epoch=1000,
                  batch_size=1024, eval_every=10_000, checkpoint_every=10_000),
    # our choice: ~9 minutes per network pair on 2 CPU cores
    "quick": dict(train_events=100_000, test_events=50_000, steps=500, steps_per_epoch=50, batch_size=1024,
                  eval_every=100, checkpoint_every=100),
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
    p.add_argument("--kernel", default="breit_wigner", choices=["breit_wigner", "gaussian", "cauchy"])
    p.add_argument("--widths", type=float, nargs=4, metavar=("W1", "W2", "T1", "T2"),
                   help="kernel widths in GeV for m(W1), m(W2), m(t1), m(t2) (default: 2.1 2.1 1.5 1.5)")
    p.add_argument("--mmd-weight", type=float, default=1.0, help="lambda_G (slides: 1)")
    p.add_argument("--reg-weight", type=float, default=1e-3, help="lambda_D, Roth regulariser (slides: 1e-3)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (EventGAN: 1e-3)")
    p.add_argument("--decay", type=float, default=0.1, help="inverse-time decay per 1000 steps (EventGAN: 0.1)")
    p.add_argument("--ema-decay", type=float, help="option: EMA of the generator weights (not in the paper)")
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
    cfg["steps_per_epoch"] = min(cfg["steps_per_epoch"], cfg["steps"])
    cfg.update(preset=args.preset, seed=args.seed, sample_seed=args.sample_seed, data=args.data,
               kernel=args.kernel, widths=args.widths or [w for _, _, w in bpw.RESONANCES],
               mmd_weight=args.mmd_weight, reg_weight=args.reg_weight, lr=args.lr, decay=args.decay,
               ema_decay=args.ema_decay, jit_compile=not args.no_xla, use_mmd=not args.no_mmd)
    return args, cfg


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
    return bpw.build_gan(use_mmd=use_mmd, reg_weight=cfg["reg_weight"], mmd_weight=cfg["mmd_weight"],
                         kernel=cfg["kernel"], widths=cfg["widths"], lr=cfg["lr"], decay=cfg["decay"],
                         ema_decay=cfg["ema_decay"], jit_compile=cfg["jit_compile"], seed=cfg["seed"])


def peak_summary(gan, n=20000, seed=12345):
    """Cheap monitor during training: fraction of W/top candidates within 5 GeV of the pole and medians."""
    import observables

    m = observables.masses(gan.generate(n, seed=seed))
    w, t = m[:, :2].ravel(), m[:, 2:].ravel()
    return {"W_within_5GeV": float(np.mean(np.abs(w - 80.4) < 5)), "top_within_5GeV":
            float(np.mean(np.abs(t - 173.0) < 5)), "W_median": float(np.median(w)), "top_median": float(np.median(t))}


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
    x = (x_train / bpw.SCALE).astype(np.float32)
    ds = (tf.data.Dataset.from_tensor_slices(x).shuffle(min(len(x), 200_000), seed=cfg["seed"] + start).repeat()
          .batch(cfg["batch_size"], drop_remainder=True).prefetch(2))
    spe = cfg["steps_per_epoch"]
    evaluation = callbacks.PeriodicEvaluation(cfg["eval_every"], peak_summary,
                                              history_path=out / "peak_history.json", resume=start > 0)
    cbs = [callbacks.DivergenceGuard(out / "checkpoints"),
           callbacks.PeriodicCheckpoint(out / "checkpoints", cfg["checkpoint_every"], keep=2), evaluation,
           callbacks.StopAt(cfg["steps"])]
    t0 = time.time()
    remaining = max(cfg["steps"] - start, 0)
    hist = gan.fit(ds, epochs=-(-remaining // spe), steps_per_epoch=spe, callbacks=cbs, verbose=2)
    seconds = time.time() - t0
    gan.save_checkpoint(out / "model.npz")
    gan.save_generator(out / "generator.keras")
    info = {"steps": gan.step, "seconds": seconds, "steps_per_second": (gan.step - start) / max(seconds, 1e-9),
            "loss_history": {k: [float(v) for v in vals] for k, vals in hist.history.items()},
            "peak_history": evaluation.history}
    io.write_json(info, out / "history.json")
    if hist.history:
        fig, _ = plotting.training_curves(hist.history, xlabel=f"Epoch ({spe} steps)")
        plotting.save_figure(fig, out / "training_curves")
    print(f"[{cfg['preset']} preset] {'with' if use_mmd else 'without'} MMD: {gan.step} steps in {seconds:.0f} s")
    return gan


def main(argv=None):
    args, cfg = parse_args(argv)
    out = Path(args.out)
    print(f"preset: {cfg['preset']}  (the quick preset does not reach the paper's precision)"
          if cfg["preset"] == "quick" else "preset: paper (1e6 steps: GPU work, ~26 h in the paper)")
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
