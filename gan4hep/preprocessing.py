"""Invertible feature transforms for (n_events, n_features) tables, and a Pipeline that saves as JSON.

Every transform has ``fit / transform / inverse_transform`` and acts on all columns or on a subset
(``columns=`` indices, or feature names when names are known). Inputs are checked: a non-2-d array, a wrong
number of features, or NaN/inf raise ``ValueError`` naming the column. Outputs are float64, so that
``inverse_transform(transform(x))`` reproduces ``x`` to rounding; cast to float32 for training yourself.

``TailClip`` implements two readings of Lebese & Ruan (2021, sec. 4.2), "10% of the tails is cut with
re-bucketing to the last bin":

* ``mode="clip"``: values above each feature's fitted quantile are set to it (a transform; the clipped
  values cannot be recovered, so ``inverse_transform`` is the identity);
* ``mode="drop_events"``: events with any selected feature above its quantile are removed. Removing rows is a
  selection, not a transform, so it is applied before the Pipeline: ``cut = TailClip(0.9, "drop_events").fit(x);
  x = x[cut.mask(x)]``. It cannot sit inside a Pipeline.

(The third reading, dropping each feature's tail values independently, changes the number of rows per feature
and cannot be done on an event table.)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Self, Sequence

import numpy as np
from numpy.typing import ArrayLike

from gan4hep.errors import InputError
from gan4hep.io import atomic_path

__all__ = ["Transform", "MinMax", "Standardise", "Log", "Scale", "TailClip", "Pipeline", "load", "from_dict"]

_FORMAT = "gan4hep.preprocessing"
_VERSION = 1

#: Column selectors: an index (negative counts from the end), a feature name, or a sequence of them.
Columns = int | str | Sequence[int | str]


def _label(j: int, names) -> str:
    return f"column {j} ({names[j]!r})" if names is not None else f"column {j}"


def _as_table(x, names=None, n_features=None, who="transform"):
    """Validate ``x`` as a finite 2-d float table; return (float64 array, names taken from a DataFrame)."""
    frame_names = None
    if hasattr(x, "columns") and hasattr(x, "to_numpy"):
        frame_names = [str(c) for c in x.columns]
        if names is not None and n_features is not None and frame_names != list(names):
            raise InputError(f"{who}: DataFrame columns {frame_names} differ from the fitted names {list(names)}")
        x = x.to_numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InputError(f"{who}: input is not a numeric table ({err})") from None
    if arr.ndim != 2:
        raise InputError(f"{who}: expected a 2-d array (n_events, n_features), got shape {arr.shape}")
    if n_features is not None and arr.shape[1] != n_features:
        named = f" ({', '.join(names)})" if names is not None else ""
        raise InputError(f"{who}: expected {n_features} features{named}, got {arr.shape[1]}")
    names = frame_names if names is None else names
    bad = ~np.isfinite(arr)
    if bad.any():
        j = int(np.flatnonzero(bad.any(axis=0))[0])
        col = arr[:, j]
        kind = "NaN" if np.isnan(col).any() else "inf"
        rows = np.flatnonzero(~np.isfinite(col))
        raise InputError(f"{who}: {_label(j, names)} contains {kind} ({rows.size} non-finite value(s), first at "
                         f"row {rows[0]})")
    return arr, frame_names


class Transform:
    """Base of the feature transforms: column selection, validation, and JSON state.

    Subclasses implement ``_fit(xs)`` (set fitted arrays from the selected columns), ``_forward(xs)``,
    ``_inverse(xs)``, and list their constructor arguments in ``_params`` and fitted arrays in ``_state``.

    Tables ``x`` are array-likes or DataFrames of shape ``(n_events, n_features)``; outputs are float64 arrays of
    the same shape, with the columns a transform does not select passed through unchanged. Fitted arrays have
    shape ``(n_selected,)``.

    Args:
        columns: the columns to act on (indices or names); None for all.

    Raises:
        ValueError: ``columns`` is an empty sequence.
    """

    _params: tuple = ()
    _state: tuple = ()
    invertible = True

    def __init__(self, columns: Columns | None = None):
        if columns is not None:
            columns = [columns] if isinstance(columns, (int, str, np.integer)) else list(columns)
            if not columns:
                raise ValueError(f"{type(self).__name__}: columns= is empty; pass None for all columns")
            columns = [c if isinstance(c, str) else int(c) for c in columns]
        self.columns = columns
        self.n_features_ = None
        self.names_ = None
        self.columns_ = None

    # -- public API -------------------------------------------------------------------------------------
    def fit(self, x: ArrayLike, names: Sequence[str] | None = None) -> Self:
        """Learn the transform's parameters from ``x``; ``names`` (or a DataFrame's columns) label errors.

        Args:
            x: the training table ``(n_events, n_features)``, finite.
            names: feature names, one per column; needed to select columns by name unless ``x`` is a DataFrame.

        Returns:
            ``self``, fitted.

        Raises:
            ValueError: ``x`` not a finite numeric 2-d table or empty; wrong number of ``names``; a column
                selector that is out of range, unknown, or repeated; a subclass's fit check (constant column,
                ``x + offset <= 0`` for ``Log``).
        """
        arr, frame_names = _as_table(x, names, who=f"{type(self).__name__}.fit")
        names = list(names) if names is not None else frame_names
        if names is not None and len(names) != arr.shape[1]:
            raise ValueError(f"{type(self).__name__}.fit: {len(names)} names given for {arr.shape[1]} features")
        if arr.shape[0] == 0:
            raise InputError(f"{type(self).__name__}.fit: empty table (0 events)")
        self.n_features_, self.names_ = arr.shape[1], names
        self.columns_ = self._resolve(self.columns, arr.shape[1], names)
        self._fit(arr[:, self.columns_])
        return self

    def transform(self, x: ArrayLike) -> np.ndarray:
        """Apply the fitted transform: a new float64 ``(n_events, n_features)`` array.

        Raises:
            RuntimeError: not fitted.
            ValueError: ``x`` not a finite numeric 2-d table, a different number of features than at fit, or a
                DataFrame whose columns differ from the fitted names; ``x + offset <= 0`` for ``Log``.
            TypeError: ``TailClip(mode="drop_events")``, which is an event filter.
        """
        arr = self._check(x, "transform")
        out = arr.copy()
        out[:, self.columns_] = self._forward(arr[:, self.columns_])
        return out

    def inverse_transform(self, x: ArrayLike) -> np.ndarray:
        """Undo ``transform``: a new float64 ``(n_events, n_features)`` array in the original units.

        Raises:
            RuntimeError, ValueError, TypeError: as :meth:`transform`.
        """
        arr = self._check(x, "inverse_transform")
        out = arr.copy()
        out[:, self.columns_] = self._inverse(arr[:, self.columns_])
        return out

    def fit_transform(self, x: ArrayLike, names: Sequence[str] | None = None) -> np.ndarray:
        """``fit(x, names).transform(x)``; raises as :meth:`fit` and :meth:`transform`."""
        return self.fit(x, names).transform(x)

    @property
    def fitted(self) -> bool:
        """Whether ``fit`` has run (or a fitted state was loaded)."""
        return self.n_features_ is not None

    def to_dict(self) -> dict[str, Any]:
        """Class name, constructor parameters and, once fitted, the fitted state, as JSON-serialisable types."""
        d = {"class": type(self).__name__, "params": {k: getattr(self, k) for k in ("columns", *self._params)}}
        if self.fitted:
            d["n_features"] = int(self.n_features_)
            d["names"] = self.names_
            d["columns_"] = [int(c) for c in self.columns_]
            d["state"] = {k: np.asarray(getattr(self, k), dtype=np.float64).tolist() for k in self._state}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Transform:
        """Rebuild a transform from ``to_dict()`` output; the class is the one named in ``d``.

        Raises:
            KeyError: an unknown class name or a missing key.
            TypeError: called on a subclass and ``d`` describes another class.
        """
        if d["class"] not in _CLASSES:
            _register_flow_transforms()
        obj = _CLASSES[d["class"]]._from_dict(d)
        if cls is not Transform and not isinstance(obj, cls):
            raise TypeError(f"{cls.__name__}.from_dict: the state describes a {d['class']}")
        return obj

    @classmethod
    def _from_dict(cls, d):
        obj = cls(**d["params"])
        if "n_features" in d:
            obj.n_features_, obj.names_, obj.columns_ = d["n_features"], d["names"], np.asarray(d["columns_"], int)
            for k in obj._state:
                setattr(obj, k, np.asarray(d["state"][k], dtype=np.float64))
        return obj

    def to_json(self) -> str:
        """The full state (parameters and fitted values) as JSON; floats are written so they read back exactly."""
        return json.dumps({"format": _FORMAT, "version": _VERSION, **self.to_dict()}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Transform:
        """Rebuild a transform from ``to_json()`` output.

        Raises:
            ValueError: not JSON (``json.JSONDecodeError``), not a gan4hep.preprocessing state, or another format
                version.
            KeyError, TypeError: as :meth:`from_dict`.
        """
        d = json.loads(text)
        if d.get("format") != _FORMAT:
            raise ValueError(f"not a {_FORMAT} state (format={d.get('format')!r})")
        if d.get("version") != _VERSION:
            raise ValueError(f"unsupported {_FORMAT} version {d.get('version')!r}, this code reads {_VERSION}")
        return cls.from_dict(d)

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``to_json()`` to ``path`` atomically (no half-written file on a crash); returns ``Path(path)``."""
        with atomic_path(path) as tmp:
            Path(tmp).write_text(self.to_json())
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Transform:
        """Read a state written by :meth:`save`.

        Raises:
            FileNotFoundError: ``path`` does not exist.
            ValueError, KeyError, TypeError: as :meth:`from_json`.
        """
        path = Path(path)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise FileNotFoundError(f"preprocessing state file not found: {path}") from None
        return cls.from_json(text)

    def __repr__(self):
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in (*self._params, "columns"))
        return f"{type(self).__name__}({args})"

    # -- helpers ----------------------------------------------------------------------------------------
    def _check(self, x, what):
        who = f"{type(self).__name__}.{what}"
        if not self.fitted:
            raise RuntimeError(f"{who}: not fitted; call fit(x) first")
        return _as_table(x, self.names_, self.n_features_, who=who)[0]

    def _resolve(self, columns, n, names):
        who = type(self).__name__
        if columns is None:
            return np.arange(n)
        out = []
        for c in columns:
            if isinstance(c, str):
                if names is None:
                    raise ValueError(f"{who}: column {c!r} given by name but no feature names are known")
                if c not in names:
                    raise ValueError(f"{who}: no feature named {c!r}; features are {names}")
                out.append(names.index(c))
            else:
                if not -n <= c < n:
                    raise ValueError(f"{who}: column index {c} out of range for {n} features")
                out.append(c % n)
        if len(set(out)) != len(out):
            raise ValueError(f"{who}: columns {columns} select the same feature twice")
        return np.asarray(out, dtype=int)

    def _labels(self, local_j):
        return _label(int(self.columns_[local_j]), self.names_)


class MinMax(Transform):
    """Linear map of each column's fitted [min, max] onto [low, high] (Lebese & Ruan 2021, sec. 4.3, scale
    features to [0, 1] to match a sigmoid generator output). The fitted min and max map exactly onto 0 and 1 for
    the default range. Fitted ``min_``, ``max_`` are in the input's units.

    Raises:
        ValueError: ``high <= low``; (at fit) a constant selected column.
    """

    _params = ("low", "high")
    _state = ("min_", "max_")

    def __init__(self, low: float = 0.0, high: float = 1.0, columns: Columns | None = None):
        super().__init__(columns)
        if not float(high) > float(low):
            raise ValueError(f"MinMax needs high > low, got low={low}, high={high}")
        self.low, self.high = float(low), float(high)

    def _fit(self, xs):
        self.min_, self.max_ = xs.min(axis=0), xs.max(axis=0)
        for j in np.flatnonzero(self.max_ == self.min_):
            raise InputError(f"MinMax.fit: {self._labels(j)} is constant ({self.min_[j]}); it cannot be scaled")

    def _forward(self, xs):
        return (xs - self.min_) / (self.max_ - self.min_) * (self.high - self.low) + self.low

    def _inverse(self, xs):
        return (xs - self.low) / (self.high - self.low) * (self.max_ - self.min_) + self.min_


class Standardise(Transform):
    """Subtract each column's mean and divide by its standard deviation (ddof=0).

    Raises:
        ValueError: (at fit) a constant selected column.
    """

    _state = ("mean_", "std_")

    def _fit(self, xs):
        self.mean_, self.std_ = xs.mean(axis=0), xs.std(axis=0)
        for j in np.flatnonzero(self.std_ == 0):
            raise InputError(f"Standardise.fit: {self._labels(j)} is constant; it cannot be standardised")

    def _forward(self, xs):
        return (xs - self.mean_) / self.std_

    def _inverse(self, xs):
        return xs * self.std_ + self.mean_


class Log(Transform):
    """``log(x + offset)``, to compress the long upper tails of momentum and mass spectra.

    ``x + offset <= 0`` raises ValueError naming the column, at fit and at transform. ``offset`` is in the
    column's units (e.g. GeV).
    """

    _params = ("offset",)

    def __init__(self, offset: float = 0.0, columns: Columns | None = None):
        super().__init__(columns)
        self.offset = float(offset)

    def _fit(self, xs):
        self._forward(xs)

    def _forward(self, xs):
        shifted = xs + self.offset
        bad = shifted <= 0
        if bad.any():
            j = int(np.flatnonzero(bad.any(axis=0))[0])
            i = int(np.flatnonzero(bad[:, j])[0])
            raise InputError(f"Log: {self._labels(j)} has x + offset <= 0 (x = {xs[i, j]} at row {i}, "
                             f"offset = {self.offset}); raise the offset or do not log this column")
        return np.log(shifted)

    def _inverse(self, xs):
        return np.exp(xs) - self.offset


class Scale(Transform):
    """``x / scale`` with a fixed, not fitted, scale (e.g. momenta in units of 450 GeV, Butter et al.).

    ``scale`` is in the column's units. ``fit`` only records the table's shape and names.

    Raises:
        ValueError: ``scale`` is zero or not finite.
    """

    _params = ("scale",)

    def __init__(self, scale: float = 1.0, columns: Columns | None = None):
        super().__init__(columns)
        if not np.isfinite(scale) or scale == 0:
            raise ValueError(f"Scale: scale must be finite and non-zero, got {scale}")
        self.scale = float(scale)

    def _fit(self, xs):
        pass

    def _forward(self, xs):
        return xs / self.scale

    def _inverse(self, xs):
        return xs * self.scale


class TailClip(Transform):
    """Cut the upper tail of each selected feature at its fitted ``quantile`` (default 0.9).

    Two readings of Lebese & Ruan's "10% of the tails is cut with re-bucketing to the last bin" (see the module
    docstring): ``mode="clip"`` sets values above the threshold to the threshold (``inverse_transform`` is the
    identity: clipped values are lost, and the generator learns a spike at the threshold);
    ``mode="drop_events"`` is an event filter: use ``mask(x)`` to keep events with every selected feature
    ``<= threshold``; ``transform`` then refuses to run, so the filter cannot be mistaken for a transform.
    Source: Lebese & Ruan 2021, sec. 4.2. Fitted ``threshold_`` ``(n_selected,)`` is in the input's units.

    Raises:
        ValueError: ``quantile`` outside (0, 1]; ``mode`` not one of ``MODES``.
        TypeError: ``transform`` / ``inverse_transform`` with ``mode="drop_events"``.
    """

    _params = ("quantile", "mode")
    _state = ("threshold_",)
    MODES = ("clip", "drop_events")

    def __init__(self, quantile: float = 0.9, mode: str = "clip", columns: Columns | None = None):
        super().__init__(columns)
        if not 0.0 < float(quantile) <= 1.0:
            raise ValueError(f"TailClip needs 0 < quantile <= 1, got {quantile}")
        if mode not in self.MODES:
            hint = " (dropping each feature's tail separately is not possible on an event table)" \
                if mode == "drop_feature" else ""
            raise ValueError(f"TailClip mode must be one of {self.MODES}, got {mode!r}{hint}")
        self.quantile, self.mode = float(quantile), mode
        self.invertible = mode == "clip"

    def _fit(self, xs):
        self.threshold_ = np.quantile(xs, self.quantile, axis=0)

    def mask(self, x: ArrayLike) -> np.ndarray:
        """Boolean array ``(n_events,)``, True for events whose selected features all lie at or below their thresholds.

        Raises:
            RuntimeError: not fitted.
            ValueError: ``x`` not a finite 2-d table with the fitted number of features.
        """
        arr = self._check(x, "mask")
        return np.all(arr[:, self.columns_] <= self.threshold_, axis=1)

    def _forward(self, xs):
        if self.mode != "clip":
            raise TypeError("TailClip(mode='drop_events') is an event filter, not a transform: "
                            "use x[tail_clip.mask(x)] before fitting the Pipeline")
        return np.minimum(xs, self.threshold_)

    def _inverse(self, xs):
        if self.mode != "clip":
            raise TypeError("TailClip(mode='drop_events') is an event filter and has no inverse")
        return xs


class Pipeline(Transform):
    """Transforms applied in order by ``transform`` and undone in reverse by ``inverse_transform``.

    ``names`` (optional, or a DataFrame's columns) label errors and let steps select columns by name. The
    whole fitted state saves to JSON (``save``/``load``), so a run folder can undo the scaling of generated
    events exactly.

    Args:
        steps: the transforms, in order (not Pipelines, not event filters).
        names: feature names, one per column of the tables to come.

    Raises:
        TypeError: a step that is not a transform, is a Pipeline, or is an event filter
            (``TailClip(mode="drop_events")``).
    """

    def __init__(self, steps: Iterable[Transform], names: Sequence[str] | None = None):
        super().__init__(None)
        steps = list(steps)
        for s in steps:
            if not isinstance(s, Transform) or isinstance(s, Pipeline):
                raise TypeError(f"Pipeline steps must be gan4hep.preprocessing transforms, got {s!r}")
            if not s.invertible:
                raise TypeError(f"{s!r} is an event filter, not a transform: apply x[step.mask(x)] before "
                                "the Pipeline")
        self.steps = steps
        self.names = list(names) if names is not None else None

    def fit(self, x: ArrayLike, names: Sequence[str] | None = None) -> Self:
        """Fit each step on the output of the previous ones; ``names`` default to the Pipeline's ``names``.

        Raises:
            ValueError: as :meth:`Transform.fit`, from any step.
        """
        names = names if names is not None else self.names
        arr, frame_names = _as_table(x, names, who="Pipeline.fit")
        names = list(names) if names is not None else frame_names
        if names is not None and len(names) != arr.shape[1]:
            raise ValueError(f"Pipeline.fit: {len(names)} names given for {arr.shape[1]} features")
        self.n_features_, self.names_, self.columns_ = arr.shape[1], names, np.arange(arr.shape[1])
        for step in self.steps:
            arr = step.fit(arr, names).transform(arr)
        return self

    def transform(self, x: ArrayLike) -> np.ndarray:
        arr = self._check(x, "transform")
        for step in self.steps:
            arr = step.transform(arr)
        return arr

    def inverse_transform(self, x: ArrayLike) -> np.ndarray:
        arr = self._check(x, "inverse_transform")
        for step in reversed(self.steps):
            arr = step.inverse_transform(arr)
        return arr

    def to_dict(self) -> dict[str, Any]:
        d = {"class": "Pipeline", "names": self.names, "steps": [s.to_dict() for s in self.steps]}
        if self.fitted:
            d["n_features"], d["fitted_names"] = int(self.n_features_), self.names_
        return d

    @classmethod
    def _from_dict(cls, d):
        obj = cls([Transform.from_dict(s) for s in d["steps"]], names=d.get("names"))
        if "n_features" in d:
            obj.n_features_, obj.names_ = d["n_features"], d["fitted_names"]
            obj.columns_ = np.arange(obj.n_features_)
        return obj

    def __repr__(self):
        return f"Pipeline({self.steps!r}, names={self.names!r})"


_CLASSES = {c.__name__: c for c in (MinMax, Standardise, Log, Scale, TailClip, Pipeline)}


def _register_flow_transforms() -> None:
    """Add the flow family's transforms (dequantisation, logit, clipping; gan4hep.flows.preprocessing) to the
    registry; imported lazily, as they live beside the flows (and importing those loads Keras)."""
    from gan4hep.flows.preprocessing import Clip, Dequantise, Logit

    _CLASSES.update({c.__name__: c for c in (Dequantise, Logit, Clip)})


def from_dict(d: dict[str, Any]) -> Transform:
    """Rebuild any transform or Pipeline from ``to_dict()`` output.

    Raises:
        KeyError: an unknown class name or a missing key.
    """
    return Transform.from_dict(d)


def load(path: str | os.PathLike) -> Transform:
    """Read a transform or Pipeline written by ``save``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: not a gan4hep.preprocessing JSON state of this version.
    """
    return Transform.load(path)
