"""The model contract every generative family meets (GAN, normalising flow, VAE).

The training entry point (``gan4hep.training``), the run folder (``gan4hep.runs``), the callbacks and the CLI talk
to this interface only, never to ``model.generator`` or ``model.critic``:

- ``sample(n, context=None, seed=None) -> (n, n_features)`` numpy array in physical units (``context``: an
  ``(n, context_dim)`` array in physical units for a conditional model);
- ``step``: the number of optimisation steps done so far (generator steps for a GAN), restored with a checkpoint;
- ``save_checkpoint(path)`` / ``load_checkpoint(path)``: every variable a resumed run needs (.npz, atomic): the
  ``state_variables`` (weights, optimizer state) and the ``run_state_variables`` (the position of every random
  stream the training draws from, and the loss trackers), so that a resumed run continues exactly as the
  uninterrupted one;
- ``seed_random_state(seed)``: every random stream of the model derived from the run seed
  (``gan4hep.training.train`` calls it after ``build``);
- ``check_weights(weights)``: refuses, by name, per-event training weights the model's loss is not defined for;
- ``preprocessing`` / ``context_preprocessing``: fitted ``gan4hep.preprocessing`` pipelines (or None);
- ``support``: optional ``(low, high)`` box in physical units that every sampled event lies in (a selection's hard
  edges, e.g. a tail cut): ``sample`` redraws the events outside it (rejection sampling of the model's density
  restricted to the box);
- ``export(path)``: a standalone ``.keras`` file that carries its preprocessing, loaded back with
  ``gan4hep.models.load_sampler`` and emitting physical units.
"""

from __future__ import annotations

import importlib
import json
import math
import zipfile
from pathlib import Path

import keras
import numpy as np

from ..errors import InputError
from ..io import atomic_path


class GenerativeModel(keras.Model):
    """Base class of the model contract. Subclasses implement ``state_variables``, ``step`` and
    ``_sample_scaled`` (and their own ``compile`` / ``train_step``).

    Args:
        preprocessing: fitted pipeline of the generated features; ``sample`` returns ``inverse_transform`` of the
            network output.
        context_preprocessing: fitted pipeline of the context (conditioning) features; ``sample`` transforms the
            context it is given with it.
        context_dim: number of context features (0: unconditional).
        support: ``(low, high)``, each ``(n_features,)`` in physical units (-inf / inf for an open side), or None;
            ``sample`` returns only events inside it.

    Raises:
        ValueError: a ``support`` whose low and high differ in length or with low > high.
    """

    #: ``sample`` gives up on a ``support`` after drawing this many events per requested event (at least 1e6 in
    #: all): the model puts less than ~1/1000 of its probability inside the box.
    MAX_SUPPORT_DRAWS = 1000

    def __init__(self, preprocessing=None, context_preprocessing=None, context_dim: int = 0, support=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.preprocessing = preprocessing
        self.context_preprocessing = context_preprocessing
        self.context_dim = int(context_dim)
        self.support = None
        if support is not None:
            low, high = (np.asarray(v, dtype=np.float64).ravel() for v in support)
            if low.shape != high.shape or np.any(low > high):
                raise ValueError(f"support: low {low} and high {high} must have one value per feature, low <= high")
            self.support = (low, high)

    def support_config(self) -> dict:
        """``{"support": [low, high]}`` as lists for a subclass's ``get_config`` ({} without a support)."""
        return {} if self.support is None else {"support": [v.tolist() for v in self.support]}

    # ---- to implement ------------------------------------------------------------------------------------------
    @property
    def step(self) -> int:
        """Optimisation steps done so far (restored by ``load_checkpoint``)."""
        raise NotImplementedError

    def state_variables(self) -> list:
        """Every variable a resumed run needs (network weights, optimizer state), in a fixed order."""
        raise NotImplementedError

    def _sample_scaled(self, n: int, context, seed, batch_size: int, **options) -> np.ndarray:
        """``(n, n_features)`` samples in the model's (preprocessed) space; ``context`` is already transformed;
        ``options``: a family's own sampling options (``sample``'s extra keywords, e.g. a GAN's ``use_ema``)."""
        raise NotImplementedError

    def _random_components(self) -> list:
        """Objects outside the Keras layer tree that own a ``keras.random.SeedGenerator`` used in training (a
        GAN's noise sampler, its critic regularisers); their seed generators are found one attribute deep."""
        return []

    #: True if ``train_step`` takes per-event weights as the third element of ``(x, context, weight)``.
    takes_event_weights = False

    def check_weights(self, weights: np.ndarray) -> None:
        """Refuse per-event training weights this model's loss is not defined for.

        Args:
            weights: ``(n,)`` float array of the training events' weights (any sign).

        Raises:
            InputError: the model does not take weights, or not these (names the model and the reason).
        """
        if not self.takes_event_weights:
            raise InputError(f"per-event weights: {type(self).__name__} does not take per-event training weights")

    # ---- random streams and the run state --------------------------------------------------------------------
    def seed_generators(self) -> list:
        """Every ``keras.random.SeedGenerator`` a training step draws from, in a fixed order: those of the model's
        layers (dropout, a subclass's own), then those of ``_random_components``."""
        found, seen = [], set()

        def add(sg):
            if isinstance(sg, keras.random.SeedGenerator) and id(sg) not in seen:
                seen.add(id(sg))
                found.append(sg)

        for layer in self._flatten_layers(include_self=True, recursive=True):
            for sg in getattr(layer, "_seed_generators", []):
                add(sg)
        for obj in self._random_components():
            for value in vars(obj).values():
                add(value)
        return found

    def seed_random_state(self, seed: int) -> None:
        """Derive the state of every seed generator created without an explicit seed from ``seed`` (its position
        in ``seed_generators`` and ``numpy.random.SeedSequence``), whatever global random state was current when
        it was constructed. A generator given an explicit seed keeps it."""
        for i, sg in enumerate(self.seed_generators()):
            if getattr(sg, "_initial_seed", None) is None:
                value = int(np.random.SeedSequence([int(seed), 8271, i]).generate_state(1)[0]) >> 1
                sg.state.assign(np.array([value, 0], dtype=np.dtype(sg.state.dtype)))

    def run_state_variables(self) -> list:
        """What a resumed run needs besides ``state_variables`` to continue exactly: the state of every seed
        generator (``seed_generators``: the noise, the gradient-penalty interpolation, dropout), then the
        variables of the loss trackers (``metrics``: the running means of the current logging window)."""
        return ([sg.state for sg in self.seed_generators()]
                + [v for m in self.metrics for v in m.variables])

    # ---- the contract --------------------------------------------------------------------------------------------
    def _scaled_context(self, n: int, context) -> np.ndarray | None:
        """Check an ``(n, context_dim)`` context in physical units and transform it; None for unconditional."""
        if not self.context_dim:
            if context is not None:
                raise ValueError("this model is unconditional: do not pass a context")
            return None
        if context is None:
            raise ValueError(f"this model is conditional: pass context=(n, {self.context_dim}) array")
        context = np.asarray(context, dtype=np.float64).reshape(len(context), -1)
        if context.shape != (n, self.context_dim):
            raise ValueError(f"context has shape {context.shape}, expected {(n, self.context_dim)}")
        if self.context_preprocessing is not None:
            context = self.context_preprocessing.transform(context)
        return context.astype(np.float32)

    def sample(self, n: int, context=None, seed: int | None = None, batch_size: int = 65536,
               physical: bool = True, **options) -> np.ndarray:
        """Draw ``n`` events.

        Args:
            n: number of events.
            context: ``(n, context_dim)`` array in physical units for a conditional model, else None.
            seed: makes the draw reproducible.
            batch_size: events per network call.
            physical: undo the attached preprocessing (True) or return the model's own space (False).
            options: the family's own sampling options (``GAN``: ``use_ema``; ``VAE``: ``sampling``).

        Returns:
            ``(n, n_features)`` float array, in physical units when ``physical`` and a preprocessing is attached.

        With a ``support`` (and ``physical``), the events outside it are redrawn (with the same context rows) until
        all ``n`` lie inside: the model's density restricted to the box. Redraw ``k`` uses the seed
        ``SeedSequence([seed, k])``, so the same ``seed`` gives the same events.

        Raises:
            ValueError: a context given to an unconditional model, missing, or of the wrong shape.
            RuntimeError: fewer than ``n`` events inside the support after ``MAX_SUPPORT_DRAWS`` draws per event
                (the model puts almost no probability inside it).
        """
        n, batch_size = int(n), int(batch_size)
        scaled_context = self._scaled_context(n, context)
        x = self._sample_scaled(n, scaled_context, seed, batch_size, **options)
        if not physical:
            return x
        x = self.to_physical(x)
        if self.support is None:
            return x
        low, high = self.support
        todo = np.flatnonzero(~np.all((x >= low) & (x <= high), axis=1))
        tries, drawn, k = 2, 0, 0  # draws per missing event, doubled each round (up to ~1e6 events per round)
        while len(todo) and drawn < max(self.MAX_SUPPORT_DRAWS * n, 10**6):
            k += 1
            sub_seed = None if seed is None else int(np.random.SeedSequence([int(seed), k]).generate_state(1)[0])
            rows = np.repeat(todo, tries)  # the rows a redraw is for (their context rows, if conditional)
            redraw = self.to_physical(self._sample_scaled(
                len(rows), None if scaled_context is None else scaled_context[rows], sub_seed, batch_size,
                **options))
            drawn += len(rows)
            inside = np.all((redraw >= low) & (redraw <= high), axis=1)
            if self.context_dim:  # the first accepted redraw of each row
                done, first = np.unique(rows[inside], return_index=True)
                x[done] = redraw[inside][first]
                todo = np.setdiff1d(todo, done)
            else:  # any accepted redraw fills any missing row
                fill = redraw[inside][:len(todo)]
                x[todo[:len(fill)]] = fill
                todo = todo[len(fill):]
            tries = min(2 * tries, max(2, 2**20 // max(len(todo), 1)))
        if len(todo):
            raise RuntimeError(f"{type(self).__name__}.sample: {len(todo)} of {n} events still outside the support "
                               f"after {drawn} redraws: the model puts almost no probability inside it")
        return x

    def to_physical(self, x) -> np.ndarray:
        """``(n, n_features)`` model-space values -> physical units (the attached preprocessing undone)."""
        return x if self.preprocessing is None else self.preprocessing.inverse_transform(x)

    def finite(self) -> bool:
        """True if every variable of the model is finite (a NaN gradient shows only in the weights)."""
        return all(np.isfinite(np.asarray(v)).all() for v in self.state_variables())

    def save_checkpoint(self, path) -> Path:
        """Write ``state_variables()`` (keys ``v00000``, ...) and ``run_state_variables()`` (``s00000``, ...) to
        ``path`` (.npz) atomically."""
        arrays = {f"v{i:05d}": np.asarray(v) for i, v in enumerate(self.state_variables())}
        arrays.update({f"s{i:05d}": np.asarray(v) for i, v in enumerate(self.run_state_variables())})
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
        return Path(path)

    def load_checkpoint(self, path) -> int:
        """Restore a checkpoint written by ``save_checkpoint`` into this identically built model; returns ``step``.

        The run state (random streams, loss trackers) is restored too when the checkpoint holds it; a checkpoint of
        an older version without it leaves the model's own (the weights and optimizer state are all restored).

        Raises:
            ValueError: the checkpoint was written by a model with other variables (names the file and variable).
        """
        variables = self.state_variables()
        extra = self.run_state_variables()
        with np.load(path) as data:
            stored = [f for f in data.files if f.startswith("v")]
            run_state = [f for f in data.files if f.startswith("s")]
            if len(stored) != len(variables) or (run_state and len(run_state) != len(extra)):
                raise ValueError(
                    f"{path}: checkpoint holds {len(stored)} variables (+{len(run_state)} of run state), this "
                    f"model has {len(variables)} (+{len(extra)}); was it written by a model with the same "
                    "architecture and options?"
                )
            pairs = [(v, f"v{i:05d}") for i, v in enumerate(variables)]
            pairs += [(v, f"s{i:05d}") for i, v in enumerate(extra)] if run_state else []
            for v, key in pairs:
                value = data[key]
                if tuple(value.shape) != tuple(v.shape):
                    raise ValueError(f"{path}: variable {v.path} has shape {v.shape}, checkpoint {value.shape}")
                v.assign(value)
        return self.step

    def export(self, path) -> Path:
        """Save a standalone sampler (network + preprocessing) as ``.keras``; see ``load_sampler``."""
        raise NotImplementedError


def load_sampler(path):
    """Load a sampler written by a model's ``export``: an object with ``sample(n, context=None, seed=None)`` that
    returns physical units.

    Raises:
        FileNotFoundError: no file at ``path``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no exported model at {path}")
    for module in custom_modules(path):  # custom layers (a paper's physics layer) register themselves on import
        importlib.import_module(module)
    return keras.models.load_model(path, compile=False)


def custom_modules(path) -> list[str]:
    """The Python modules of the non-Keras objects in a ``.keras`` file's config, in order of appearance."""
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
    found = []

    def walk(node):
        if isinstance(node, dict):
            module = node.get("module")
            if isinstance(module, str) and node.get("class_name") and not module.startswith("keras") \
                    and module not in found:
                found.append(module)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    return found


def steps_per_epoch(n_events: int, batch_size: int) -> int:
    """Number of full batches in one pass over ``n_events`` (at least 1)."""
    return max(1, math.floor(n_events / batch_size))
