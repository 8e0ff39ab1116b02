"""Train the conditional jet-mass GANs of Lin, Bhimji & Nachman: vanilla / circle-WGAN x skew / noskew noise, several
random initialisations each, on the control-region training half, with the separation power (section 3.3)
recorded every epoch on the early-stopping half ("control_es") and on the validation region; the epoch with the
best early-stopping value is kept ("Adam optimizer with early stopping", section 2.1).

    python papers/lin_bhimji_nachman/train.py --preset quick --out runs/lbn
(templates.py runs this as part of the full reproduction.)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import keras

from gan4hep import io
from gan4hep.callbacks import DivergenceGuard, PeriodicEvaluation, TrainingDiverged
from gan4hep.models import steps_per_epoch
from papers.lin_bhimji_nachman import common, model as lbn_model

# "only those GANs with an initialized value below 0.6 are considered for Fig. 4 ... the average value over ten
# random initializations" (section 3.3)
INIT_THRESHOLD = 0.6


class _Patience(keras.callbacks.Callback):
    """Stop when the monitored evaluation has not improved for ``patience`` epochs."""

    def __init__(self, evaluation, patience, steps_per_epoch):
        super().__init__()
        self.evaluation, self.patience, self.spe = evaluation, patience, steps_per_epoch

    def on_epoch_end(self, epoch, logs=None):
        ev = self.evaluation
        if ev.best_step is not None and (self.model.step - ev.best_step) / self.spe >= self.patience:
            self.model.stop_training = True


def train_one(variant, noise, data, run_dir, seed, epochs, batch_size=128, patience=None, dress=10, mass_bins=20,
              target="m_over_pt", lr=None, verbose=0):
    """Train one initialisation; return its history (separation power per epoch) and the restored best model.

    ``data``: dict with DataFrames ``train``, ``control_es`` (early-stopping half) and ``validation``.
    """
    run_dir = Path(run_dir)
    gan = lbn_model.build(variant, noise, data["train"], target=target, lr=lr, seed=seed)
    x, c = lbn_model.training_arrays(gan, data["train"])
    gan.condition_preprocessing.save(run_dir / "conditions_preprocessing.json")
    gan.preprocessing.save(run_dir / "target_preprocessing.json")
    import tensorflow as tf

    ds = (tf.data.Dataset.from_tensor_slices((x, c)).shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
          .batch(batch_size, drop_remainder=True).prefetch(2))
    spe = steps_per_epoch(len(x), batch_size)

    def evaluate(m):
        out = {}
        for name, copies in (("control_es", 1), ("validation", dress)):
            jets = data[name]
            gen = lbn_model.generate_mass(m, jets, copies=copies, seed=seed + 7)
            out[f"sp_{name}"] = common.separation_power_8(jets, gen, mass_bins)["value"]
        return out

    best = run_dir / "best.npz"
    ev = PeriodicEvaluation(spe, evaluate, monitor="sp_control_es", mode="min", best_path=best,
                            history_path=run_dir / "history.json")
    ev.set_model(gan)
    ev.run()  # epoch 0: the initialised network
    callbacks = [DivergenceGuard(), ev]
    if patience:
        callbacks.append(_Patience(ev, patience, spe))
    t0 = time.time()
    diverged = None
    try:
        gan.fit(ds, epochs=epochs, callbacks=callbacks, verbose=verbose)
    except TrainingDiverged as err:
        diverged = str(err)
    seconds = time.time() - t0
    if best.exists():
        gan.load_checkpoint(best)
    hist = [{"epoch": h["step"] / spe, **h} for h in ev.history]
    best_entry = min(hist, key=lambda h: h["sp_control_es"])
    return gan, {"variant": variant, "noise": noise, "seed": seed, "target": target, "history": hist,
                 "best_epoch": best_entry["epoch"], "best": best_entry, "initial": hist[0],
                 "kept": hist[0]["sp_validation"] < INIT_THRESHOLD, "seconds": seconds,
                 "steps_per_epoch": spe, "diverged": diverged}


def train_all(data, out, cfg, seed, variants=lbn_model.VARIANTS, noises=tuple(lbn_model.NOISE_ALPHA),
              target="m_over_pt", log=print):
    """All variants x noises x ``cfg['n_init']`` initialisations. Returns {(variant, noise): [(gan, record), ...]}."""
    runs = {}
    for variant in variants:
        for noise in noises:
            runs[(variant, noise)] = []
            for i in range(cfg["n_init"]):
                s = seed * 1000 + 100 * variants.index(variant) + 10 * noises.index(noise) + i
                gan, rec = train_one(variant, noise, data, Path(out) / "runs" / f"{variant}_{noise}_{i}", s,
                                     cfg["epochs"], cfg["batch_size"], cfg["patience"], cfg["dress"],
                                     cfg["mass_bins"], target=target)
                h = rec["best"]
                log(f"  {variant:7s} {noise:6s} init {i}: start {rec['initial']['sp_validation']:.3f} "
                    f"({'kept' if rec['kept'] else 'dropped, >= 0.6'}), best epoch {rec['best_epoch']:.0f}: "
                    f"S(control ES half) {h['sp_control_es']:.4f}, S(validation) {h['sp_validation']:.4f} "
                    f"[{rec['seconds']:.0f} s]" + (f" DIVERGED: {rec['diverged']}" if rec["diverged"] else ""))
                runs[(variant, noise)].append((gan, rec))
    return runs


def prepare(df, seed):
    """The training data: control region split 50/50 by event; validation and signal regions for testing."""
    train, es = common.split_control(common.region(df, "control"), seed)
    return {"train": train, "control_es": es, "validation": common.region(df, "validation"),
            "signal": common.region(df, "signal") if (df["region"] == 3).any() else None}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_common_args(p)
    p.add_argument("--out", type=Path, default=Path("runs/lin_bhimji_nachman"), help="run folder")
    p.add_argument("--variant", choices=lbn_model.VARIANTS, nargs="+", default=list(lbn_model.VARIANTS))
    p.add_argument("--noise", choices=sorted(lbn_model.NOISE_ALPHA), nargs="+", default=["skew", "noskew"])
    p.add_argument("--target", choices=lbn_model.TARGETS, default="m_over_pt",
                   help="generator target: m_over_pt (default) or mass (literal reading)")
    p.add_argument("--n-init", type=int, default=None, help="initialisations per variant (default: preset)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: preset)")
    args = p.parse_args(argv)
    cfg = common.preset(args)
    cfg.update({k: v for k, v in (("n_init", args.n_init), ("epochs", args.epochs)) if v})
    df = common.load_sample(args, args.out, cfg["events"])
    data = prepare(df, args.seed)
    print(f"preset {args.preset}: {len(data['train'])} training jets, {len(data['control_es'])} early-stopping jets, "
          f"{len(data['validation'])} validation-region jets")
    runs = train_all(data, args.out, cfg, args.seed, tuple(args.variant), tuple(args.noise), args.target)
    summary = [{k: v for k, v in rec.items()} for recs in runs.values() for _, rec in recs]
    io.write_json({"preset": args.preset, "config": cfg, "runs": summary}, Path(args.out) / "training.json")
    print(f"wrote {Path(args.out) / 'training.json'}")


if __name__ == "__main__":
    main()
