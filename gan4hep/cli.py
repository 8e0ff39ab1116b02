"""``gan4hep`` console script: train a generative model (``--model gan|flow``) on your own ntuple, sample events from it, evaluate them.

::

    gan4hep train --input events.root --columns pt,eta,m --out RUN --steps 20000
    gan4hep generate --run RUN --samples 100000 --out generated.parquet
    gan4hep evaluate --run RUN --input validation.root

The run folder is a ``gan4hep.runs.Run``: ``recipe.json`` (every option, written once, so the networks can be
rebuilt), ``preprocessing.json`` (the min-max scaling, undone on sampling), ``checkpoints/`` (weights and optimizer
state; ``train`` on the same folder resumes from the newest), ``losses.json``, ``results.json`` and ``model.keras``
(the exported sampler, physical units). Training goes through ``gan4hep.training.train``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from . import recipes
from .errors import InputError


@dataclasses.dataclass(frozen=True)
class Recipe:
    """What ``gan4hep train`` trains: the table, the networks and the schedule (all stored in recipe.json)."""

    preset: str = "default"
    model: str = "gan"  # gan | flow
    input: str = ""
    tree: str | None = None
    columns: tuple[str, ...] = ()
    context: tuple[str, ...] = ()
    seed: int = 0
    steps: int = 20000
    batch_size: int = 256
    widths: tuple[int, ...] = (256, 256, 256)
    latent_dim: int = 16
    activation: str = "leaky_relu"
    objective: str = "wgan_gp"
    noise: str = "normal"
    lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.9
    n_critic: int | None = None  # None: 5 for Wasserstein objectives, else 1
    clip: float = 0.01
    regulariser_weight: float | None = None  # None: 10 for wgan_gp, 1e-3 for bce_roth
    ema_decay: float | None = None
    flow_steps: int = 5  # flow: coupling steps
    bins: int = 8  # flow: rational-quadratic spline bins
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    log_every: int = 500

    def resolved(self) -> "Recipe":
        """The recipe with the objective-dependent defaults filled in."""
        return dataclasses.replace(
            self, n_critic=self.n_critic if self.n_critic is not None else (5 if self.objective.startswith("wgan")
                                                                             else 1),
            regulariser_weight=(self.regulariser_weight if self.regulariser_weight is not None
                                else 10.0 if self.objective == "wgan_gp" else 1e-3))


# default: a general-purpose WGAN-GP (5 critic steps, Adam 1e-4, betas (0.5, 0.9): the robust setting);
# quick: a smoke test that runs in seconds.
DEFAULT = Recipe()
PRESETS = {"default": DEFAULT,
           "quick": dataclasses.replace(DEFAULT, preset="quick", steps=200, widths=(64, 64), batch_size=128)}


class UserError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


def _split(text):
    return tuple(c.strip() for c in text.split(",") if c.strip()) if text else ()


# ---------------------------------------------------------------------------------------------------------------
# Data and model
# ---------------------------------------------------------------------------------------------------------------
def _read(path, columns, tree=None):
    import pandas as pd

    from .io import read_table

    df = read_table(path, tree=tree, columns=list(columns))
    if len(df) == 0:
        raise UserError(f"{path}: the table is empty")
    for c in columns:
        if not pd.api.types.is_numeric_dtype(df[c]) or isinstance(df[c].dtype, pd.CategoricalDtype):
            raise UserError(f"{path}: column {c!r} is not numeric ({df[c].dtype})")
    return df


def build_model(recipe: Recipe, preprocessing=None, context_preprocessing=None):
    """The compiled model described by a run's recipe: a GAN (generator and critic MLPs of ``widths``) or a
    rational-quadratic spline flow (``flow_steps`` couplings with ``bins`` bins, residual conditioners of width
    ``widths[0]`` and ``len(widths)`` blocks; a masked autoregressive one for a single unconditional column)."""
    import keras

    if recipe.model == "flow":
        from .flows import maf, spline_flow

        n_x, n_c = len(recipe.columns), len(recipe.context)
        if n_x == 1 and not n_c:
            flow = maf(1, steps=recipe.flow_steps, bins=recipe.bins, hidden_features=recipe.widths[0],
                       num_layers=len(recipe.widths), preprocessing=preprocessing)
        else:
            flow = spline_flow(n_x, n_c, preprocessing, context_preprocessing, steps=recipe.flow_steps,
                               bins=recipe.bins, hidden_features=recipe.widths[0], num_blocks=len(recipe.widths))
        flow.compile(keras.optimizers.Adam(recipe.lr))
        return flow

    from .models import GAN
    from .networks import mlp
    from .objectives import get_objective

    n_x, n_c, latent = len(recipe.columns), len(recipe.context), recipe.latent_dim
    gen = mlp(latent + n_c, recipe.widths, n_x, recipe.activation, name="generator")
    critic = mlp(n_x + n_c, recipe.widths, 1, recipe.activation, name="critic")
    kw = {}
    if recipe.objective == "wgan_clip":
        kw["clip"] = recipe.clip
    elif recipe.objective in ("wgan_gp", "bce_roth"):
        kw["weight"] = recipe.regulariser_weight
    model = GAN(gen, critic, latent, noise=recipe.noise, objective=get_objective(recipe.objective, **kw),
                n_critic=recipe.n_critic, context_dim=n_c, preprocessing=preprocessing,
                context_preprocessing=context_preprocessing, ema_decay=recipe.ema_decay)

    def adam():
        return keras.optimizers.Adam(recipe.lr, beta_1=recipe.beta1, beta_2=recipe.beta2)

    model.compile(adam(), adam())
    return model


def load_run(path):
    """(model with the newest checkpoint loaded, recipe) of a run folder written by ``gan4hep train``."""
    from .runs import Run

    run = Run(path)
    if not run.exists():
        raise UserError(f"{path}: not a gan4hep run folder (no {Run.RECIPE})")
    recipe = recipes.from_dict(Recipe, run.recipe(), base=DEFAULT)
    cprep = run.load_preprocessing("context_preprocessing") if recipe.context else None
    model = build_model(recipe, run.load_preprocessing(), cprep)
    run.restore(model, prefer_best=False)
    return model, recipe


def _sample_frame(model, recipe, n, context, seed):
    """Sampled events as a DataFrame: context columns (if any) then the generated columns."""
    import pandas as pd

    ctx = None if context is None else context[list(recipe.context)].to_numpy(dtype="float64")
    out = pd.DataFrame(model.sample(n, context=ctx, seed=seed), columns=list(recipe.columns))
    if ctx is not None:
        out = pd.concat([pd.DataFrame(ctx, columns=list(recipe.context)), out], axis=1)
    return out


def _context_rows(recipe, path, tree, n, seed):
    """Context rows for ``n`` events: all rows of ``path`` (n=None) or ``n`` rows drawn with replacement."""
    import numpy as np

    if not recipe.context:
        return None, n
    if path is None:
        raise UserError(f"this run is conditional on {list(recipe.context)}: pass --input FILE holding them")
    df = _read(path, recipe.context, tree)
    if n is None or n == len(df):
        return df.reset_index(drop=True), len(df)
    rows = np.random.default_rng(seed).integers(0, len(df), n)
    return df.iloc[rows].reset_index(drop=True), n


# ---------------------------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------------------------
def cmd_train(args):
    from . import training
    from .preprocessing import MinMax, Pipeline
    from .runs import Run

    options = {k: getattr(args, k) for k in ("model", "flow_steps", "bins", "steps", "batch_size", "latent_dim", "activation", "objective", "noise",
                                             "lr", "beta1", "beta2", "n_critic", "clip", "regulariser_weight",
                                             "ema_decay", "checkpoint_every", "log_every")}
    if not args.resume and not args.input:
        raise UserError("--input is required to start a run (or pass --resume to continue the one in --out)")
    recipe = recipes.override(recipes.select(PRESETS, args.preset), input=args.input and str(args.input),
                              tree=args.tree,
                              columns=_split(args.columns), context=_split(args.context), seed=args.seed,
                              widths=tuple(int(w) for w in _split(args.widths)) or None, **options).resolved()
    if not args.resume:
        if not recipe.columns:
            raise UserError("--columns is empty: name the features to generate, e.g. --columns pt,eta,phi")
        if set(recipe.columns) & set(recipe.context):
            raise UserError(f"columns {sorted(set(recipe.columns) & set(recipe.context))} are both generated and "
                            "context")
    run = Run(args.out)
    stored = run.start(recipes.to_dict(recipe), resume=args.resume, mutable=("steps",))
    recipe = recipes.from_dict(Recipe, stored, base=DEFAULT)

    df = _read(recipe.input, recipe.columns + recipe.context, recipe.tree)
    if len(df) < recipe.batch_size:
        raise UserError(f"{recipe.input}: {len(df)} events is fewer than one batch (--batch-size "
                        f"{recipe.batch_size})")
    x = df[list(recipe.columns)].to_numpy(dtype="float64")
    prep = Pipeline([MinMax(-1.0, 1.0)], names=list(recipe.columns)).fit(x)
    run.save_preprocessing(prep)
    cprep = None
    data = prep.transform(x)
    if recipe.context:
        c = df[list(recipe.context)].to_numpy(dtype="float64")
        cprep = Pipeline([MinMax(-1.0, 1.0)], names=list(recipe.context)).fit(c)
        run.save_preprocessing(cprep, "context_preprocessing")
        data = (data, cprep.transform(c))

    done = run.results().get("trained_steps", 0)
    what = (f"objective {recipe.objective} (n_critic {recipe.n_critic})" if recipe.model == "gan"
            else f"spline flow ({recipe.flow_steps} steps, {recipe.bins} bins)")
    print(f"gan4hep train [preset {recipe.preset}]: {recipe.model}, {len(df)} events, features "
          f"{list(recipe.columns)}" + (f", context {list(recipe.context)}" if recipe.context else "") + f", {what}, "
          + (f"resuming at step {done}, " if done else "") + f"{max(recipe.steps - done, 0)} steps to go")
    trained = training.train(lambda: build_model(recipe, prep, cprep), data, run, steps=recipe.steps,
                             batch_size=recipe.batch_size, seed=recipe.seed,
                             steps_per_epoch=max(1, recipe.log_every), checkpoint_every=recipe.checkpoint_every,
                             keep_checkpoints=recipe.keep_checkpoints, verbose=args.verbose, shuffle_buffer=100_000,
                             strategy=training.get_strategy(args.strategy))
    trained.model.export(run / Run.MODEL)
    print(f"done: step {trained.final_step}; run folder {run.path}")
    return 0


def cmd_generate(args):
    from .io import write_table

    model, recipe = load_run(args.run)
    context, n = _context_rows(recipe, args.input, args.tree, args.samples, args.seed)
    if n is None:
        raise UserError("--samples is required for an unconditional run")
    df = _sample_frame(model, recipe, n, context, args.seed)
    write_table(df, args.out)
    print(f"gan4hep generate [preset {recipe.preset}]: {n} events from {args.run} (step {model.step}) -> {args.out}")
    return 0


def cmd_evaluate(args):
    import numpy as np

    from .io import atomic_path, markdown_table, write_json
    from .metrics import fidelity_report
    from .plotting import grid_hist_ratio, save_figure

    model, recipe = load_run(args.run)
    columns = list(recipe.columns)
    ref = _read(args.input, recipe.context + recipe.columns, args.tree)
    if args.max_events and args.max_events < len(ref):
        ref = ref.iloc[np.random.default_rng(args.seed).choice(len(ref), args.max_events, replace=False)]
    ref = ref.reset_index(drop=True)
    gen = _sample_frame(model, recipe, len(ref), ref if recipe.context else None, args.seed)
    report = fidelity_report(ref[columns], gen[columns], columns, classifier=not args.no_classifier, seed=args.seed)
    out = Path(args.out) if args.out else Path(args.run) / "evaluation"
    summary = {"preset": recipe.preset, "step": model.step, "events": len(ref), "input": str(args.input),
               **{k: float(v) for k, v in report.attrs.items()}}
    header = (f"gan4hep evaluate [preset {recipe.preset}], run {args.run} at step {model.step}, "
              f"{len(ref)} events of {args.input}\n\n")
    footer = "\n" + "\n".join(f"- {k}: {v:.4g}" for k, v in summary.items() if isinstance(v, float)) + "\n"
    text = header + markdown_table(report, index=True) + footer
    with atomic_path(out / "fidelity.csv") as tmp:
        report.to_csv(tmp)
    with atomic_path(out / "fidelity.md") as tmp:
        Path(tmp).write_text(text)
    write_json(summary, out / "summary.json")
    fig, _ = grid_hist_ratio(ref, gen, columns, gen_label=f"model (step {model.step})", ref_label="Input")
    save_figure(fig, out / "histograms")
    print(text)
    print(f"written to {out}")
    return 0


# ---------------------------------------------------------------------------------------------------------------
def make_parser():
    p = argparse.ArgumentParser(prog="gan4hep", description=__doc__.split("\n\n")[0].replace("``", ""))
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model on columns of a table (resumes an existing run folder)")
    t.add_argument("--input", help="training table (.root, .parquet, .csv, .h5); required for a new run")
    t.add_argument("--tree", help="TTree (ROOT) or group (HDF5) name; default: the only one / 'events'")
    t.add_argument("--columns", default="", help="comma-separated features to generate; required for a new run")
    t.add_argument("--context", default="", help="comma-separated context (conditioning) features: a conditional "
                   "model generates --columns given them")
    t.add_argument("--out", required=True, help="run folder")
    t.add_argument("--resume", action="store_true", help="continue the run in --out with its own stored recipe")
    t.add_argument("--model", choices=["gan", "flow"], help="model family (default gan): a GAN, or a "
                   "rational-quadratic spline normalising flow (gan4hep.flows)")
    t.add_argument("--flow-steps", type=int, help=f"flow: coupling steps (default {DEFAULT.flow_steps})")
    t.add_argument("--bins", type=int, help=f"flow: spline bins (default {DEFAULT.bins})")
    t.add_argument("--preset", choices=sorted(PRESETS), default="default",
                   help="default: full training; quick: a short smoke test (steps, widths, batch size)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--steps", type=int, help="total training steps, generator steps for a GAN (preset default; "
                   "a larger value on an existing run folder trains it further)")
    t.add_argument("--batch-size", type=int, help="events per batch (preset default)")
    t.add_argument("--widths", help="hidden layer widths of generator and critic, e.g. 256,256,256 (flow: the "
                   "conditioner's width and number of residual blocks)")
    t.add_argument("--latent-dim", type=int, help=f"latent dimension (default {DEFAULT.latent_dim})")
    t.add_argument("--activation", help=f"hidden activation (default {DEFAULT.activation}; relu, trainable_swish, "
                   "...)")
    t.add_argument("--objective", choices=["wgan_gp", "wgan_clip", "bce", "bce_roth", "lsgan"],
                   help=f"the gan4hep.objectives name (default {DEFAULT.objective})")
    t.add_argument("--n-critic", type=int, help="critic steps per generator step (5 for WGAN, else 1)")
    t.add_argument("--clip", type=float, help=f"weight clip for wgan_clip (default {DEFAULT.clip})")
    t.add_argument("--regulariser-weight", type=float,
                   help="gradient-penalty lambda (wgan_gp, default 10) or Roth weight (bce_roth, default 1e-3)")
    t.add_argument("--noise", choices=["normal", "uniform", "skewnormal"], help=f"default {DEFAULT.noise}")
    t.add_argument("--lr", type=float, help=f"Adam learning rate of both networks (default {DEFAULT.lr})")
    t.add_argument("--beta1", type=float, help=f"default {DEFAULT.beta1}")
    t.add_argument("--beta2", type=float, help=f"default {DEFAULT.beta2}")
    t.add_argument("--ema-decay", type=float, help="keep an EMA of the generator weights (e.g. 0.999)")
    t.add_argument("--checkpoint-every", type=int, help=f"default {DEFAULT.checkpoint_every}")
    t.add_argument("--log-every", type=int, help=f"steps per logged epoch in losses.json (default "
                   f"{DEFAULT.log_every})")
    t.add_argument("--verbose", type=int, default=2, choices=[0, 1, 2], help="Keras fit verbosity")
    t.add_argument("--strategy", choices=["default", "mirrored"], default="default",
                   help="mirrored: tf.distribute.MirroredStrategy over all GPUs of this host (--batch-size is the "
                        "global batch)")
    t.set_defaults(func=cmd_train)

    g = sub.add_parser("generate", help="sample events from a trained run")
    g.add_argument("--run", required=True, help="run folder written by 'gan4hep train'")
    g.add_argument("--samples", type=int, help="number of events to sample (conditional runs: default one per "
                   "context row of --input)")
    g.add_argument("--input", help="table holding the context columns (conditional runs)")
    g.add_argument("--tree", help="TTree / group of --input")
    g.add_argument("--out", required=True, help="output table; format by extension (.root, .parquet, .csv, .h5)")
    g.add_argument("--seed", type=int, default=0)
    g.set_defaults(func=cmd_generate)

    e = sub.add_parser("evaluate", help="compare a run's generated events with a reference table")
    e.add_argument("--run", required=True, help="run folder written by 'gan4hep train'")
    e.add_argument("--input", required=True, help="reference table (conditional runs take the context from it)")
    e.add_argument("--tree", help="TTree / group of --input")
    e.add_argument("--max-events", type=int, default=100_000, help="at most this many reference events")
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
    except (UserError, InputError, FileNotFoundError) as err:  # the user's input; anything else is a bug
        print(f"gan4hep {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
