"""``gan4hep`` console script: train a generative model (``--model gan|flow``) on your own ntuple, sample events from it, evaluate them.

::

    gan4hep train --input events.root --columns pt,eta,m --out RUN --steps 20000
    gan4hep train --input nlo.root --columns pt,eta,m --weight w --out RUN2     # per-event weights (any sign)
    gan4hep generate --run RUN --samples 100000 --out generated.parquet
    gan4hep generate --pretrained lebese_ruan --events 1000000 --out toys.parquet   # shipped model, no training
    gan4hep generate --pretrained lin_bhimji_nachman:flow --context jets.parquet --out masses.parquet  # conditional
    gan4hep evaluate --run RUN --input validation.root

The run folder is a ``gan4hep.runs.Run``: ``recipe.json`` (every option, written once, so the networks can be
rebuilt), ``input.json`` (the input's path, size and sha256, and per column its dtype, range and how it is trained
and generated), ``preprocessing.json`` (fitted once, on the first invocation, and never refitted; undone on
sampling), ``checkpoints/`` (weights and optimizer state; ``train`` on the same folder resumes from the newest),
``losses.json``, ``results.json`` and ``model.keras`` (the exported sampler, physical units). Training goes through
``gan4hep.training.train``. A later invocation refuses an input file whose content differs from the recorded one.

Columns: integer and boolean columns are dequantised for training (``Dequantise``: + U(-1/2, 1/2)) and generated
as the nearest integer within the training range, returned with their own dtype (booleans as booleans); float
columns that are never negative in the training data are generated non-negative (negative values set to 0, with
a count printed). Placeholders for undefined values (``--missing-value -999``) are either learned (``--missing
learn``: an indicator feature per column, so the generator reproduces the fraction at the placeholder) or the
events are dropped (``--missing drop``, with a count printed); without the option a column with a suspect value
(a large fraction far outside the other values) is named in a warning.

Exit status: 0 on success, 2 for a problem with the user's input (one line naming the file, column or option),
3 for a run that cannot go on (e.g. a diverged training: one line naming the step and the last good checkpoint),
130 when interrupted; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

from . import recipes
from .errors import EXIT_INPUT, EXIT_RUN, InputError, RunError


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
    missing_value: float | None = None  # placeholder of undefined values in the input (e.g. -999)
    missing: str | None = None  # learn | drop (None: learn, when missing_value is set)
    weight: str | None = None  # column of per-event training weights (any sign; see gan4hep.training.train)

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
    """A problem with the user's input, reported as one line without a traceback (exit status 2)."""


#: Suffix of the indicator feature learned for a column with placeholders (``--missing learn``).
INDICATOR = "__missing"


def _split(text):
    return tuple(c.strip() for c in text.split(",") if c.strip()) if text else ()


# ---------------------------------------------------------------------------------------------------------------
# Data and model
# ---------------------------------------------------------------------------------------------------------------
def _read(path, columns, tree=None):
    """The columns of a table, checked: non-empty, numeric (booleans and integers included)."""
    import pandas as pd

    from .io import read_table

    df = read_table(path, tree=tree, columns=list(columns))
    if len(df) == 0:
        raise UserError(f"{path}: the table is empty")
    for c in df.columns:
        if not pd.api.types.is_numeric_dtype(df[c]) or isinstance(df[c].dtype, pd.CategoricalDtype):
            values = df[c].astype(object)
            bad = pd.to_numeric(values, errors="coerce").isna() & values.notna()
            first = f": {values[bad].iloc[0]!r} at row {int(bad.to_numpy().argmax())}" if bad.any() else ""
            raise UserError(f"{path}: column {c!r} is not numeric ({df[c].dtype}){first}")
    return df


def _warn(message):
    print(f"gan4hep: warning: {message}", file=sys.stderr, flush=True)


def _kind(series) -> str:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_integer_dtype(series):
        return "integer"
    return "float"


def prepare(df, recipe: Recipe, path: str) -> tuple[Any, Any, dict]:
    """The training arrays of a table and the record of how they were made (stored as the run's ``input.json``).

    Placeholders (``recipe.missing_value``): ``drop`` removes every event holding one in a generated or context
    column (the count per column is printed); ``learn`` adds a boolean indicator feature ``<column>__missing`` per
    generated column that holds them and replaces the placeholders by values resampled from the column's other
    events (seeded), so the generator learns both the fraction at the placeholder and the distribution of the
    defined values. Without ``missing_value``, columns with a suspect value (``gan4hep.io.suspect_placeholders``) are
    named in a warning. Integer and boolean columns are recorded for dequantisation (see ``preprocessing_for``).

    Args:
        df: the table read from ``path`` with ``recipe.columns + recipe.context``.
        recipe: the run's recipe.
        path: the input file (for messages).

    Returns:
        ``(x, c, record)``: ``x`` float64 ``(n_events, n_features)`` (the generated columns, then the indicators),
        ``c`` float64 ``(n_events, n_context)`` or None, and the record: ``features``, ``columns`` (per feature:
        dtype, kind, min, max, training and generation method), ``context`` (dtype, min, max), ``placeholders``,
        ``events_read``, ``events``; with ``recipe.weight`` also ``weight`` (column, sum, negative count) and the
        events' weights ``w`` float64 ``(n_events,)`` (else None): ``(x, c, w, record)``.

    Raises:
        UserError: a context column holding placeholders with ``learn``; a column made only of placeholders; no
            event left after ``drop``; an unknown ``missing`` policy; weights that are not finite or do not sum to
            a positive total (names the column).
    """
    import numpy as np

    from .io import suspect_placeholders

    columns, context = list(recipe.columns), list(recipe.context)
    n_read = len(df)
    placeholders = {}
    value = recipe.missing_value
    policy = recipe.missing or "learn"
    if policy not in ("learn", "drop"):
        raise UserError(f"--missing must be 'learn' or 'drop', got {policy!r}")
    if value is None:
        for s in suspect_placeholders(df, columns + context):
            _warn(f"{path}: column {s['column']!r}: {100 * s['fraction']:.1f}% of the events ({s['count']}) are "
                  f"exactly {s['value']:g}, far outside its other values [{s['others'][0]:.4g}, "
                  f"{s['others'][1]:.4g}]: a placeholder for an undefined value? Say how to treat it with "
                  f"--missing-value {s['value']:g} (--missing learn or drop); it is trained on as a value now")
    else:
        at = {c: (df[c].to_numpy(dtype=np.float64) == value) for c in columns + context}
        if policy == "drop":
            hit = np.zeros(len(df), bool)
            for c, m in at.items():
                if m.any():
                    print(f"--missing drop: {int(m.sum())} events ({100 * m.mean():.1f}%) have {c} = {value:g}")
                hit |= m
            if hit.any():
                print(f"--missing drop: {int(hit.sum())} of {len(df)} events dropped")
            df = df.loc[~hit].reset_index(drop=True)
            if len(df) == 0:
                raise UserError(f"{path}: every event holds the placeholder {value:g} (--missing drop)")
            placeholders = {c: {"value": value, "events": int(m.sum()), "method": "events dropped"}
                            for c, m in at.items() if m.any()}
        else:
            bad = [c for c in context if at[c].any()]
            if bad:
                raise UserError(f"{path}: context column {bad[0]!r} holds the placeholder {value:g} in "
                                f"{int(at[bad[0]].sum())} events; --missing learn generates placeholders of "
                                "generated columns only: pass --missing drop, or fill the context first")
            rng = np.random.default_rng([int(recipe.seed), 7])
            df = df.copy()
            for c in columns:
                m = at[c]
                if not m.any():
                    continue
                if m.all():
                    raise UserError(f"{path}: column {c!r} holds only the placeholder {value:g}")
                defined = df.loc[~m, c].to_numpy()
                df.loc[m, c] = defined[rng.integers(0, len(defined), int(m.sum()))]
                df[c + INDICATOR] = m
                placeholders[c] = {"value": value, "events": int(m.sum()), "fraction": float(m.mean()),
                                   "indicator": c + INDICATOR,
                                   "method": "learned: a boolean indicator feature; the placeholders replaced by "
                                             "values resampled from the column's defined events for training"}
    features = columns + [c + INDICATOR for c in columns if c + INDICATOR in df]
    info = {}
    for c in features:
        kind, x = _kind(df[c]), df[c].to_numpy(dtype=np.float64)
        entry = {"dtype": str(df[c].dtype), "kind": kind, "min": float(x.min()), "max": float(x.max())}
        if kind == "float":
            entry["training"] = "as read"
            entry["generation"] = ("negative values set to 0 (the column is never negative in the training data)"
                                   if x.min() >= 0 else "as generated")
        else:
            entry["training"] = "uniform dequantisation, + U(-1/2, 1/2) (gan4hep.flows.preprocessing.Dequantise)"
            entry["generation"] = (f"the nearest integer within [{x.min():g}, {x.max():g}], as {df[c].dtype}"
                                   if kind == "integer" else "the nearest of 0 and 1, as bool")
        info[c] = entry
    ctx = {c: {"dtype": str(df[c].dtype), "kind": _kind(df[c]), "min": float(df[c].min()),
               "max": float(df[c].max())} for c in context}
    record = {"features": features, "columns": info, "context": ctx, "placeholders": placeholders,
              "events_read": n_read, "events": len(df)}
    x = df[features].to_numpy(dtype=np.float64)
    c = df[context].to_numpy(dtype=np.float64) if context else None
    w = None
    if recipe.weight:
        w = df[recipe.weight].to_numpy(dtype=np.float64)
        if not np.isfinite(w).all():
            raise UserError(f"{path}: weight column {recipe.weight!r} holds {int((~np.isfinite(w)).sum())} values "
                            "that are not finite")
        if not w.sum() > 0:
            raise UserError(f"{path}: weight column {recipe.weight!r} sums to {w.sum():g}; a weighted sample needs "
                            "a positive total")
        record["weight"] = {"column": recipe.weight, "sum": float(w.sum()), "negative": int((w < 0).sum()),
                            "training": "each expectation over the real events weighted, the weights normalised "
                                        "to mean 1 (gan4hep.training.train)"}
    return x, c, w, record


def preprocessing_for(record: dict, seed: int):
    """The (unfitted) pipeline of a run's features: ``Dequantise`` on the integer and boolean features, then
    min-max scaling onto [-1, 1]."""
    from .preprocessing import MinMax, Pipeline

    features = record["features"]
    discrete = [c for c in features if record["columns"][c]["kind"] != "float"]
    steps = [MinMax(-1.0, 1.0)]
    if discrete:
        from .flows.preprocessing import Dequantise

        steps.insert(0, Dequantise("uniform", 1.0, seed=int(seed), columns=discrete))
    return Pipeline(steps, names=features)


def discrete_without_dequantisation(prep, record: dict) -> bool:
    """True if the run has integer or boolean features but its pipeline (fitted by an older version) has no
    ``Dequantise`` step."""
    has = any(type(step).__name__ == "Dequantise" for step in getattr(prep, "steps", []))
    return not has and any(record["columns"][f]["kind"] != "float" for f in record["features"])


def postprocess(values, record: dict | None, columns) -> tuple[Any, list[str]]:
    """Generated features ``(n, n_features)`` in physical units as the table the user asked for.

    Integers and booleans get their recorded dtype (the preprocessing already rounded them into the training
    range), features never negative in the training data have negative values set to 0 (counted), learned
    placeholders are put back where the indicator is set, and the indicators are removed.

    Returns:
        ``(DataFrame with columns ``columns``, notes)``: one note per change made, for printing.
    """
    import numpy as np
    import pandas as pd

    if record is None:  # a run of an older version: no record of the columns
        return pd.DataFrame(values, columns=list(columns)), []
    features = record["features"]
    df = pd.DataFrame(np.asarray(values, dtype=np.float64), columns=features)
    notes = []
    for c in features:
        info = record["columns"][c]
        if info["kind"] == "boolean":
            df[c] = np.rint(df[c].to_numpy()).clip(0, 1).astype(bool)
        elif info["kind"] == "integer":
            df[c] = np.clip(np.rint(df[c].to_numpy()), info["min"], info["max"]).astype(info["dtype"])
        elif info["min"] >= 0:
            neg = df[c].to_numpy() < 0
            if neg.any():
                df.loc[neg, c] = 0.0
                notes.append(f"{c}: {int(neg.sum())} negative values set to 0 (never negative in the training "
                             "data)")
    for c, ph in record.get("placeholders", {}).items():
        if "indicator" in ph:
            flag = df.pop(ph["indicator"]).to_numpy(dtype=bool)
            if np.issubdtype(df[c].dtype, np.integer):
                df[c] = df[c].astype(np.result_type(df[c].dtype, np.min_scalar_type(int(ph["value"]))))
            df.loc[flag, c] = ph["value"]
            notes.append(f"{c}: {int(flag.sum())} events ({100 * flag.mean():.1f}%) at the placeholder "
                         f"{ph['value']:g} (trained: {100 * ph['fraction']:.1f}%)")
    return df[list(columns)], notes


def _drop_placeholders(df, recipe, record, path, what):
    """Apply a run's ``--missing drop`` to a table used for generation or evaluation (count printed)."""
    import numpy as np

    if record is None or recipe.missing_value is None or (recipe.missing or "learn") != "drop":
        return df
    hit = np.zeros(len(df), bool)
    for c in df.columns:
        if c in recipe.columns or c in recipe.context:
            hit |= df[c].to_numpy(dtype=np.float64) == recipe.missing_value
    if hit.any():
        print(f"--missing drop (the run's): {int(hit.sum())} of {len(df)} events of {path} dropped from the {what}")
    return df.loc[~hit].reset_index(drop=True)


def build_model(recipe: Recipe, preprocessing=None, context_preprocessing=None, features=None):
    """The compiled model described by a run's recipe: a GAN (generator and critic MLPs of ``widths``) or a
    rational-quadratic spline flow (``flow_steps`` couplings with ``bins`` bins, residual conditioners of width
    ``widths[0]`` and ``len(widths)`` blocks; a masked autoregressive one for a single unconditional column).
    ``features``: the model's features when they are more than ``recipe.columns`` (learned placeholder
    indicators)."""
    import keras

    if features is not None:
        recipe = dataclasses.replace(recipe, columns=tuple(features))

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
    """(model with the newest checkpoint loaded, recipe, input record or None) of a run folder written by
    ``gan4hep train``."""
    from .runs import Run

    run = Run(path)
    if not run.exists():
        raise UserError(f"{path}: not a gan4hep run folder (no {Run.RECIPE})")
    recipe = recipes.from_dict(Recipe, run.recipe(), base=DEFAULT)
    record = run.input_record()
    record = record if record and "features" in record else None
    cprep = run.load_preprocessing("context_preprocessing") if recipe.context else None
    model = build_model(recipe, run.load_preprocessing(), cprep, features=record and record["features"])
    run.restore(model, prefer_best=False)
    return model, recipe, record


def _sample_frame(model, recipe, n, context, seed, record=None):
    """Sampled events as a DataFrame (context columns, if any, as read, then the generated columns) and the notes
    of ``postprocess``."""
    import pandas as pd

    ctx = None if context is None else context[list(recipe.context)].to_numpy(dtype="float64")
    out, notes = postprocess(model.sample(n, context=ctx, seed=seed), record, recipe.columns)
    if ctx is not None:
        out = pd.concat([context[list(recipe.context)].reset_index(drop=True), out], axis=1)
    return out, notes


def _context_rows(recipe, record, path, tree, n, seed):
    """Context rows for ``n`` events: all rows of ``path`` (n=None) or ``n`` rows drawn with replacement."""
    import numpy as np

    if not recipe.context:
        return None, n
    if path is None:
        raise UserError(f"this run is conditional on {list(recipe.context)}: pass --input FILE holding them")
    df = _drop_placeholders(_read(path, recipe.context, tree), recipe, record, path, "context rows")
    if n is None or n == len(df):
        return df.reset_index(drop=True), len(df)
    rows = np.random.default_rng(seed).integers(0, len(df), n)
    return df.iloc[rows].reset_index(drop=True), n


# ---------------------------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------------------------
def _fit_or_load(run, name, make, data):
    """The run's fitted pipeline ``RUN/<name>.json``: loaded if it exists (never refitted), else fitted on ``data``
    and saved; always returned as read back from the file, so a first and a resumed invocation transform the data
    identically."""
    if not (run / f"{name}.json").exists():
        run.save_preprocessing(make().fit(data), name)
    return run.load_preprocessing(name)


def cmd_train(args):
    from . import training
    from .io import fingerprint, table_columns
    from .preprocessing import MinMax, Pipeline
    from .runs import Run, RunMismatch

    if args.deterministic:
        training.set_deterministic()
    options = {k: getattr(args, k) for k in ("model", "flow_steps", "bins", "steps", "batch_size", "latent_dim",
                                             "activation", "objective", "noise", "lr", "beta1", "beta2", "n_critic",
                                             "clip", "regulariser_weight", "ema_decay", "checkpoint_every",
                                             "log_every", "missing_value", "missing", "weight")}
    run = Run(args.out)
    mutable = ("steps",)
    if args.resume:
        recipe = recipes.from_dict(Recipe, run.start({}, resume=True), base=DEFAULT)
    else:
        if not args.input:
            raise UserError("--input is required to start a run (or pass --resume to continue the one in --out)")
        recipe = recipes.override(recipes.select(PRESETS, args.preset), input=str(args.input), tree=args.tree,
                                  columns=_split(args.columns), context=_split(args.context), seed=args.seed,
                                  widths=tuple(int(w) for w in _split(args.widths)) or None, **options).resolved()
        if not recipe.columns:
            raise UserError("--columns is empty: name the features to generate, e.g. --columns pt,eta,phi")
        # a fixed-size array branch stands for its columns (p3 -> p3_0, p3_1, p3_2)
        recipe = dataclasses.replace(recipe, columns=tuple(table_columns(recipe.input, recipe.columns, recipe.tree)),
                                     context=tuple(table_columns(recipe.input, recipe.context, recipe.tree))
                                     if recipe.context else ())
        if set(recipe.columns) & set(recipe.context):
            raise UserError(f"columns {sorted(set(recipe.columns) & set(recipe.context))} are both generated and "
                            "context")
        if recipe.weight and recipe.weight in recipe.columns + recipe.context:
            raise UserError(f"--weight {recipe.weight!r} is also a generated or context column")
        if run.exists():
            run.check_recipe(recipes.to_dict(recipe), mutable=mutable)

    # everything about the input is checked before anything is written
    source = str(args.input) if (args.resume and args.input) else recipe.input
    print_path = source if source == recipe.input else f"{source} (recorded as {recipe.input})"
    stamp = fingerprint(source)
    run.check_input(stamp)
    df = _read(source, recipe.columns + recipe.context + ((recipe.weight,) if recipe.weight else ()), recipe.tree)
    x, c, w, record = prepare(df, recipe, source)
    stored = run.input_record()
    if stored is not None and "features" in stored and stored["features"] != record["features"]:
        raise RunMismatch(f"{run.path} was trained on features {stored['features']}, this input gives "
                          f"{record['features']}: use a new --out")
    if len(x) < recipe.batch_size:
        raise UserError(f"{source}: {len(x)} events is fewer than one batch (--batch-size {recipe.batch_size})")
    if w is not None:  # weights the model's loss is not defined for are refused before anything is written
        try:
            build_model(recipe, features=record["features"]).check_weights(w)
        except InputError as err:
            raise UserError(f"{source}: --weight {recipe.weight!r}: {err}") from None

    with run.lock():
        gone = run.clean_partial()
        if gone:
            print(f"removed {len(gone)} partial file(s) left by a killed process: {[p.name for p in gone]}")
        recipe = recipes.from_dict(Recipe, run.start(recipes.to_dict(recipe), resume=args.resume, mutable=mutable),
                                   base=DEFAULT)
        features = record["features"]
        prep = _fit_or_load(run, "preprocessing", lambda: preprocessing_for(record, recipe.seed), x)
        if list(prep.names_ or []) != features:
            raise RunMismatch(f"{run.path}: preprocessing.json is for features {prep.names_}, not {features}: use a "
                              "new --out")
        if discrete_without_dequantisation(prep, record):  # a run of an older version: its scaling as it was
            for f in record["features"]:
                if record["columns"][f]["kind"] != "float":
                    record["columns"][f]["training"] = "as read (the run predates dequantisation)"
        cprep = None
        data = prep.transform(x)
        if recipe.context:
            cprep = _fit_or_load(run, "context_preprocessing",
                                 lambda: Pipeline([MinMax(-1.0, 1.0)], names=list(recipe.context)), c)
            data = (data, cprep.transform(c))
        if stored is None or "features" not in stored:
            run.record_input({"fingerprint": stamp, "tree": recipe.tree, **record})

        done = run.results().get("trained_steps", 0)
        what = (f"objective {recipe.objective} (n_critic {recipe.n_critic})" if recipe.model == "gan"
                else f"spline flow ({recipe.flow_steps} steps, {recipe.bins} bins)")
        discrete = [f for f in features if record["columns"][f]["kind"] != "float"]
        print(f"gan4hep train [preset {recipe.preset}]: {recipe.model}, {len(x)} events of {print_path}, features "
              f"{features}" + (f", context {list(recipe.context)}" if recipe.context else "") + f", {what}, "
              + (f"dequantised {discrete}, " if discrete else "")
              + (f"weighted by {recipe.weight} ({int((w < 0).sum())} negative), " if w is not None else "")
              + (f"resuming at step {done}, " if done else "") + f"{max(recipe.steps - done, 0)} steps to go",
              flush=True)
        trained = training.train(lambda: build_model(recipe, prep, cprep, features=features), data, run,
                                 steps=recipe.steps, batch_size=recipe.batch_size, seed=recipe.seed,
                                 steps_per_epoch=max(1, recipe.log_every), checkpoint_every=recipe.checkpoint_every,
                                 keep_checkpoints=recipe.keep_checkpoints, verbose=args.verbose,
                                 strategy=training.get_strategy(args.strategy), weights=w)
        trained.model.export(run / Run.MODEL)
    print(f"done: step {trained.final_step}; run folder {run.path}")
    return 0


def cmd_generate(args):
    import time

    from .io import write_events

    if (args.run is None) == (args.pretrained is None):
        raise UserError("give either --run RUN or --pretrained NAME")
    if args.pretrained is not None:
        return _generate_pretrained(args)
    model, recipe, record = load_run(args.run)
    context, n = _context_rows(recipe, record, args.input, args.tree, args.samples, args.seed)
    if n is None:
        raise UserError("--samples is required for an unconditional run")
    t0 = time.perf_counter()
    df, notes = _sample_frame(model, recipe, n, context, args.seed, record)
    seconds = time.perf_counter() - t0
    write_events(args.out, df)
    print(f"gan4hep generate [preset {recipe.preset}]: {n} events from {args.run} (step {model.step}) in "
          f"{seconds:.2f} s ({n / max(seconds, 1e-9):.3g} events/s) -> {args.out}")
    for note in notes:
        print(f"  {note}")
    return 0


def _generate_pretrained(args):
    """``gan4hep generate --pretrained NAME --events N --out FILE``: a shipped model (``gan4hep.pretrained``), no
    run folder, no training, no Pythia; prints events/s (generation alone, after loading and graph tracing).
    A conditional model takes its context from ``--context FILE`` (one event per row; ``--events``, if given, must
    equal the rows) or, without it, resamples the context table shipped with it."""
    import time

    from . import pretrained
    from .io import read_table, write_events

    if args.input is not None:
        raise UserError("--input is for runs; a conditional pretrained model takes --context FILE")
    item = pretrained.get(args.pretrained)
    context = None
    if args.context is not None:
        if not item.context_columns:
            raise UserError(f"{item.name} is unconditional: it takes no --context")
        table = read_table(args.context, tree=args.tree)
        missing = [c for c in item.context_columns if c not in table.columns]
        if missing:
            raise UserError(f"{args.context}: no column {missing[0]!r} (the context of {item.name} is "
                            f"{', '.join(item.context_columns)})")
        context = table[item.context_columns]
        if args.samples is not None and args.samples != len(context):
            raise UserError(f"--events {args.samples} but {args.context} has {len(context)} rows: give one or make "
                            "them agree")
        args.samples = len(context)
    if args.samples is None or args.samples < 0:
        raise UserError("--events N (>= 0) is required with --pretrained" +
                        (" (or --context FILE)" if item.context_columns else ""))
    sampler = item.load()
    warm = None if context is None else context.iloc[:1000]
    item.generate(None if warm is not None else min(args.samples, 1000), seed=args.seed, sampler=sampler,
                  context=warm)  # graph tracing, not timed
    t0 = time.perf_counter()
    df = item.generate(args.samples, seed=args.seed, sampler=sampler, context=context)
    seconds = time.perf_counter() - t0
    meta = {"pretrained": item.name, "sha256": item.card["sha256"], "seed": args.seed}
    if item.context_columns:
        meta["context"] = str(args.context) if args.context is not None else f"shipped {item.card['context']['file']}"
    write_events(args.out, df, metadata=meta)
    source = f"from {args.context}" if args.context is not None else "resampled from the shipped table"
    given = "" if not item.context_columns else f"; context {source}"
    print(f"gan4hep generate: {args.samples} events from the pretrained {item.name} (preset {item.card['preset']}, "
          f"seed {item.card['seed']}; card: {item.path / 'MODEL_CARD.md'}{given}) in {seconds:.2f} s "
          f"({args.samples / max(seconds, 1e-9):.3g} events/s) -> {args.out}")
    return 0


def _undefined_reasons(attrs, classifier_reason):
    """Why each undefined (NaN) whole-event number of a fidelity report is undefined."""
    import math

    reasons = {}
    for k, v in attrs.items():
        if isinstance(v, float) and not math.isfinite(v):
            if k.startswith("classifier_auc"):
                reasons[k] = classifier_reason or "the classifier test gave no finite value"
            elif k == "max_abs_correlation_difference":
                reasons[k] = ("a feature is constant in the reference or the generated sample (a collapsed "
                              "generator?): its correlations are undefined")
            else:
                reasons[k] = "undefined for these samples"
    return reasons


def cmd_evaluate(args):
    import math

    import numpy as np

    from .io import atomic_path, markdown_table, write_json
    from .metrics import fidelity_report
    from .plotting import grid_hist_ratio, save_figure

    model, recipe, record = load_run(args.run)
    columns = list(recipe.columns)
    wanted = list(dict.fromkeys(list(recipe.context) + columns + ([args.weight] if args.weight else [])))
    ref = _drop_placeholders(_read(args.input, wanted, args.tree), recipe, record, args.input, "reference")
    if args.max_events and args.max_events < len(ref):
        ref = ref.iloc[np.random.default_rng(args.seed).choice(len(ref), args.max_events, replace=False)]
    ref = ref.reset_index(drop=True)
    gen, _ = _sample_frame(model, recipe, len(ref), ref if recipe.context else None, args.seed, record)
    weights = None if not args.weight else ref[args.weight].to_numpy(dtype=np.float64)
    classifier, why = not args.no_classifier, "not computed (--no-classifier)" if args.no_classifier else None
    if classifier and weights is not None and (weights < 0).any():
        classifier, why = False, (f"not computed: {int((weights < 0).sum())} negative weights in {args.weight!r}; "
                                  "the classifier test is not defined for them")
        _warn(f"classifier test skipped: {why}")
    report = fidelity_report(ref[columns], gen[columns], columns, classifier=classifier, seed=args.seed,
                             weights_ref=weights)
    out = Path(args.out) if args.out else Path(args.run) / "evaluation"
    attrs = {k: float(v) for k, v in report.attrs.items()}
    summary = {"preset": recipe.preset, "step": model.step, "events": len(ref), "input": str(args.input),
               "weight": args.weight, **{k: (v if math.isfinite(v) else None) for k, v in attrs.items()}}
    undefined = _undefined_reasons(attrs, why)
    if undefined:
        summary["undefined"] = undefined
    header = (f"gan4hep evaluate [preset {recipe.preset}], run {args.run} at step {model.step}, "
              f"{len(ref)} events of {args.input}" + (f" weighted by {args.weight}" if args.weight else "") + "\n\n")
    footer = "\n" + "\n".join(f"- {k}: {v:.4g}" if math.isfinite(v) else f"- {k}: undefined ({undefined[k]})"
                              for k, v in attrs.items()) + "\n"
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
    t.add_argument("--missing-value", type=float, help="the placeholder your ntuple uses for undefined values "
                   "(e.g. -999): never trained on as a value; see --missing")
    t.add_argument("--missing", choices=["learn", "drop"], help="with --missing-value: learn (default; the "
                   "generator learns the fraction of events at the placeholder, per column) or drop (events holding "
                   "it are removed, with a count printed)")
    t.add_argument("--weight", help="column of --input holding per-event training weights (negative weights are "
                   "allowed for the flow and the wgan, wgan_clip, wgan_gp, bce and lsgan objectives, refused for "
                   "bce_roth; see gan4hep.models.gan)")
    t.add_argument("--verbose", type=int, default=2, choices=[0, 1, 2], help="Keras fit verbosity")
    t.add_argument("--strategy", choices=["default", "mirrored"], default="default",
                   help="mirrored: tf.distribute.MirroredStrategy over all GPUs of this host (--batch-size is the "
                        "global batch)")
    t.add_argument("--deterministic", action="store_true",
                   help="deterministic TensorFlow ops (for GPUs; a CPU run is bit-reproducible without it)")
    t.set_defaults(func=cmd_train)

    g = sub.add_parser("generate", help="sample events from a trained run or a shipped pretrained model")
    g.add_argument("--run", help="run folder written by 'gan4hep train'")
    g.add_argument("--pretrained", metavar="NAME", help="a model shipped with the package instead of a run, e.g. "
                   "lebese_ruan (= lebese_ruan:gan); its card: gan4hep/pretrained_models/<paper>/<kind>/MODEL_CARD.md")
    g.add_argument("--samples", "--events", dest="samples", type=int, metavar="N", help="number of events to sample "
                   "(conditional runs: default one per context row of --input)")
    g.add_argument("--input", help="table holding the context columns (conditional runs)")
    g.add_argument("--context", help="with --pretrained NAME of a conditional model: table of its context columns "
                   "(see its card), one event per row; default: resample the context table shipped with it")
    g.add_argument("--tree", help="TTree / group of --input or --context")
    g.add_argument("--out", required=True, help="output table; format by extension (.root, .parquet, .csv, .h5; "
                   "gan4hep.io.write_events)")
    g.add_argument("--seed", type=int, default=0)
    g.set_defaults(func=cmd_generate)

    e = sub.add_parser("evaluate", help="compare a run's generated events with a reference table")
    e.add_argument("--run", required=True, help="run folder written by 'gan4hep train'")
    e.add_argument("--input", required=True, help="reference table (conditional runs take the context from it)")
    e.add_argument("--tree", help="TTree / group of --input")
    e.add_argument("--max-events", type=int, default=100_000, help="at most this many reference events")
    e.add_argument("--weight", help="column of --input holding per-event weights of the reference (negative "
                   "weights are allowed; the classifier test is then skipped, with the reason in summary.json)")
    e.add_argument("--out", help="output folder (default RUN/evaluation)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--no-classifier", action="store_true", help="skip the classifier two-sample test")
    e.set_defaults(func=cmd_evaluate)
    return p


def _quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ log where it is noise: on a machine without an NVIDIA driver the failed ``cuInit``
    is expected (level 3: errors too); with a driver its errors are kept (level 2). A value the user set wins."""
    level = "2" if Path("/proc/driver/nvidia/version").exists() else "3"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", level)


def _exit_status(err: BaseException) -> int | None:
    """The exit status of an error the package raises on purpose, or None for a bug (which keeps its traceback)."""
    if isinstance(err, (UserError, InputError, FileNotFoundError)):
        return EXIT_INPUT
    callbacks = sys.modules.get("gan4hep.callbacks")
    if isinstance(err, RunError) or (callbacks is not None and isinstance(err, callbacks.TrainingDiverged)):
        return EXIT_RUN
    return None


def main(argv=None):
    """Entry point of the ``gan4hep`` console script; returns the exit status (see the module docstring)."""
    _quiet_tensorflow()
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"gan4hep {args.command}: interrupted" + ("; the run folder keeps its newest checkpoint: continue "
                                                        "with --resume" if args.command == "train" else ""),
              file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 (re-raised unless deliberate)
        status = _exit_status(err)
        if status is None:  # a bug: keep the traceback
            raise
        print(f"gan4hep {args.command}: error: {' '.join(str(err).split())}", file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())
