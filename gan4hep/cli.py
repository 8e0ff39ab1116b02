"""``gan4hep`` console script: train a GAN on your own ntuple, generate events from it, evaluate them.

::

    gan4hep train --input events.root --columns pt,eta,m --out RUN --steps 20000
    gan4hep generate --run RUN --events 100000 --out generated.parquet
    gan4hep evaluate --run RUN --input validation.root

A run folder holds everything needed to continue or use a run: ``config.json`` (every option, so the networks
can be rebuilt), ``preprocessing.json`` (the min-max scaling, undone on generation), ``checkpoints/`` (weights and
optimizer state; ``train`` resumes from the newest), ``history.json`` (losses) and ``generator.keras``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

PRESETS = {
    # default: a general-purpose WGAN-GP (5 critic steps, Adam 1e-4, betas (0.5, 0.9): the robust setting)
    "default": {"steps": 20000, "widths": "256,256,256", "batch_size": 256},
    # quick: a smoke test that runs in seconds
    "quick": {"steps": 200, "widths": "64,64", "batch_size": 128},
}
DEFAULTS = {"latent_dim": 16, "activation": "leaky_relu", "objective": "wgan_gp", "lr": 1e-4, "beta1": 0.5,
            "beta2": 0.9, "noise": "normal", "checkpoint_every": 1000, "keep": 3}


class UserError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


def _split(text):
    return [c.strip() for c in text.split(",") if c.strip()] if text else []


# ---------------------------------------------------------------------------------------------------------------
# Data and model
# ---------------------------------------------------------------------------------------------------------------
def _read(path, columns, tree=None):
    from .io import read_table

    df = read_table(path, tree=tree, columns=columns)
    if len(df) == 0:
        raise UserError(f"{path}: the table is empty")
    for c in columns:
        if not _is_numeric(df[c]):
            raise UserError(f"{path}: column {c!r} is not numeric ({df[c].dtype})")
    return df


def _is_numeric(series):
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series) and not isinstance(series.dtype, pd.CategoricalDtype)


def build_model(config, preprocessing=None, condition_preprocessing=None):
    """Rebuild the (compiled) GAN described by a run's ``config``."""
    import keras

    from .models import GAN
    from .networks import mlp
    from .objectives import get_objective

    n_x, n_c, latent = len(config["columns"]), len(config["condition"]), config["latent_dim"]
    widths = [int(w) for w in _split(config["widths"])]
    gen = mlp(latent + n_c, widths, n_x, config["activation"], name="generator")
    critic = mlp(n_x + n_c, widths, 1, config["activation"], name="critic")
    kw = {}
    if config["objective"] == "wgan_clip":
        kw["clip"] = config["clip"]
    elif config["objective"] in ("wgan_gp", "bce_roth"):
        kw["weight"] = config["regulariser_weight"]
    model = GAN(gen, critic, latent, noise=config["noise"], objective=get_objective(config["objective"], **kw),
                n_critic=config["n_critic"], condition_dim=n_c, preprocessing=preprocessing,
                condition_preprocessing=condition_preprocessing, ema_decay=config["ema_decay"])

    def adam():
        return keras.optimizers.Adam(config["lr"], beta_1=config["beta1"], beta_2=config["beta2"])

    model.compile(adam(), adam())
    return model


def load_run(run):
    """(model with the newest checkpoint loaded, config) of a run folder."""
    from .callbacks import latest_checkpoint
    from .preprocessing import Pipeline

    run = Path(run)
    if not (run / "config.json").exists():
        raise UserError(f"{run}: not a gan4hep run folder (no config.json)")
    config = json.loads((run / "config.json").read_text())
    prep = Pipeline.load(run / "preprocessing.json")
    cprep = Pipeline.load(run / "condition_preprocessing.json") if config["condition"] else None
    model = build_model(config, prep, cprep)
    ckpt = latest_checkpoint(run / "checkpoints")
    if ckpt is None:
        raise UserError(f"{run}: no checkpoint in {run / 'checkpoints'}; train first")
    model.load_checkpoint(ckpt)
    return model, config


def _generate_frame(model, config, n, conditions, seed):
    """Generated events as a DataFrame: condition columns (if any) then the generated columns."""
    import pandas as pd

    cond = None if conditions is None else conditions[config["condition"]].to_numpy(dtype="float64")
    x = model.generate(n, condition=cond, seed=seed)
    out = pd.DataFrame(x, columns=config["columns"])
    if cond is not None:
        out = pd.concat([pd.DataFrame(cond, columns=config["condition"]), out], axis=1)
    return out


def _conditions(config, path, tree, n, seed):
    """Condition rows for ``n`` events: all rows of ``path`` (n=None) or ``n`` rows drawn with replacement."""
    import numpy as np

    if not config["condition"]:
        return None, n
    if path is None:
        raise UserError(f"this run is conditional on {config['condition']}: pass --conditions FILE holding them")
    df = _read(path, config["condition"], tree)
    if n is None or n == len(df):
        return df.reset_index(drop=True), len(df)
    rows = np.random.default_rng(seed).integers(0, len(df), n)
    return df.iloc[rows].reset_index(drop=True), n


# ---------------------------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------------------------
def cmd_train(args):
    import keras
    import tensorflow as tf

    from .callbacks import DivergenceGuard, PeriodicCheckpoint, StopAt, resume
    from .io import write_json
    from .preprocessing import MinMax, Pipeline

    preset = PRESETS[args.preset]
    columns = _split(args.columns)
    condition = _split(args.condition)
    if not columns:
        raise UserError("--columns is empty: name the features to generate, e.g. --columns pt,eta,phi")
    if set(columns) & set(condition):
        raise UserError(f"columns {sorted(set(columns) & set(condition))} are both generated and conditions")
    run = Path(args.out)
    config = {
        "input": str(args.input), "tree": args.tree, "columns": columns, "condition": condition,
        "preset": args.preset, "seed": args.seed,
        "steps": args.steps or preset["steps"], "batch_size": args.batch_size or preset["batch_size"],
        "widths": args.widths or preset["widths"], "latent_dim": args.latent_dim, "activation": args.activation,
        "objective": args.objective, "noise": args.noise, "lr": args.lr, "beta1": args.beta1, "beta2": args.beta2,
        "n_critic": args.n_critic if args.n_critic is not None else (5 if args.objective.startswith("wgan") else 1),
        "clip": args.clip,
        "regulariser_weight": (args.regulariser_weight if args.regulariser_weight is not None
                               else 10.0 if args.objective == "wgan_gp" else 1e-3),
        "ema_decay": args.ema_decay, "checkpoint_every": args.checkpoint_every,
    }
    old = run / "config.json"
    if old.exists():
        previous = json.loads(old.read_text())
        changed = [k for k in config if k not in ("steps",) and previous.get(k) != config[k]]
        if changed:
            raise UserError(f"{run} holds a run with different options ({', '.join(changed)}); "
                            "use a new --out or the same options to resume")

    df = _read(args.input, columns + condition, args.tree)
    x = df[columns].to_numpy(dtype="float64")
    prep = Pipeline([MinMax(-1.0, 1.0)], names=columns).fit(x)
    cprep = Pipeline([MinMax(-1.0, 1.0)], names=condition).fit(df[condition]) if condition else None
    if len(df) < config["batch_size"]:
        raise UserError(f"{args.input}: {len(df)} events is fewer than one batch (--batch-size "
                        f"{config['batch_size']})")

    keras.utils.set_random_seed(args.seed)
    model = build_model(config, prep, cprep)
    ckpt_dir = run / "checkpoints"
    start = resume(model, ckpt_dir)
    write_json(config, run / "config.json")
    prep.save(run / "preprocessing.json")
    if cprep is not None:
        cprep.save(run / "condition_preprocessing.json")

    remaining = config["steps"] - start
    print(f"gan4hep train [preset {args.preset}]: {len(df)} events, features {columns}"
          + (f", conditions {condition}" if condition else "")
          + f", objective {config['objective']} (n_critic {config['n_critic']}), "
          + (f"resuming at step {start}, " if start else "") + f"{max(remaining, 0)} steps to go")
    if remaining > 0:
        feats = prep.transform(x).astype("float32")
        data = (feats, cprep.transform(df[condition]).astype("float32")) if condition else feats
        ds = (tf.data.Dataset.from_tensor_slices(data)
              .shuffle(min(len(df), 100_000), seed=args.seed + start, reshuffle_each_iteration=True)
              .repeat().batch(config["batch_size"], drop_remainder=True).prefetch(2))
        per_epoch = min(remaining, max(1, args.log_every))
        callbacks = [DivergenceGuard(ckpt_dir),
                     PeriodicCheckpoint(ckpt_dir, config["checkpoint_every"], keep=DEFAULTS["keep"]),
                     StopAt(config["steps"])]
        hist = model.fit(ds, epochs=math.ceil(remaining / per_epoch), steps_per_epoch=per_epoch,
                         callbacks=callbacks, verbose=args.verbose, shuffle=False)
        history_path = run / "history.json"
        history = json.loads(history_path.read_text()) if history_path.exists() else []
        n_epochs = len(next(iter(hist.history.values()), []))
        for i in range(n_epochs):
            history.append({"step": min(start + (i + 1) * per_epoch, config["steps"]),
                            **{k: float(v[i]) for k, v in hist.history.items()}})
        write_json(history, history_path)
    model.save_generator(run / "generator.keras")
    print(f"done: generator step {model.step}; run folder {run}")
    return 0


def cmd_generate(args):
    from .io import write_table

    model, config = load_run(args.run)
    conditions, n = _conditions(config, args.conditions, args.tree, args.events, args.seed)
    if n is None:
        raise UserError("--events is required for an unconditional run")
    df = _generate_frame(model, config, n, conditions, args.seed)
    write_table(df, args.out)
    print(f"gan4hep generate [preset {config['preset']}]: {n} events from {args.run} (step {model.step}) "
          f"-> {args.out}")
    return 0


def cmd_evaluate(args):
    import numpy as np

    from .io import atomic_path, markdown_table, write_json
    from .metrics import fidelity_report
    from .plotting import grid_hist_ratio, save_figure

    model, config = load_run(args.run)
    ref = _read(args.input, config["condition"] + config["columns"], args.tree)
    if args.events and args.events < len(ref):
        ref = ref.iloc[np.random.default_rng(args.seed).choice(len(ref), args.events, replace=False)]
    ref = ref.reset_index(drop=True)
    conditions = ref[config["condition"]] if config["condition"] else None
    gen = _generate_frame(model, config, len(ref), conditions, args.seed)
    report = fidelity_report(ref[config["columns"]], gen[config["columns"]], config["columns"],
                             classifier=not args.no_classifier, seed=args.seed)
    out = Path(args.out) if args.out else Path(args.run) / "evaluation"
    summary = {"preset": config["preset"], "step": model.step, "events": len(ref), "input": str(args.input),
               **{k: float(v) for k, v in report.attrs.items()}}
    header = (f"gan4hep evaluate [preset {config['preset']}], run {args.run} at generator step {model.step}, "
              f"{len(ref)} events of {args.input}\n\n")
    footer = "\n" + "\n".join(f"- {k}: {v:.4g}" for k, v in summary.items() if isinstance(v, float)) + "\n"
    text = header + markdown_table(report, index=True) + footer
    with atomic_path(out / "fidelity.csv") as tmp:
        report.to_csv(tmp)
    with atomic_path(out / "fidelity.md") as tmp:
        Path(tmp).write_text(text)
    write_json(summary, out / "summary.json")
    fig, _ = grid_hist_ratio(ref, gen, config["columns"], gen_label=f"GAN (step {model.step})",
                             ref_label="Input")
    save_figure(fig, out / "histograms")
    print(text)
    print(f"written to {out}")
    return 0


# ---------------------------------------------------------------------------------------------------------------
def make_parser():
    p = argparse.ArgumentParser(prog="gan4hep", description=__doc__.split("\n\n")[0].replace("``", ""))
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a GAN on columns of a table (resumes an existing run folder)")
    t.add_argument("--input", required=True, help="training table (.root, .parquet, .csv, .h5)")
    t.add_argument("--tree", help="TTree (ROOT) or group (HDF5) name; default: the only one / 'events'")
    t.add_argument("--columns", required=True, help="comma-separated features to generate")
    t.add_argument("--condition", default="", help="comma-separated conditioning features (conditional GAN)")
    t.add_argument("--out", required=True, help="run folder")
    t.add_argument("--preset", choices=sorted(PRESETS), default="default",
                   help="default: full training; quick: a short smoke test (steps, widths, batch size)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--steps", type=int, help="total generator steps (preset default)")
    t.add_argument("--batch-size", type=int, help="events per batch (preset default)")
    t.add_argument("--widths", help="hidden layer widths of generator and critic, e.g. 256,256,256")
    t.add_argument("--latent-dim", type=int, default=DEFAULTS["latent_dim"])
    t.add_argument("--activation", default=DEFAULTS["activation"], help="hidden activation (leaky_relu, relu, "
                   "trainable_swish, ...)")
    t.add_argument("--objective", default=DEFAULTS["objective"],
                   choices=["wgan_gp", "wgan_clip", "bce", "bce_roth", "lsgan"])
    t.add_argument("--n-critic", type=int, help="critic steps per generator step (5 for WGAN, else 1)")
    t.add_argument("--clip", type=float, default=0.01, help="weight clip for wgan_clip")
    t.add_argument("--regulariser-weight", type=float,
                   help="gradient-penalty lambda (wgan_gp, default 10) or Roth weight (bce_roth, default 1e-3)")
    t.add_argument("--noise", default=DEFAULTS["noise"], choices=["normal", "uniform", "skewnormal"])
    t.add_argument("--lr", type=float, default=DEFAULTS["lr"], help="Adam learning rate of both networks")
    t.add_argument("--beta1", type=float, default=DEFAULTS["beta1"])
    t.add_argument("--beta2", type=float, default=DEFAULTS["beta2"])
    t.add_argument("--ema-decay", type=float, help="keep an EMA of the generator weights (e.g. 0.999)")
    t.add_argument("--checkpoint-every", type=int, default=DEFAULTS["checkpoint_every"])
    t.add_argument("--log-every", type=int, default=500, help="steps per logged 'epoch' in history.json")
    t.add_argument("--verbose", type=int, default=2, choices=[0, 1, 2], help="Keras fit verbosity")
    t.set_defaults(func=cmd_train)

    g = sub.add_parser("generate", help="generate events from a trained run")
    g.add_argument("--run", required=True, help="run folder written by 'gan4hep train'")
    g.add_argument("--events", type=int, help="number of events (conditional runs: default one per condition row)")
    g.add_argument("--conditions", help="table holding the condition columns (conditional runs)")
    g.add_argument("--tree", help="TTree / group of --conditions")
    g.add_argument("--out", required=True, help="output table; format by extension (.root, .parquet, .csv, .h5)")
    g.add_argument("--seed", type=int, default=0)
    g.set_defaults(func=cmd_generate)

    e = sub.add_parser("evaluate", help="compare a run's generated events with a reference table")
    e.add_argument("--run", required=True, help="run folder written by 'gan4hep train'")
    e.add_argument("--input", required=True, help="reference table (conditional runs take conditions from it)")
    e.add_argument("--tree", help="TTree / group of --input")
    e.add_argument("--events", type=int, default=100_000, help="at most this many reference events")
    e.add_argument("--out", help="output folder (default RUN/evaluation)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--no-classifier", action="store_true", help="skip the classifier two-sample test")
    e.set_defaults(func=cmd_evaluate)
    return p


def main(argv=None):
    """Entry point of the ``gan4hep`` console script; returns the exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (UserError, FileNotFoundError, KeyError, ValueError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"gan4hep {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
