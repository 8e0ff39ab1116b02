"""Train Lebese & Ruan's WGAN-GP on the dilepton + b sample and regenerate Table 1 and Figs. 3-5.

    python papers/lebese_ruan/train.py --preset quick --out runs/lebese_ruan_quick
    python papers/lebese_ruan/train.py --preset paper --out runs/lebese_ruan_paper     # GPU: 1e6 iterations

The sample is generated on the way (data_prep.dilepton) unless --input names a feature table or a Delphes file.
Events are split into training / validation / test; the checkpoint is chosen on the validation MC, Table 1 is
computed on the test MC only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

# The paper's recipe (section 4.3) and our quick preset. Options that differ from the paper are listed in
# every output (see `deviations`).
PAPER_RECIPE = dict(objective="wgan_gp", gp_weight=10.0, lr=2e-4, beta1=0.5, beta2=0.999, batch_size=1024,
                    n_critic=1, ema=None)
PRESETS = {
    # "Training is carried out for an overall of 1x10^6 epochs, with checkpoint savings at every quarter";
    # "The individual sample size of each feature increased ... to 5x10^5 events".
    "paper": dict(PAPER_RECIPE, steps=1_000_000, checkpoint_every=250_000, eval_every=250_000,
                  events=3_600_000, mpi=True),  # ~14 % pass the selection -> ~5e5 events
    # Same networks; CPU-sized: fewer events and steps, the WGAN-GP authors' 5:1 schedule with Adam(1e-4, 0.5,
    # 0.9) and an EMA of the generator, which the facts measured on these machines show converge in minutes.
    "quick": dict(PAPER_RECIPE, lr=1e-4, beta2=0.9, n_critic=5, ema=0.99, steps=3000, checkpoint_every=500,
                  eval_every=100, events=300_000, mpi=False),
}
SPLIT = (0.6, 0.2, 0.2)  # train / validation / test fractions (our choice)


def deviations(cfg):
    """Options of this run that differ from the paper's recipe, as 'name: ours (paper: theirs)'."""
    out = [f"{k}: {cfg[k]} (paper: {v})" for k, v in PAPER_RECIPE.items() if cfg.get(k) != v]
    for k, v in PRESETS["paper"].items():
        if k in ("steps", "checkpoint_every", "eval_every", "events", "mpi") and cfg.get(k) != v:
            out.append(f"{k}: {cfg.get(k)} (paper preset: {v})")
    if cfg["generator"] != "paper":
        out.append(f"generator: {cfg['generator']} (paper: 8 free sigmoid outputs)")
    if cfg["tail_treatment"] != "drop_events":
        out.append(f"tail_treatment: {cfg['tail_treatment']} (our faithful reading: drop_events)")
    return out


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    p.add_argument("--out", type=Path, default=None, help="run folder (default runs/lebese_ruan_<preset>)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--input", type=Path, default=None,
                   help="feature table (root/parquet/csv with the 8 feature columns) or Delphes ROOT file")
    p.add_argument("--data-dir", type=Path, default=Path("data/lebese_ruan"), help="where generated samples go")
    p.add_argument("--events", type=int, help="generated Pythia events (before selection)")
    p.add_argument("--jobs", type=int, default=2, help="processes for sample generation")
    p.add_argument("--steps", type=int, help="generator iterations")
    p.add_argument("--eval-every", type=int, help="validation evaluation (checkpoint selection) interval")
    p.add_argument("--checkpoint-every", type=int)
    p.add_argument("--batch-size", type=int, help="mini-batch size (paper: 1024)")
    p.add_argument("--objective", choices=["wgan_gp", "gan", "wgan"], help="gan = vanilla BCE; wgan = clipping")
    p.add_argument("--clip", type=float, default=0.01, help="weight clip c for --objective wgan (paper: [0.001, 0.1])")
    p.add_argument("--n-critic", type=int, help="critic updates per generator update (paper: 1)")
    p.add_argument("--lr", type=float)
    p.add_argument("--beta2", type=float)
    p.add_argument("--ema", type=float, help="EMA decay of the generator weights (0: off; paper: off)")
    p.add_argument("--generator", choices=["paper", "kinematic"], default="paper",
                   help="paper: 8 free sigmoid outputs; kinematic: 6 underlying quantities + exact feature layer")
    p.add_argument("--tail-treatment", choices=["drop_events", "clip", "none"], default="drop_events",
                   help="reading of '10%% of the tails is cut with re-bucketing to the last bin'")
    p.add_argument("--swish", choices=["per_unit", "scalar"], default="per_unit")
    p.add_argument("--select-by", choices=["ks", "auc", "mean"], default="ks",
                   help="checkpoint selection metric on validation MC (worst-feature KS, classifier AUC, worst "
                        "relative mean difference)")
    p.add_argument("--no-evaluate", action="store_true", help="train only; run evaluate.py later")
    return p.parse_args(argv)


def make_config(args):
    cfg = dict(PRESETS[args.preset], preset=args.preset, seed=args.seed, generator=args.generator,
               tail_treatment=args.tail_treatment, swish=args.swish, select_by=args.select_by, clip=args.clip)
    for key in ("events", "steps", "eval_every", "checkpoint_every", "batch_size", "objective", "n_critic", "lr",
                "beta2"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    if args.ema is not None:
        cfg["ema"] = args.ema or None
    cfg["input"] = str(args.input) if args.input else None
    return cfg


def load_events(cfg, args):
    """The 8-feature MC table (pandas), generated with data_prep.dilepton if no --input is given."""
    from gan4hep.io import read_table

    from model import FEATURES

    if args.input is not None:
        path = Path(args.input)
        try:
            return read_table(path, columns=list(FEATURES))
        except KeyError:
            from data_prep.dilepton import read_delphes  # a Delphes file: build the features from its objects

            return read_delphes(path)
    tag = f"e{cfg['events']}_s{cfg['seed']}_{'mpi' if cfg['mpi'] else 'nompi'}"
    out = args.data_dir / f"dilepton_{cfg['preset']}_{tag}.root"
    features = out.with_name(out.stem + "_features.root")
    if not features.exists():
        from data_prep.dilepton import make_sample

        print(f"generating {cfg['events']} dilepton events with Pythia 8 -> {out}", flush=True)
        features = make_sample(out, events=cfg["events"], seed=cfg["seed"], jobs=args.jobs, mpi=cfg["mpi"])
    return read_table(features, columns=list(FEATURES))


def split_and_preprocess(df, cfg):
    """Shuffle, split, apply the tail treatment fitted on the training split, fit min-max to [0, 1]."""
    from gan4hep.preprocessing import MinMax, Pipeline, TailClip

    from model import FEATURES

    x = df[list(FEATURES)].to_numpy(np.float64)
    rng = np.random.default_rng(cfg["seed"])
    x = x[rng.permutation(len(x))]
    n_train, n_val = int(SPLIT[0] * len(x)), int(SPLIT[1] * len(x))
    train, val, test = x[:n_train], x[n_train:n_train + n_val], x[n_train + n_val:]
    steps = []
    if cfg["tail_treatment"] == "drop_events":
        cut = TailClip(0.9, mode="drop_events").fit(train, names=list(FEATURES))
        train, val, test = (a[cut.mask(a)] for a in (train, val, test))
        cfg["tail_cut"] = cut.to_dict()
    elif cfg["tail_treatment"] == "clip":
        steps.append(TailClip(0.9, mode="clip"))
    steps.append(MinMax(0.0, 1.0))
    pipeline = Pipeline(steps, names=list(FEATURES)).fit(train)
    if len(train) < cfg["batch_size"]:
        raise ValueError(f"only {len(train)} training events after selection: fewer than one batch of "
                         f"{cfg['batch_size']}; generate more events (--events)")
    return train, val, test, pipeline


def build_gan(cfg, pipeline):
    """The GAN of this run's config (networks, objective, optimizers)."""
    import keras

    from gan4hep.models import GAN
    from gan4hep.objectives import BCE, WassersteinClip, WassersteinGP

    from model import DileptonKinematics, build_critic, build_generator, build_kinematic_generator

    if cfg["generator"] == "kinematic":
        generator = build_kinematic_generator(DileptonKinematics(**cfg["kinematics"]), swish=cfg["swish"])
    else:
        generator = build_generator(swish=cfg["swish"])
    objective = {"wgan_gp": lambda: WassersteinGP(cfg["gp_weight"]), "gan": BCE,
                 "wgan": lambda: WassersteinClip(cfg["clip"])}[cfg["objective"]]()
    gan = GAN(generator, build_critic(), latent_dim=generator.inputs[0].shape[-1], noise="normal_to_uniform",
              objective=objective, n_critic=cfg["n_critic"], preprocessing=pipeline, ema_decay=cfg["ema"])
    opt = lambda: keras.optimizers.Adam(cfg["lr"], beta_1=cfg["beta1"], beta_2=cfg["beta2"])  # noqa: E731
    gan.compile(g_optimizer=opt(), d_optimizer=opt())
    return gan


def kinematics_config(train_physical, pipeline=None):
    """Ranges of the kinematic generator's underlying quantities, from the training sample. Its output is scaled
    like the critic's input: with the pipeline's final min-max (after any clipping) when a pipeline is given."""
    lo, hi = train_physical.min(axis=0), train_physical.max(axis=0)
    if pipeline is not None:
        lo, hi = pipeline.steps[-1].min_, pipeline.steps[-1].max_
    deta = np.sqrt(np.maximum(train_physical[:, 7] ** 2 - train_physical[:, 6] ** 2, 0.0))
    return dict(pt0_range=[float(lo[0]), float(hi[0])], deta_max=float(deta.max() * 1.05),
                met_max=float(hi[4] * 1.05), feature_min=[float(v) for v in lo], feature_max=[float(v) for v in hi])


def validation_metric(select_by, val, seed):
    """Function model -> {metric: value} on the validation MC (lower is better)."""
    from gan4hep.metrics import classifier_two_sample_test, ks_statistic, relative_mean_difference

    ref = val

    def evaluate(model):
        gen = model.generate(max(len(ref), 20000), seed=seed, physical=False)
        if not np.all(np.isfinite(gen)):
            return {"ks": np.inf, "mean": np.inf, "auc": np.inf}
        gen = model.preprocessing.inverse_transform(gen)
        out = {"ks": float(np.max(ks_statistic(ref, gen))),
               "mean": float(np.max(relative_mean_difference(ref, gen)))}
        if select_by == "auc":
            out["auc"] = classifier_two_sample_test(ref, gen, n_splits=1, seed=seed)["auc"]
        return out

    return evaluate


def train(cfg, run, train_x, val_x, pipeline):
    import keras
    import tensorflow as tf

    from gan4hep.callbacks import DivergenceGuard, PeriodicCheckpoint, PeriodicEvaluation, StopAt, resume

    keras.utils.set_random_seed(cfg["seed"])
    gan = build_gan(cfg, pipeline)
    ckpt_dir = run / "checkpoints"
    start = resume(gan, ckpt_dir)
    if start:
        print(f"resumed from generator step {start}", flush=True)
    x = pipeline.transform(train_x).astype(np.float32)
    ds = (tf.data.Dataset.from_tensor_slices(x).shuffle(min(len(x), 200_000), seed=cfg["seed"] + start).repeat()
          .batch(cfg["batch_size"], drop_remainder=True).prefetch(2))
    evaluation = PeriodicEvaluation(cfg["eval_every"], validation_metric(cfg["select_by"], val_x, cfg["seed"]),
                                    monitor=cfg["select_by"], best_path=run / "best.npz",
                                    history_path=run / "validation_history.json", resume=start > 0)
    remaining = cfg["steps"] - start
    per_epoch = min(cfg["eval_every"], remaining) if remaining > 0 else 0
    t0 = time.time()
    if remaining > 0:
        history = gan.fit(ds, epochs=int(np.ceil(remaining / per_epoch)), steps_per_epoch=per_epoch, verbose=2,
                          callbacks=[DivergenceGuard(ckpt_dir), PeriodicCheckpoint(ckpt_dir, cfg["checkpoint_every"]),
                                     evaluation, StopAt(cfg["steps"])])
        losses = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    else:
        losses = {}
    seconds = time.time() - t0
    return gan, evaluation, losses, seconds, start


def main(argv=None):
    args = parse_args(argv)
    cfg = make_config(args)
    run = args.out or Path("runs") / f"lebese_ruan_{cfg['preset']}"
    run.mkdir(parents=True, exist_ok=True)
    t_start = time.time()

    df = load_events(cfg, args)
    train_x, val_x, test_x, pipeline = split_and_preprocess(df, cfg)
    if cfg["generator"] == "kinematic":
        cfg["kinematics"] = kinematics_config(train_x, pipeline)
    print(f"preset {cfg['preset']}: {len(train_x)} training, {len(val_x)} validation, {len(test_x)} test events "
          f"after the tail treatment ({cfg['tail_treatment']})", flush=True)
    for line in deviations(cfg):
        print(f"  differs from the paper: {line}")

    from gan4hep.io import write_json, write_table
    import pandas as pd

    from model import FEATURES

    pipeline.save(run / "preprocessing.json")
    write_table(pd.DataFrame(test_x, columns=FEATURES), run / "test_mc.parquet")
    write_table(pd.DataFrame(val_x, columns=FEATURES), run / "validation_mc.parquet")

    previous = json.loads((run / "config.json").read_text()) if (run / "config.json").exists() else {}
    gan, evaluation, losses, seconds, start = train(cfg, run, train_x, val_x, pipeline)
    if start:  # a resumed run: add the earlier invocation's training time if it ended at this step, else unknown
        earlier = previous.get("train_seconds") if previous.get("trained_steps") == start else None
        seconds = None if earlier is None else seconds + earlier
    cfg.update(selected_checkpoint=evaluation.best_step, selected_value=evaluation.best, resumed_from=start,
               train_seconds=seconds, trained_steps=gan.step, n_train=len(train_x), n_val=len(val_x),
               n_test=len(test_x), deviations=deviations(cfg))
    write_json(cfg, run / "config.json")
    write_json(losses, run / "losses.json")
    if evaluation.best is None:
        raise RuntimeError(f"{run}: no finite validation {cfg['select_by']} was recorded; nothing to select")
    took = "in an unknown time" if seconds is None else f"in {seconds / 60:.1f} min"
    print(f"trained {gan.step} generator steps {took}; best validation {cfg['select_by']} = "
          f"{evaluation.best:.4f} at step {evaluation.best_step}", flush=True)
    if not args.no_evaluate:
        import evaluate

        evaluate.evaluate_run(run)
    print(f"total {(time.time() - t_start) / 60:.1f} min; outputs in {run}")


if __name__ == "__main__":
    main()
