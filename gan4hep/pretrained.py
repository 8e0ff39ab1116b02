"""Trained generators shipped with the package: sample without training, without Pythia, without the paper's data.

Each shipped model lives in ``gan4hep/pretrained_models/<paper>/<kind>/`` (``kind``: ``gan``, later ``flow``):

- ``model.keras``: the exported sampler (``gan4hep.models.load_sampler``: network, latent sampler and the
  preprocessing fitted on the training data, so it emits physical units);
- ``card.json``: the machine-readable card: features and units, data and seed, preset, training time, the fidelity
  table of its run, the support of each feature, the SHA-256 of ``model.keras``, and the reference table (per-feature
  mean, standard deviation and quantiles of the model's own output) with the tolerances ``check_reference`` applies;
- ``MODEL_CARD.md``: the same for people, with what the model must not be used for;
- for a conditional model, a context table (card ``context.file``, e.g. ``context.parquet``): rows of the
  conditioning columns (card ``context.columns``) drawn from the training data's region, resampled with replacement
  when ``generate`` is given no context.

A card may name ``derived`` columns, each the product of generated and context columns clipped from below (e.g. a jet
mass = generated m / pT times the context pT, at least 0): ``generate`` appends them.

The paper folders produce them (e.g. ``python -m papers.lebese_ruan.pretrained``); this module only reads them, so
the core never imports a paper.

    from gan4hep import pretrained
    toys = pretrained.get("lebese_ruan").generate(1_000_000, seed=1)   # pandas DataFrame, physical units
    jets = pretrained.get("lin_bhimji_nachman").generate(context=my_jets[["pt", "eta", "ntrk"]])  # conditional
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from .errors import InputError

__all__ = ["ROOT", "Pretrained", "available", "get", "reference_statistics", "check_reference", "QUANTILES",
           "measure_reference", "write_shipped", "sha256"]

#: The folder of the shipped models (package data).
ROOT = Path(__file__).resolve().parent / "pretrained_models"

#: Quantiles of the reference table.
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)

#: Events per generator call of ``Pretrained.generate``: bounds the memory of a large draw (the latent noise of
#: 2**16 events of 128 numbers is 64 MB in float64).
CHUNK = 2**16


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclasses.dataclass(frozen=True)
class Pretrained:
    """One shipped model: its folder and card; ``load`` / ``generate`` read ``model.keras`` on demand.

    Attributes:
        name: ``<paper>:<kind>``, e.g. ``lebese_ruan:gan``.
        path: the model's folder.
        card: the content of its ``card.json``.
    """

    name: str
    path: Path
    card: Mapping[str, Any]

    @property
    def features(self) -> list[str]:
        """Column names of the generated events, in the model's order."""
        return list(self.card["features"])

    @property
    def model_file(self) -> Path:
        return self.path / "model.keras"

    @property
    def context_columns(self) -> list[str]:
        """The conditioning columns of a conditional model (card ``context.columns``), in the model's order; empty
        for an unconditional one."""
        return list((self.card.get("context") or {}).get("columns", []))

    @property
    def derived(self) -> list[dict]:
        """The card's derived columns: ``{"name", "product": [columns], "min": lower clip or None}``."""
        return list(self.card.get("derived") or [])

    @property
    def columns(self) -> list[str]:
        """Columns of ``generate``'s output: the context columns, the generated ``features``, the derived ones."""
        return self.context_columns + self.features + [d["name"] for d in self.derived]

    def context_table(self) -> pd.DataFrame:
        """The context table shipped with a conditional model (card ``context.file``), as float64 columns
        ``context_columns``.

        Raises:
            InputError: the model is unconditional. FileNotFoundError: the file is missing (a broken installation).
        """
        if not self.context_columns:
            raise InputError(f"{self.name} is unconditional: it has no context table")
        return pd.read_parquet(self.path / self.card["context"]["file"],
                               columns=self.context_columns).astype(np.float64)

    def _context(self, n: int | None, context, seed: int) -> np.ndarray:
        """The (n, C) float64 context of a draw: ``context``'s columns (checked) or ``n`` rows of the shipped table
        drawn with replacement (``numpy.random.default_rng([seed, 17])``)."""
        cols = self.context_columns
        if context is None:
            if n is None:
                raise InputError(f"{self.name}: give the number of events or a context table")
            table = self.context_table().to_numpy()
            return table[np.random.default_rng([seed, 17]).integers(0, len(table), size=n)]
        if not cols:
            raise InputError(f"{self.name} is unconditional: it takes no context")
        if not isinstance(context, pd.DataFrame):
            raise InputError(f"{self.name}: the context must be a DataFrame with the columns {', '.join(cols)}")
        missing = [c for c in cols if c not in context.columns]
        if missing:
            raise InputError(f"{self.name}: the context lacks column {missing[0]!r} (needs {', '.join(cols)})")
        if n is not None and n != len(context):
            raise InputError(f"{self.name}: {n} events asked with a context of {len(context)} rows; they must agree")
        values = context[cols].to_numpy(np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            raise InputError(f"{self.name}: the context column {cols[int(np.flatnonzero(bad.any(axis=0))[0])]!r} "
                             "holds NaN or infinite values")
        return values

    def load(self):
        """The sampler (``sample(n, seed=...)`` -> ``(n, n_features)`` physical units).

        Raises:
            FileNotFoundError: the model file is missing (a broken installation).
        """
        from .models import load_sampler

        return load_sampler(self.model_file)

    def generate(self, n: int | None = None, seed: int = 1, sampler=None, chunk: int = CHUNK,
                 context: pd.DataFrame | None = None) -> pd.DataFrame:
        """Draw ``n`` events (for a conditional model: one per context row).

        The draw is made in chunks of ``chunk`` events, chunk ``i`` seeded with ``seed * 1_000_003 + i``: the same
        ``(n, seed, chunk, context)`` give the same events.

        Args:
            n: number of events (>= 0); may be omitted when ``context`` is given.
            seed: seeds the latent noise (and the resampling of the shipped context table).
            sampler: an already loaded sampler (``load()``), to time the generation alone.
            chunk: events per generator call.
            context: conditional models only: a DataFrame with (at least) the ``context_columns`` in the card's
                units, one row per event; default: ``n`` rows of the shipped context table drawn with replacement.

        Returns:
            ``(n, len(columns))`` DataFrame with the columns ``columns`` (context, generated features, derived) in
            physical units (card: ``units``).

        Raises:
            InputError: ``n`` negative; a context for an unconditional model, lacking a column (named), with
                non-finite values or with another number of rows than ``n``.
            RuntimeError: the model emitted non-finite numbers (a broken model file).
        """
        if n is not None and n < 0:
            raise InputError(f"{self.name}: the number of events must be >= 0, got {n}")
        ctx = self._context(n, context, seed) if (self.context_columns or context is not None) else None
        n = len(ctx) if ctx is not None else n
        if n is None:
            raise InputError(f"{self.name}: give the number of events")
        sampler = self.load() if sampler is None else sampler
        parts = [sampler.sample(min(chunk, n - start), seed=seed * 1_000_003 + i,
                                **({} if ctx is None else {"context": ctx[start:start + chunk]}))
                 for i, start in enumerate(range(0, n, chunk))]
        x = np.concatenate(parts, axis=0) if parts else np.zeros((0, len(self.features)))
        if not np.isfinite(x).all():
            raise RuntimeError(f"{self.model_file}: the shipped model emitted {int((~np.isfinite(x)).sum())} "
                               "non-finite values: the installation is broken")
        df = pd.DataFrame(x, columns=self.features)
        if ctx is not None:
            df = pd.concat([pd.DataFrame(ctx, columns=self.context_columns), df], axis=1)
        for d in self.derived:
            value = np.prod([df[c].to_numpy(np.float64) for c in d["product"]], axis=0)
            df[d["name"]] = value if d.get("min") is None else np.maximum(value, d["min"])
        return df

    def outside_support(self, df: pd.DataFrame) -> dict[str, int]:
        """Events outside the card's support, per feature (only features with any); the support is the range of
        the training data, which the generator's output layer cannot leave (up to float32 rounding, allowed as
        1e-5 of the range). Features without a support on the card (an unbounded output) are not checked."""
        out = {}
        support = self.card.get("support") or {}
        for f in self.features:
            if support.get(f) is None:
                continue
            lo, hi = support[f]
            slack = 1e-5 * (hi - lo)
            bad = int(((df[f] < lo - slack) | (df[f] > hi + slack)).sum())
            if bad:
                out[f] = bad
        return out


def available() -> list[str]:
    """Names (``<paper>:<kind>``) of the shipped models, sorted."""
    if not ROOT.is_dir():
        return []
    return sorted(f"{card.parent.parent.name}:{card.parent.name}" for card in ROOT.glob("*/*/card.json"))


def get(name: str) -> Pretrained:
    """The shipped model ``name``: ``<paper>`` (its GAN) or ``<paper>:<kind>``.

    Raises:
        InputError: no shipped model of that name (the message lists the shipped ones).
    """
    paper, _, kind = name.partition(":")
    full = f"{paper}:{kind or 'gan'}"
    folder = ROOT / paper / (kind or "gan")
    if full not in available():
        raise InputError(f"no pretrained model {name!r}; shipped: {', '.join(available()) or 'none'}")
    return Pretrained(full, folder, json.loads((folder / "card.json").read_text()))


def reference_statistics(df: pd.DataFrame, features: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Per feature: ``mean``, ``std`` and the ``QUANTILES`` (keys ``q01``, ``q05``, ...) of ``df``'s columns."""
    out = {}
    for f in features or list(df.columns):
        x = df[f].to_numpy(np.float64)
        row = {"mean": float(x.mean()), "std": float(x.std())}
        row.update({f"q{round(q * 100):02d}": float(v) for q, v in zip(QUANTILES, np.quantile(x, QUANTILES))})
        out[f] = row
    return out


def check_reference(df: pd.DataFrame, reference: Mapping[str, Any]) -> list[str]:
    """Compare generated events with a card's reference table.

    Every mean and quantile of ``df`` must lie within ``reference["tolerance"][kind]`` reference standard
    deviations of the reference value (``kind``: ``mean`` or ``quantile``).

    Args:
        df: generated events, at least the reference's features as columns.
        reference: the card's ``reference`` block: ``statistics`` (as ``reference_statistics``) and ``tolerance``.

    Returns:
        One line per value outside its tolerance (empty: the model reproduces its reference).
    """
    tol = reference["tolerance"]
    failures = []
    got = reference_statistics(df, list(reference["statistics"]))
    for f, want in reference["statistics"].items():
        for key, value in want.items():
            if key == "std":
                continue
            limit = (tol["mean"] if key == "mean" else tol["quantile"]) * want["std"]
            if not abs(got[f][key] - value) <= limit:
                failures.append(f"{f} {key}: {got[f][key]:.6g}, reference {value:.6g} (allowed +- {limit:.3g})")
    return failures


def measure_reference(item: Pretrained, sampler, events: int, seed: int, test_events: int, test_seed: int,
                      tolerance: Mapping[str, float], columns: list[str]) -> tuple[pd.DataFrame, dict, tuple]:
    """Draw a model's reference sample and time it, for a card (what every paper's ``pretrained.py`` ships).

    Args:
        item: the model about to be shipped (its card names the features and any context).
        sampler: ``item.load()`` (loaded once; a first small draw traces the graph and is not timed).
        events, seed: size and seed of the reference draw.
        test_events, test_seed: the fresh draw the test makes (recorded on the card).
        tolerance: ``{"mean": ..., "quantile": ...}`` in reference standard deviations.
        columns: the columns whose statistics enter the reference table.

    Returns:
        ``(ref_events, reference, seconds)``: the drawn events, the card's ``reference`` entry (``check_reference``
        reads it) and ``(wall, cpu)`` seconds per million events.
    """
    import time

    item.generate(1000, seed=1, sampler=sampler)  # graph tracing, not timed
    t0, c0 = time.perf_counter(), time.process_time()
    ref_events = item.generate(events, seed=seed, sampler=sampler)
    per_million = 1e6 / events
    seconds = ((time.perf_counter() - t0) * per_million, (time.process_time() - c0) * per_million)
    reference = {"events": events, "seed": seed, "chunk": CHUNK, "test_events": test_events, "test_seed": test_seed,
                 "tolerance": {**tolerance, "unit": "reference standard deviation"},
                 "statistics": reference_statistics(ref_events, list(columns))}
    return ref_events, reference, seconds


def generation_record(seconds: tuple[float, float], measured_by: str) -> dict[str, Any]:
    """A card's ``generation`` entry: ``seconds`` = (wall-clock, CPU) seconds per million events, as
    ``measure_reference`` returns them, rounded to 0.01 s, and the machine they were measured on; ``measured_by``
    names the script (and anything else worth saying about the measurement)."""
    import platform

    return {"seconds_per_million_events": round(seconds[0], 2),
            "cpu_seconds_per_million_events": round(seconds[1], 2),
            "machine": f"vm: 2 shared x86_64 cores ({platform.machine()}), no GPU, shared with other jobs; "
                       f"measured by {measured_by}"}


def shipped_line(run: Path, target: Path, unit: str = "events") -> str:
    """The line a paper's ``pretrained.py`` prints after shipping ``run`` to ``target``: the folder's size and the
    card's wall-clock generation time per million ``unit``."""
    card = json.loads((Path(target) / "card.json").read_text())
    size = sum(f.stat().st_size for f in Path(target).iterdir() if f.is_file())
    return (f"shipped {run} -> {target} ({size / 1e6:.2f} MB, {card['generation']['seconds_per_million_events']} s "
            f"wall-clock per million {unit})")


def reference_section(card: Mapping[str, Any], drawn: str, also: str = "",
                      checked_by: str = "tests/test_pretrained.py") -> list[str]:
    """The model card's "Reference table" section (Markdown lines) from ``card["reference"]`` (``measure_reference``)
    and ``card["sha256"]``: what a fresh draw must match, then the reference statistics.

    Args:
        drawn: how the reference events were drawn, after "The model's own output" (e.g. ", 50,000 events with
            seed 1").
        also: a further check, inserted after the tolerances (starting with ", ").
        checked_by: the tests that check it.
    """
    from .io import markdown_table

    ref = card["reference"]
    return [f"## Reference table (checked by {checked_by})", "",
            f"The model's own output{drawn}. A fresh draw of {ref['test_events']:,} events (seed {ref['test_seed']}) "
            f"must match every mean within {ref['tolerance']['mean']} and every quantile within "
            f"{ref['tolerance']['quantile']} reference standard deviations{also}, and `model.keras` must have SHA-256 "
            f"`{card['sha256'][:16]}...`:", "",
            markdown_table(pd.DataFrame(ref["statistics"]).T, index=True).rstrip(), ""]


def write_shipped(target: Path, model_file: Path, card: Mapping[str, Any], model_card: str) -> Path:
    """Write a shipped model's folder: ``model.keras`` (a copy of ``model_file``), ``card.json`` and
    ``MODEL_CARD.md``, each atomically; returns ``target``."""
    import shutil

    from .io import atomic_path, write_json

    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    with atomic_path(target / "model.keras") as tmp:
        shutil.copyfile(model_file, tmp)
    write_json(card, target / "card.json")
    with atomic_path(target / "MODEL_CARD.md") as tmp:
        Path(tmp).write_text(model_card)
    return target
