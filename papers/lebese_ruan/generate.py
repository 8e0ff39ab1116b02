"""Generate large background-only dilepton samples with a trained Lebese & Ruan generator (look-elsewhere toys).

    python papers/lebese_ruan/generate.py --run runs/lebese_ruan_quick --events 1000000 --out toys.parquet

Output by extension: .parquet, .csv or .root (TTree "events"), written atomically; prints events/s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="run folder written by train.py")
    p.add_argument("--events", type=int, required=True)
    p.add_argument("--out", type=Path, required=True, help="output file (.parquet, .csv or .root)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=65536)
    args = p.parse_args(argv)

    from gan4hep.io import write_table

    from evaluate import load_generator
    from model import FEATURES

    gan, cfg = load_generator(args.run)
    gan.generate(min(args.batch_size, args.events), seed=args.seed)  # warm-up (graph tracing) not timed
    t0 = time.time()
    x = gan.generate(args.events, seed=args.seed, batch_size=args.batch_size)
    seconds = time.time() - t0
    write_table(pd.DataFrame(x, columns=FEATURES), args.out)
    print(f"generated {args.events} events in {seconds:.2f} s: {args.events / seconds:.3g} events/s "
          f"(preset {cfg['preset']}, generator {cfg['generator']}) -> {args.out}")


if __name__ == "__main__":
    main()
