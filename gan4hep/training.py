"""The one training entry point for every model family: seed, build, resume, ``tf.data``, callbacks, ``fit``,
periodic evaluation and checkpoint selection, all recorded in a ``gan4hep.runs.Run``.

A training script reads like the closing block of keras.io's "WGAN-GP overriding Model.train_step"::

    run = Run(out)
    recipe = from_dict(Recipe, run.start(to_dict(recipe), resume=args.resume), base=PAPER)
    trained = training.train(lambda: build_gan(recipe, pipeline), x_train, run, steps=recipe.steps,
                             batch_size=recipe.batch_size, seed=recipe.seed, evaluate=validation_metric,
                             eval_every=recipe.eval_every, monitor="ks")

Exact resume: a run killed at any moment (``kill -9`` included) and resumed ends with the same weights and the
same ``losses.json`` as the uninterrupted run with the same seed (on the same machine and device). Three things
make it so: the batch order is a pure function of the seed and the step (``dataset``: pass ``p`` over the events
is the permutation drawn from ``(seed, p)``, and a run resumed at step ``s`` starts at batch ``s``); every random
stream of the model (the noise, the gradient-penalty interpolation, dropout) is seeded from the run seed and its
position is part of each checkpoint (``GenerativeModel.run_state_variables``); and the losses are logged in
windows of ``steps_per_epoch`` steps counted from step 0, written to ``losses.json`` (atomically) at the end of
each window, with the running means of the open window in the checkpoint. ``fit`` runs with TensorFlow's
Grappler arithmetic optimizer off (``exact_graphs``): its rewrites order the terms of sums by node name, and
the names differ between two models built in one process, so without it a resumed run drifts from the
uninterrupted one by rounding (1 ulp per step seen with WGAN-GP and two critic steps).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from .callbacks import DivergenceGuard, PeriodicCheckpoint, PeriodicEvaluation, StopAt, TrainingDiverged, resume
from .errors import InputError
from .runs import Run

__all__ = ["Trained", "Patience", "LossLog", "dataset", "train", "get_strategy"]


@dataclasses.dataclass
class Trained:
    """What ``train`` returns.

    Attributes:
        model: the trained model (the selected checkpoint loaded if ``restore_best``).
        start_step: the step the run resumed from (0 for a new run).
        final_step: the model's step when training ended (before any ``restore_best``).
        seconds: wall time of this invocation's ``fit``.
        losses: this invocation's logged losses, one value per ``losses.json`` entry it wrote,
            ``{"step": [...], name: [value, ...]}``.
        evaluations: every periodic evaluation of the run, resumed ones included.
        best_step, best_value: the selected evaluation (None without ``monitor``).
        diverged: the divergence message if training stopped on a non-finite loss and ``on_divergence="stop"``.
    """

    model: Any
    start_step: int
    final_step: int
    seconds: float
    losses: dict
    evaluations: list
    best_step: int | None = None
    best_value: float | None = None
    diverged: str | None = None


class Patience(keras.callbacks.Callback):
    """Stop when the monitored evaluation of ``evaluation`` has not improved for ``patience`` x ``every`` steps
    (early stopping on a validation sample)."""

    def __init__(self, evaluation: PeriodicEvaluation, patience: int, every: int):
        super().__init__()
        self.evaluation, self.patience, self.every = evaluation, int(patience), int(every)

    def on_epoch_end(self, epoch, logs=None):
        best = self.evaluation.best_step
        if best is not None and (self.model.step - best) / self.every >= self.patience:
            self.model.stop_training = True


@contextlib.contextmanager
def exact_graphs():
    """Within the block, TensorFlow graphs are compiled without Grappler's arithmetic optimizer, whose rewrites
    (sums of gradients regrouped) follow node names: two identically built models with other layer names (the
    second model built in a process) would otherwise compute in another order and differ by rounding. The previous
    setting is restored afterwards. (A process-wide TensorFlow setting: do not compile other graphs concurrently.)
    """
    import tensorflow as tf

    before = tf.config.optimizer.get_experimental_options()
    tf.config.optimizer.set_experimental_options({"arithmetic_optimization": False})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options(
            {"arithmetic_optimization": before.get("arithmetic_optimization", True)})


def set_deterministic() -> None:
    """Make every TensorFlow op deterministic for the rest of the process
    (``tf.config.experimental.enable_op_determinism``): ops without a deterministic kernel then raise instead of
    running. On CPU a run is already bit-reproducible (README, "Reproducibility": the same final weights for the
    same seed, with 1 or 2 threads); this matters on a GPU, where reductions (e.g. the bias gradients of
    cuDNN/cuBLAS kernels) are otherwise scheduled non-deterministically. What it costs on this CPU is measured there.
    """
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()


def get_strategy(name: str | None):
    """A ``tf.distribute`` strategy by name: None / "default" (none), "mirrored" (``MirroredStrategy`` over all
    GPUs of this host, or the CPU when there is none).

    Raises:
        ValueError: an unknown name.
    """
    if name in (None, "default"):
        return None
    if name == "mirrored":
        import tensorflow as tf

        return tf.distribute.MirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}; choose 'default' or 'mirrored'")


def dataset(data, batch_size: int, seed: int, start_step: int = 0, shuffle_buffer: int | None = None):
    """An endless ``tf.data.Dataset`` of full batches whose order is a pure function of ``(seed, step)``.

    Pass ``p`` over the events is the permutation ``argsort`` of full-range int64 draws of
    ``tf.random.stateless_uniform`` with seed ``(seed, p)``, cut into ``n // batch_size`` batches (the last
    ``n % batch_size`` events of each permutation are left out of that pass). Batch ``b`` is batch
    ``b % (n // batch_size)`` of pass ``b // (n // batch_size)``, so a run resumed at model step ``start_step``
    (one batch per step) sees exactly the batches the uninterrupted run saw from that step on.

    Args:
        data: ``(n, d)`` float array, or a tuple of arrays with the same first dimension (``(x, context)``,
            ``(x, context, weight)``).
        batch_size: events per batch.
        seed: the run seed.
        start_step: the first batch to yield (the step a resumed run starts at).
        shuffle_buffer: ignored (every pass is a full permutation); kept for callers of an older version.

    Raises:
        ValueError: fewer events than one batch.
    """
    import tensorflow as tf

    arrays = tuple(np.asarray(a, dtype=np.float32) for a in (data if isinstance(data, tuple) else (data,)))
    n = len(arrays[0])
    if n < batch_size:
        raise ValueError(f"{n} training events is fewer than one batch of {batch_size}")
    if any(len(a) != n for a in arrays):
        raise ValueError(f"the training arrays have different lengths: {[len(a) for a in arrays]}")
    per_pass = n // batch_size
    first_pass, offset = divmod(int(start_step), per_pass)
    tensors = tuple(tf.constant(a) for a in arrays)

    def batches_of_pass(p):
        draws = tf.random.stateless_uniform([n], seed=tf.stack([tf.constant(int(seed), tf.int64), p]),
                                            minval=None, maxval=None, dtype=tf.int64)
        order = tf.argsort(draws, stable=True)[: per_pass * batch_size]
        return tf.data.Dataset.from_tensor_slices(tf.reshape(order, (per_pass, batch_size)))

    def gather(index):
        out = tuple(tf.gather(t, index) for t in tensors)
        return out if len(out) > 1 else out[0]

    return (tf.data.Dataset.range(first_pass, 2 ** 62).flat_map(batches_of_pass).skip(offset)
            .map(gather).prefetch(2))


class LossLog(keras.callbacks.Callback):
    """The logged losses of a run in windows of ``every`` model steps counted from step 0, written to
    ``run/losses.json`` (atomically) at the end of each window: ``[{"step": s, name: mean over the window's
    steps}, ...]``, and at the end of an invocation for the window still open (a later invocation continues that
    window: its entry then covers the whole window).

    The window's running means are the model's loss trackers (``model.metrics``), which Keras resets at each
    epoch start: this callback puts them back, so a window is independent of where ``fit`` epochs begin. They
    are part of each checkpoint (``run_state_variables``); on resume, entries after the resumed step are dropped
    (they are recomputed), so a killed and resumed run writes the same ``losses.json`` as the uninterrupted one.

    Args:
        run: the run folder.
        every: window length in model steps.
        start: the step the run resumes from (0 for a new run).
    """

    def __init__(self, run: Run, every: int, start: int):
        super().__init__()
        import json

        path = run / Run.LOSSES
        self.run, self.every = run, int(every)
        self.entries = [e for e in (json.loads(path.read_text()) if path.exists() else []) if e["step"] <= start]
        if path.exists():
            run.write_json(Run.LOSSES, self.entries)
        self.new: list[dict] = []
        self._state = None
        self._reset_pending = False

    def _trackers(self):
        return [v for m in self.model.metrics for v in m.variables]

    def on_train_begin(self, logs=None):
        self._state = [np.array(v) for v in self._trackers()]
        self._reset_pending = self.model.step % self.every == 0  # a window starts here: its trackers are empty

    def on_epoch_begin(self, epoch, logs=None):
        for v, value in zip(self._trackers(), self._state):
            v.assign(value)

    def on_epoch_end(self, epoch, logs=None):
        self._state = [np.array(v) for v in self._trackers()]

    def _log(self, step: int) -> None:
        entry = {"step": int(step), **{m.name: float(m.result()) for m in self.model.metrics}}
        if self.entries and self.entries[-1]["step"] == step:
            self.entries[-1] = entry
            if self.new and self.new[-1]["step"] == step:
                self.new[-1] = entry
            else:
                self.new.append(entry)
        else:
            self.entries.append(entry)
            self.new.append(entry)
        self.run.write_json(Run.LOSSES, self.entries)

    def on_train_batch_begin(self, batch, logs=None):
        if self._reset_pending:
            for m in self.model.metrics:
                m.reset_state()
            self._reset_pending = False

    def on_train_batch_end(self, batch, logs=None):
        # the trackers are reset before the next step, not here: Keras reads them for the epoch's logs (the
        # progress bar, History) after this call
        step = self.model.step
        if step % self.every == 0:
            self._log(step)
            self._reset_pending = True

    def on_train_end(self, logs=None):
        step = self.model.step
        open_window = any(float(np.asarray(v)) > 0 for m in self.model.metrics for v in m.variables
                          if v.name == "count")
        if open_window and not (self.entries and self.entries[-1]["step"] == step):
            self._log(step)

    def losses(self) -> dict:
        """This invocation's entries as ``{"step": [...], name: [...]}``."""
        keys = list(dict.fromkeys(k for e in self.new for k in e))
        return {k: [e.get(k) for e in self.new] for k in keys}


def train(build: Callable[[], Any], data, run: Run, *, steps: int, batch_size: int, seed: int,
          steps_per_epoch: int | None = None, checkpoint_every: int | None = None, keep_checkpoints: int | None = None,
          evaluate: Callable[[Any], dict] | None = None, eval_every: int | None = None, monitor: str | None = None,
          mode: str = "min", evaluate_at_start: bool = False, patience: int | None = None,
          restore_best: bool = False, on_divergence: str = "raise", callbacks: Sequence = (), verbose: int = 2,
          shuffle_buffer: int | None = None, strategy=None, weights=None) -> Trained:
    """Train a model of the contract (``gan4hep.models.base``) into ``run``.

    Seeds Python, numpy and the backend with ``seed``, calls ``build()`` (which returns a compiled model), derives
    every random stream of the model from ``seed`` (``seed_random_state``), resumes from the run's newest checkpoint
    (weights, optimizer, random streams, open loss window), and fits up to exactly ``steps`` model steps on an
    endless dataset whose batch order is a function of ``(seed, step)`` (``dataset``), so a killed and resumed run
    ends as the uninterrupted one. Checkpoints go to ``run.checkpoints`` (every ``checkpoint_every`` steps and at
    the end); with ``evaluate``, it is called every ``eval_every`` steps and its results are kept in
    ``run/evaluation.json``; with ``monitor``, the best value's checkpoint is saved as ``run/best.npz`` (the
    checkpoint selection). Losses go to ``run/losses.json`` at the end of each window of ``steps_per_epoch`` steps
    (``LossLog``); steps, time and the selection to ``run/results.json``.

    Args:
        build: returns the compiled model (called after seeding, so the initial weights follow ``seed``).
        data: training array ``(n, d)`` in the model's space, or ``(x, context)``.
        run: the run folder (its recipe already started with ``Run.start``).
        steps: total model steps of the run (a resumed run trains the rest).
        batch_size, seed, shuffle_buffer: see ``dataset``.
        steps_per_epoch: steps per logged window of ``losses.json`` and per Keras epoch; default ``eval_every`` or
            ``steps``.
        checkpoint_every: default ``steps_per_epoch``. keep_checkpoints: newest periodic checkpoints kept (None: all).
        evaluate: ``model -> {name: float}``; eval_every: its interval in steps (default ``steps_per_epoch``).
        monitor, mode: the evaluated value whose best ("min" / "max") is selected.
        evaluate_at_start: also evaluate the initialised model (step 0) of a new run.
        patience: stop when ``monitor`` has not improved for this many evaluations (early stopping).
        restore_best: load ``best.npz`` into the model before returning.
        on_divergence: "raise" (``TrainingDiverged``) or "stop" (record it in ``Trained.diverged`` and return).
        callbacks: further Keras callbacks.
        verbose: Keras ``fit`` verbosity.
        strategy: a ``tf.distribute`` strategy (e.g. ``MirroredStrategy``: all GPUs of one host) under whose scope
            the model is built; ``batch_size`` is then the global batch, split over the replicas. Checkpoints and
            resume are unchanged. (Several hosts: Keras 3 on TensorFlow has no maintained multi-worker path.)
        weights: ``(n,)`` per-event weights of the training events (any sign; normalised here to mean 1, the
            Keras sample-weight convention), passed to the model as ``(x, context, weight)`` (a zero-width context
            for an unconditional model). The model's ``check_weights`` refuses weights its loss is not defined
            for (GAN: ``gan4hep.models.gan``; flows: the weighted negative log-likelihood takes any sign).

    Raises:
        TrainingDiverged: a non-finite loss with ``on_divergence="raise"`` (names the loss, step and last
            checkpoint).
        ValueError: inconsistent options, or fewer events than one batch.
        gan4hep.errors.InputError (a ValueError): weights that are not finite, have a non-positive sum, do not
            match the data, or that the model refuses (``check_weights``; names the reason).
    """
    if on_divergence not in ("raise", "stop"):
        raise ValueError(f"on_divergence must be 'raise' or 'stop', got {on_divergence!r}")
    if monitor is not None and evaluate is None:
        raise ValueError("monitor needs an evaluate function")
    if patience is not None and monitor is None:
        raise ValueError("patience needs a monitored evaluation")
    keras.utils.set_random_seed(seed)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = build()
    if weights is not None:
        data = _weighted(data, weights)
        model.check_weights(data[2])
    model.seed_random_state(seed)
    start = resume(model, run.checkpoints)
    if start:
        print(f"resumed {run.path} from step {start}", flush=True)
    remaining = max(int(steps) - start, 0)
    window = max(1, int(steps_per_epoch or eval_every or steps))
    spe = max(1, min(window, remaining or window))
    every = int(eval_every or window)

    loss_log = LossLog(run, window, start)
    cbs = [DivergenceGuard(run.checkpoints), loss_log,
           PeriodicCheckpoint(run.checkpoints, checkpoint_every or window, keep=keep_checkpoints)]
    evaluation = None
    if evaluate is not None:
        evaluation = PeriodicEvaluation(every, evaluate, monitor=monitor, mode=mode,
                                        best_path=run / Run.BEST if monitor else None,
                                        history_path=run / Run.EVALUATION, resume=start > 0)
        cbs.append(evaluation)
        if evaluate_at_start and start == 0:
            evaluation.set_model(model)
            evaluation.run()
        if patience:
            cbs.append(Patience(evaluation, patience, every))
    cbs += [*callbacks, StopAt(steps)]

    diverged = None
    t0 = time.time()
    if remaining > 0:
        try:
            ds = dataset(data, batch_size, seed, start_step=start)
            with exact_graphs():
                    model.fit(ds, epochs=math.ceil(remaining / spe), steps_per_epoch=spe, callbacks=cbs,
                          verbose=verbose, shuffle=False)
        except TrainingDiverged as err:
            if on_divergence == "raise":
                raise
            diverged = str(err)
    seconds = time.time() - t0
    losses = loss_log.losses()

    previous = run.results()
    earlier = previous.get("train_seconds") if start and previous.get("trained_steps") == start else None
    total = seconds if not start else (None if earlier is None else earlier + seconds)
    best_step = evaluation.best_step if evaluation is not None else None
    best_value = evaluation.best if evaluation is not None else None
    final_step = model.step
    run.update_results(trained_steps=final_step, resumed_from=start, train_seconds=total,
                       selected_step=best_step, selected_value=best_value, diverged=diverged)
    if restore_best and best_step is not None and (run / Run.BEST).exists():
        model.load_checkpoint(run / Run.BEST)
    return Trained(model, start, final_step, seconds, losses, evaluation.history if evaluation else [],
                   best_step, best_value, diverged)


def _weighted(data, weights) -> tuple:
    """``(x, context or a zero-width (n, 0) array, weights / mean(weights))``.

    Raises:
        InputError: weights of another length than the data, not finite, or with a sum <= 0.
    """
    x, context = (data[0], data[1] if len(data) > 1 else None) if isinstance(data, tuple) else (data, None)
    if isinstance(data, tuple) and len(data) > 2:
        raise InputError("pass the weights either in data=(x, context, w) or as weights=, not both")
    x = np.asarray(x)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if len(w) != len(x):
        raise InputError(f"per-event weights: {len(w)} weights for {len(x)} training events")
    if not np.isfinite(w).all():
        raise InputError(f"per-event weights: {int((~np.isfinite(w)).sum())} are not finite")
    if not w.sum() > 0:
        raise InputError(f"per-event weights: they sum to {w.sum():g}; a weighted sample needs a positive total")
    context = np.zeros((len(x), 0), np.float32) if context is None else context
    return x, context, (w / w.mean()).astype(np.float32)
