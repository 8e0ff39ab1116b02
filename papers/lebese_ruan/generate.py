"""Generate large background-only dilepton samples with a trained Lebese & Ruan generator (look-elsewhere toys).

    python papers/lebese_ruan/generate.py --run runs/lebese_ruan_quick --samples 1000000 --out toys.parquet
    python papers/lebese_ruan/generate.py --pretrained --samples 1000000 --out toys.parquet   # no training needed

Reads the run's exported sampler (model.keras: the generator selected on the validation MC, with its
preprocessing, so it emits physical units), or with ``--pretrained [gan|flow]`` the quick-preset model shipped with
the package (``gan4hep.pretrained``; cards: gan4hep/pretrained_models/lebese_ruan/*/MODEL_CARD.md). Output by
extension (``gan4hep.io.write_events``): .parquet, .csv, .h5 or .root (TTree "events"), written atomically; prints
events/s.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from gan4hep import pretrained
from gan4hep.errors import InputError
from gan4hep.io import write_events
from gan4hep.models import load_sampler
from gan4hep.runs import Run

from papers.lebese_ruan import model  # registers DileptonKinematics for loading


def main(argv: list[str] | None = None) -> None:
    """Draw ``--samples`` events from the run's model.keras (or the shipped model) into ``--out``."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, help="run folder written by train.py")
    source.add_argument("--pretrained", nargs="?", const="gan", choices=["gan", "flow"],
                        help="the quick-preset model shipped with gan4hep (gan4hep.pretrained 'lebese_ruan:KIND'): "
                             "gan (the default) or flow")
    p.add_argument("--samples", type=int, required=True, help="events to draw from the generator")
    p.add_argument("--out", type=Path, required=True, help="output file (.parquet, .csv, .h5 or .root)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=65536, help="events per generator call")
    args = p.parse_args(argv)

    if args.pretrained:
        try:
            item = pretrained.get(f"lebese_ruan:{args.pretrained}")
        except InputError as err:
            raise SystemExit(f"error: {err}") from None
        sampler, source_name = item.load(), f"pretrained {item.name}"

        def draw(n: int):
            return item.generate(n, seed=args.seed, sampler=sampler, chunk=args.batch_size).to_numpy()
    else:
        sampler, source_name = load_sampler(Run(args.run) / Run.MODEL), str(args.run)

        def draw(n: int):
            return sampler.sample(n, seed=args.seed, batch_size=args.batch_size)

    draw(min(args.batch_size, args.samples))  # warm-up (graph tracing) not timed
    t0 = time.time()
    x = draw(args.samples)
    seconds = time.time() - t0
    write_events(args.out, pd.DataFrame(x, columns=list(model.FEATURES)))
    print(f"generated {args.samples} events in {seconds:.2f} s: {args.samples / seconds:.3g} events/s "
          f"({source_name}) -> {args.out}")


if __name__ == "__main__":
    main()
