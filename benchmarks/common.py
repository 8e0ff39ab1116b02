"""Shared pieces of the benchmarks: the machine, the hardware reference measured in the same run, FLOP counts,
timing, and the arithmetic of the reported ratios.

Every benchmark prints the machine (``machine_line``), its reference (``matmul_peak``: float32 ``tf.matmul`` of
large square matrices, the hardware limit) measured in the same process, and its own numbers as ratios to it, so
that numbers from a noisy shared machine still mean something: only ratios measured in one run compare.

Two clocks are kept for every measurement:

* wall: seconds on the clock; what a user waits for. It falls when other jobs share the cores.
* CPU: core-seconds this process used (``time.process_time``: all its threads) or the calling thread used
  (``time.thread_time``, for single-threaded work such as Pythia). Rates per CPU-second are rates *per core*; they
  are much less sensitive to other jobs, so the fractions of peak and the speed-ups are computed from them (both
  sides of each ratio with the same clock, in the same run). Threads of TensorFlow's pool that spin while waiting
  count as used time: a poorly parallel workload shows a low rate per core, as it should.

The FLOP counts are analytic, from the layer shapes: a dense kernel of shape (n_in, n_out) costs
``2 n_in n_out`` FLOP per event (one multiply and one add per weight) plus ``n_out`` for the bias; a ``CircleDense``
in modulus mode does two such products (cos and sin). Activations, the spline and the preprocessing are not
counted (they are elementwise; their time is in the measured rate, so they lower the fraction of peak). For the
training step, which has gradients, gradient penalties and optimiser updates, the count comes from TensorFlow's
profiler on the traced step graph (``graph_flops``).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# ---------------------------------------------------------------------------------------------------- machine


def _cpuinfo() -> dict:
    """CPU model and SIMD flags from /proc/cpuinfo (Linux); empty values elsewhere."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {"model": model, "flags": flags}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model in ("", platform.machine(), platform.processor()):
            model = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
    return {"model": model, "flags": flags}


def cores() -> int:
    """Cores this process may run on (the affinity mask; ``os.cpu_count()`` where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def machine(with_tf: bool = True) -> dict:
    """The machine, as a JSON-ready dict: CPU model, cores usable, SIMD level, GPUs (through TensorFlow), the
    load average at the time of the call, versions, date (UTC)."""
    info = _cpuinfo()
    flags = info["flags"]
    simd = "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "avx" if "avx" in flags else \
        ("unknown" if not flags else "sse")
    out = {"cpu": info["model"], "cores": cores(), "logical_cpus": os.cpu_count(), "simd": simd,
           "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
           "python": platform.python_version(), "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "gpus": []}
    if with_tf:
        import tensorflow as tf

        out["tensorflow"] = tf.__version__
        for gpu in tf.config.list_physical_devices("GPU"):
            details = tf.config.experimental.get_device_details(gpu)
            out["gpus"].append(details.get("device_name", gpu.name))
    return out


def machine_line(m: Mapping) -> str:
    """One line: the device that runs TensorFlow, the CPU and its cores, the load."""
    cpu = f"{m['cpu']} ({m['simd']}), {m['cores']} cores usable"
    load = m.get("load_average_1min")
    load_text = f", load average {load:.1f} over {m['cores']} cores" if load is not None else ""
    gpus = m.get("gpus") or []
    head = f"GPU {gpus[0]}" + (f" (+{len(gpus) - 1})" if len(gpus) > 1 else "") + "; CPU " if gpus else "CPU "
    return f"machine: {head}{cpu}{load_text}; {m['date']}"


def quiet_tf() -> None:
    """TensorFlow's Python logger to errors only (the benchmarks build many ``tf.function`` objects on purpose,
    which it would warn about as retracing)."""
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")


_GPU = None


def has_gpu() -> bool:
    """Whether TensorFlow sees a GPU (cached)."""
    global _GPU
    if _GPU is None:
        import tensorflow as tf

        _GPU = bool(tf.config.list_physical_devices("GPU"))
    return _GPU


def device_rate(t: "Timing") -> float:
    """The rate the ratios use: per CPU-second (per core) on a CPU; wall-clock on a GPU, where the host's CPU
    time says nothing about the device's work."""
    return t.rate_wall if has_gpu() else t.rate_cpu


# ----------------------------------------------------------------------------------------------------- timing


@dataclass
class Timing:
    """Calls made, items processed (events), wall and CPU seconds of a timed loop."""

    calls: int
    items: float
    wall_s: float
    cpu_s: float

    @property
    def rate_wall(self) -> float:
        """Items per wall-clock second."""
        return self.items / self.wall_s if self.wall_s > 0 else float("nan")

    @property
    def rate_cpu(self) -> float:
        """Items per CPU-second (per core)."""
        return self.items / self.cpu_s if self.cpu_s > 0 else float("nan")

    @property
    def cores_used(self) -> float:
        """Average cores kept busy (CPU seconds / wall seconds)."""
        return self.cpu_s / self.wall_s if self.wall_s > 0 else float("nan")

    def as_dict(self) -> dict:
        return {"calls": self.calls, "items": self.items, "wall_s": self.wall_s, "cpu_s": self.cpu_s,
                "per_s_wall": self.rate_wall, "per_s_cpu": self.rate_cpu, "cores_used": self.cores_used}


def timed(fn: Callable[[], object], items_per_call: float, min_seconds: float = 1.0, min_calls: int = 1,
          max_calls: int = 10_000, clock: Callable[[], float] = time.process_time, repeats: int = 1) -> Timing:
    """Call ``fn()`` until ``min_seconds`` of wall time and ``min_calls`` calls have passed (at most
    ``max_calls``); ``clock`` is the CPU clock (``time.process_time``: all threads; ``time.thread_time``: this
    thread). Warm it up (trace, compile) before: the first call is timed like the others.

    With ``repeats`` > 1 the loop is timed that many times and the window with the median CPU rate is returned:
    one window slowed by another job on a shared machine does not decide the number.
    """
    windows = []
    for _ in range(max(int(repeats), 1)):
        calls = 0
        w0, c0 = time.perf_counter(), clock()
        while calls < max_calls:
            fn()
            calls += 1
            if calls >= min_calls and time.perf_counter() - w0 >= min_seconds:
                break
        windows.append(Timing(calls, calls * items_per_call, time.perf_counter() - w0, clock() - c0))
    return median_window(windows)


def median_window(windows: Sequence[Timing]) -> Timing:
    """The timed window with the median CPU rate (the upper one of an even count)."""
    return sorted(windows, key=lambda t: t.rate_cpu)[len(windows) // 2]


@contextlib.contextmanager
def stopwatch(store: dict, key: str, clock: Callable[[], float] = time.thread_time):
    """Add the CPU seconds (``clock``) spent in the block to ``store[key]``."""
    t0 = clock()
    try:
        yield
    finally:
        store[key] = store.get(key, 0.0) + clock() - t0


# -------------------------------------------------------------------------------------------- the reference


def matmul_peak(n: int | None = None, min_seconds: float = 2.0, chain: int = 8) -> dict:
    """The hardware limit: float32 ``tf.matmul`` throughput of two ``n x n`` matrices, in GFLOP/s.

    ``2 n^3`` FLOP per product; a compiled chain of ``chain`` dependent products per call (no Python between
    them), called for ``min_seconds`` after one warm-up call. ``n`` defaults to 4096 on a CPU and 8192 on a GPU.

    Returns:
        ``{"n", "gflops_wall", "gflops_per_core", "cores_used", "seconds"}``: wall-clock rate, rate per CPU-second
        (per core; on a GPU the per-core figure is meaningless and equals the wall rate), cores kept busy.
    """
    import tensorflow as tf

    gpu = has_gpu()
    n = int(n or (8192 if gpu else 4096))
    a = tf.random.normal((n, n), seed=1)
    b = tf.random.normal((n, n), seed=2) / n ** 0.5

    @tf.function
    def run(a, b):
        for _ in range(chain):
            a = tf.matmul(a, b)
        return a[0, 0]

    run(a, b).numpy()
    t = timed(lambda: run(a, b).numpy(), 2 * n ** 3 * chain / 1e9, min_seconds=min_seconds)
    per_core = t.rate_wall if gpu else t.rate_cpu
    return {"n": n, "gflops_wall": t.rate_wall, "gflops_per_core": per_core, "cores_used": t.cores_used,
            "seconds": t.wall_s}


def peak_line(peak: Mapping) -> str:
    return (f"reference: float32 matmul {peak['n']}x{peak['n']}: {peak['gflops_wall']:,.1f} GFLOP/s wall "
            f"({peak['cores_used']:.2f} cores busy), {peak['gflops_per_core']:,.1f} GFLOP/s per core")


# ------------------------------------------------------------------------------------------------------- FLOPs


def mlp_flops(widths: Iterable[int], bias: bool = True) -> int:
    """FLOP per event of a fully connected network with layer sizes ``widths`` = (input, hidden..., output):
    ``sum_i 2 w_i w_{i+1}`` (+ ``w_{i+1}`` per bias)."""
    w = [int(x) for x in widths]
    return sum(2 * a * b + (b if bias else 0) for a, b in zip(w[:-1], w[1:]))


def dense_flops(model) -> int:
    """FLOP per event of one pass through every dense-like kernel of ``model`` (a Keras model or layer):
    ``2 n_in n_out + n_out`` per Dense, twice the product for a ``CircleDense`` in modulus mode; activations and
    other elementwise work not counted. Each kernel is counted once (a network whose layers are called once per
    event: MLPs, coupling-flow conditioners in sampling)."""
    total = 0
    for layer in _layers(model):
        kind = type(layer).__name__
        if kind == "CircleDense":
            n_in, n_out = (int(d) for d in layer.theta.shape)
            products = 1 if getattr(layer, "output_mode", "modulus") == "real" else 2
            total += products * (2 * n_in * n_out + n_out)
        elif hasattr(layer, "kernel") and len(getattr(layer.kernel, "shape", ())) == 2 and kind in ("Dense",
                                                                                                     "EinsumDense"):
            n_in, n_out = (int(d) for d in layer.kernel.shape)
            total += 2 * n_in * n_out + (n_out if getattr(layer, "use_bias", True) else 0)
    return total


def _layers(model):
    if hasattr(model, "_flatten_layers"):
        return [lay for lay in model._flatten_layers(include_self=True, recursive=True)]
    return [model]


def graph_flops(fn, *specs) -> int:
    """FLOP of one call of the ``tf.function`` ``fn`` traced with the ``tf.TensorSpec`` ``specs``, counted by
    TensorFlow's profiler (``float_operation``: MatMul 2 m n k, elementwise ops one per element; ops without a
    registered count are skipped). Shapes must be static."""
    import tensorflow as tf
    from tensorflow.python.profiler import model_analyzer, option_builder

    concrete = (fn if isinstance(fn, tf.types.experimental.PolymorphicFunction) else tf.function(fn)) \
        .get_concrete_function(*specs)
    opts = option_builder.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    with _quiet_tf_logging():
        return int(model_analyzer.profile(concrete.graph, options=opts).total_float_ops)


@contextlib.contextmanager
def _quiet_tf_logging():
    import tensorflow as tf

    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        yield
    finally:
        logger.setLevel(level)


# -------------------------------------------------------------------------------------------------- the ratios


def gflops(events_per_s: float, flop_per_event: float) -> float:
    """Achieved GFLOP/s of ``events_per_s`` events of ``flop_per_event`` FLOP each."""
    return events_per_s * flop_per_event / 1e9


def fraction_of_peak(events_per_s: float, flop_per_event: float, peak_gflops: float) -> float:
    """Achieved FLOP rate over the reference rate (both per core, or both wall-clock)."""
    return gflops(events_per_s, flop_per_event) / peak_gflops


def per_event_cost(init_s: float, per_event_s: float, block_events: int) -> float:
    """Seconds per event of a block of ``block_events`` events with a one-off ``init_s`` (Pythia initialisation)
    amortised over it."""
    return per_event_s + init_s / block_events


def selected_cost(per_event_s: float, selected_fraction: float) -> float:
    """Seconds per *selected* event (or object) when a fraction ``selected_fraction`` of generated events pass:
    ``per_event_s / selected_fraction``."""
    if selected_fraction <= 0:
        return float("inf")
    return per_event_s / selected_fraction


def speedup(generator_per_s: float, simulation_selected_per_s: float) -> float:
    """How many times faster the generator makes a selected event than the simulation chain it replaces (both
    per core, in one run)."""
    return generator_per_s / simulation_selected_per_s


def counting_error(n: int) -> float:
    """Relative statistical uncertainty of a count ``n`` (Poisson, 1 / sqrt(n)); infinity for 0."""
    return 1.0 / n ** 0.5 if n > 0 else float("inf")


def linear_fit(x: Iterable[float], y: Iterable[float]) -> tuple[float, float]:
    """Least-squares (intercept, slope) of y = a + b x; the cost model of ``x`` events in ``y`` seconds."""
    x, y = list(map(float, x)), list(map(float, y))
    n = len(x)
    if n < 2:
        raise ValueError("need at least two points")
    mx, my = sum(x) / n, sum(y) / n
    sxx = sum((a - mx) ** 2 for a in x)
    if sxx == 0:
        raise ValueError("x values are all equal")
    b = sum((a - mx) * (c - my) for a, c in zip(x, y)) / sxx
    return my - b * mx, b


# ---------------------------------------------------------------------------------------------------- output


def markdown(headers: list[str], rows: Iterable[Iterable[object]]) -> str:
    """A Markdown table; floats formatted with ``fmt``."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(v: object) -> str:
    """Numbers to 3 significant digits (thousands separators above 1e4, scientific above 1e7); rest ``str``."""
    if isinstance(v, bool) or v is None:
        return "-" if v is None else str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v != v:
            return "nan"
        a = abs(v)
        if a == 0:
            return "0"
        if a >= 1e7 or a < 1e-3:
            return f"{v:.3g}"
        if a >= 1e4:
            return f"{v:,.0f}"
        return f"{v:.3g}"
    return str(v)


def write_json(obj, path) -> Path:
    """Write ``obj`` as indented JSON, atomically (NaN and infinity as null)."""
    from gan4hep.io import atomic_path

    def clean(o):
        if isinstance(o, float) and (o != o or o in (float("inf"), float("-inf"))):
            return None
        if isinstance(o, dict):
            return {str(k): clean(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [clean(v) for v in o]
        if hasattr(o, "item"):  # numpy scalars
            return clean(o.item())
        return o

    path = Path(path)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(clean(obj), indent=1) + "\n")
    return path


def header(title: str, m: Mapping, peak: Mapping | None = None) -> str:
    """The lines every benchmark prints first: its title, the machine, the reference."""
    lines = [f"== {title}", machine_line(m)]
    if peak is not None:
        lines.append(peak_line(peak))
    return "\n".join(lines)
