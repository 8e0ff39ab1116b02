"""QCD multijet sample with large-R trimmed jets for Lin, Bhimji & Nachman (section 3.2).

Pythia 8 ``HardQCD:all`` at 13 TeV, hadronisation on, MPI off by default (``--mpi`` switches it on, ~4x slower).
Generation: pTHatMin 120 GeV (spectrum above 200 GeV unbiased) with ``PhaseSpace:bias2Selection`` (pT-hat^4 above
200 GeV) so that high-pT events are enriched; every event carries its weight (column ``weight``), ``--no-bias``
gives unweighted events. No detector response: jets are clustered from visible final-state particles
(|eta| < 4.9), anti-kt R = 1.0, trimmed with kt R_sub = 0.2 and f_cut = 5 % of the ungroomed jet pT. Jets with
trimmed pT > 200 GeV and |eta| < 2.0 are kept. N_trk = charged constituents of the ungroomed jet with pT > 0.5 GeV
and |eta| < 2.5. Regions as Table 1 of the paper (``REGIONS``).

    python -m data_prep.qcd_jets --events 20000 --seed 1 --jobs 2 --out samples/qcd_jets.root
"""

from __future__ import annotations

import argparse
import dataclasses

import awkward as ak
import numpy as np
import pandas as pd

from gan4hep import io
from data_prep import runner

TREE = "events"
REGIONS = {0: "none", 1: "control", 2: "validation", 3: "signal"}
JET_COLUMNS = ["event", "pt", "eta", "phi", "mass", "ntrk", "njet", "pt_lead", "deta12", "sum_mj", "region"]


@dataclasses.dataclass(frozen=True)
class JetConfig:
    radius: float = 1.0
    trim_radius: float = 0.2
    trim_fcut: float = 0.05
    pt_min: float = 200.0
    eta_max: float = 2.0
    track_pt_min: float = 0.5
    track_eta_max: float = 2.5
    particle_eta_max: float = 4.9


def pythia_settings(pthat_min=120.0, bias=True, mpi=False):
    s = ["Beams:eCM = 13000.", "HardQCD:all = on", f"PhaseSpace:pTHatMin = {pthat_min}",
         f"PartonLevel:MPI = {'on' if mpi else 'off'}"]
    if bias:
        s += ["PhaseSpace:bias2Selection = on", "PhaseSpace:bias2SelectionPow = 4.", "PhaseSpace:bias2SelectionRef = 200."]
    return s


def assign_region(njet, pt_lead, deta12, sum_mj):
    """Region code of Table 1 (Lin, Bhimji, Nachman): 1 control, 2 validation, 3 signal, 0 none.

    Control: N = 3. Validation: N = 4, pT1 > 400, |deta12| > 1.4; or N >= 5, |deta12| > 1.4.
    Signal: N = 4, pT1 > 400, |deta12| < 1.4, M_J^Sigma > 1.0 TeV; or N >= 5, |deta12| < 1.4, M_J^Sigma > 0.8 TeV.
    """
    njet, pt_lead, deta12, sum_mj = (np.asarray(a) for a in (njet, pt_lead, deta12, sum_mj))
    four = (njet == 4) & (pt_lead > 400.0)
    five = njet >= 5
    wide, narrow = deta12 > 1.4, deta12 < 1.4
    region = np.zeros(np.broadcast(njet, pt_lead).shape, dtype=np.int32)
    region[njet == 3] = 1
    region[(four | five) & wide] = 2
    region[(four & narrow & (sum_mj > 1000.0)) | (five & narrow & (sum_mj > 800.0))] = 3
    return region


def event_table(jets, event_number, weight):
    """Per-jet feature table (JET_COLUMNS, weight, region_name) from selected jets (awkward: events x jets with
    pt, eta, phi, mass, ntrk, sorted by pT) and per-event numbers and weights."""
    njet = ak.to_numpy(ak.num(jets.pt, axis=1))
    pt_pad = ak.fill_none(ak.pad_none(jets.pt, 2, axis=1), 0.0)
    eta_pad = ak.fill_none(ak.pad_none(jets.eta, 2, axis=1), 0.0)
    pt_lead = ak.to_numpy(pt_pad[:, 0])
    deta12 = np.where(njet >= 2, np.abs(ak.to_numpy(eta_pad[:, 0]) - ak.to_numpy(eta_pad[:, 1])), -1.0)
    sum_mj = ak.to_numpy(ak.sum(jets.mass[:, :4], axis=1))
    region = assign_region(njet, pt_lead, deta12, sum_mj)
    counts = njet

    def rep(a):
        return np.repeat(a, counts)
    df = pd.DataFrame({
        "event": rep(np.asarray(event_number)),
        "pt": ak.to_numpy(ak.flatten(jets.pt)), "eta": ak.to_numpy(ak.flatten(jets.eta)),
        "phi": ak.to_numpy(ak.flatten(jets.phi)), "mass": ak.to_numpy(ak.flatten(jets.mass)),
        "ntrk": ak.to_numpy(ak.flatten(jets.ntrk)).astype(np.int32),
        "njet": rep(njet).astype(np.int32), "pt_lead": rep(pt_lead), "deta12": rep(deta12), "sum_mj": rep(sum_mj),
        "region": rep(region).astype(np.int32),
        "weight": rep(np.asarray(weight, dtype=float)),
    })
    df["region_name"] = pd.Categorical([REGIONS[r] for r in df["region"]], categories=list(REGIONS.values()))
    return df


def _kin(px, py, pz, e):
    pt = np.hypot(px, py)
    return pt, np.arcsinh(pz / np.maximum(pt, 1e-9)), np.arctan2(py, px), \
        np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0))


def cluster_and_trim(prt, charge_of, cfg=JetConfig()):
    """Trimmed anti-kt jets of each event: awkward events x jets {pt, eta, phi, mass, ntrk, ungroomed_pt,
    ungroomed_mass}, all jets with trimmed pT > cfg.pt_min and |eta| < cfg.eta_max, sorted by pT."""
    import fastjet

    fastjet._swig.ClusterSequence.set_fastjet_banner_stream(None)
    final = prt[prt.status > 0]
    aid = abs(final.id)
    vis = final[(aid != 12) & (aid != 14) & (aid != 16)]
    p = vis.p
    pt, eta, _, _ = _kin(p.px, p.py, p.pz, p.e)
    vis = vis[abs(eta) < cfg.particle_eta_max]
    p = vis.p
    n_ev = len(vis)
    counts = ak.to_numpy(ak.num(vis.id, axis=1))
    flat = {k: ak.to_numpy(ak.flatten(getattr(p, k))) for k in ("px", "py", "pz", "e")}
    flat_id = ak.to_numpy(ak.flatten(vis.id))
    inputs = ak.zip({"px": p.px, "py": p.py, "pz": p.pz, "E": p.e}, with_name="Momentum4D")
    cs = fastjet.ClusterSequence(inputs, fastjet.JetDefinition(fastjet.antikt_algorithm, cfg.radius))
    min_pt = cfg.pt_min
    jets = cs.inclusive_jets(min_pt=min_pt)
    idx = cs.constituent_index(min_pt=min_pt)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    glob = ak.flatten(idx + offsets, axis=1)
    ncon = ak.to_numpy(ak.num(glob, axis=1))
    fi = ak.to_numpy(ak.flatten(glob))
    jets_per_event = ak.to_numpy(ak.num(jets, axis=1))
    jpx, jpy, jpz, je = (ak.to_numpy(ak.flatten(getattr(jets, k))) for k in ("px", "py", "pz", "E"))
    jpt, _, _, jm = _kin(jpx, jpy, jpz, je)

    # trimming: recluster each jet's constituents with kt R_sub, keep subjets above f_cut x jet pT
    cons = ak.unflatten(ak.zip({"px": flat["px"][fi], "py": flat["py"][fi], "pz": flat["pz"][fi],
                                "E": flat["e"][fi]}, with_name="Momentum4D"), ncon)
    if len(cons):
        sub_cs = fastjet.ClusterSequence(cons, fastjet.JetDefinition(fastjet.kt_algorithm, cfg.trim_radius))
        sub = sub_cs.inclusive_jets()
        keep = np.hypot(sub.px, sub.py) > cfg.trim_fcut * jpt
        tpx, tpy, tpz, te = (ak.to_numpy(ak.sum(getattr(sub, k)[keep], axis=1)) for k in ("px", "py", "pz", "E"))
    else:
        tpx = tpy = tpz = te = np.zeros(0)
    tpt, teta, tphi, tm = _kin(tpx, tpy, tpz, te)

    cid = flat_id[fi]
    cpt, ceta, _, _ = _kin(flat["px"][fi], flat["py"][fi], flat["pz"][fi], flat["e"][fi])
    charged = charge_of(cid) != 0
    trk = charged & (cpt > cfg.track_pt_min) & (np.abs(ceta) < cfg.track_eta_max)
    ntrk = np.add.reduceat(trk.astype(np.int64), np.concatenate([[0], np.cumsum(ncon)[:-1]])) if len(ncon) \
        else np.zeros(0, np.int64)

    rec = ak.zip({"pt": tpt, "eta": teta, "phi": tphi, "mass": tm, "ntrk": ntrk, "ungroomed_pt": jpt,
                  "ungroomed_mass": jm})
    rec = ak.unflatten(rec, jets_per_event) if n_ev else rec
    rec = rec[(rec.pt > cfg.pt_min) & (abs(rec.eta) < cfg.eta_max)]
    return rec[ak.argsort(rec.pt, axis=1, ascending=False)]


class ChargeLookup:
    """Electric charge by PDG id from Pythia's particle data, cached."""

    def __init__(self, pythia):
        self.pythia = pythia
        self.cache = {}

    def __call__(self, ids):
        ids = np.asarray(ids)
        uniq, inv = np.unique(ids, return_inverse=True)
        for i in uniq:
            if int(i) not in self.cache:
                self.cache[int(i)] = self.pythia.particleData.charge(int(i))
        return np.array([self.cache[int(i)] for i in uniq])[inv] if len(ids) else np.zeros(0)


def _generate_block(config, block, report):
    cfg = JetConfig(**config.get("jets", {}))
    settings = pythia_settings(config["pthat_min"], config["bias"], config["mpi"])
    pythia = runner.init_pythia(runner.configured_pythia(block.seed, settings))
    charge = ChargeLookup(pythia)
    parts, done = [], 0
    while done < block.events:
        n = min(config.get("chunk", 100), block.events - done)
        batch = pythia.nextBatch(n, errorMode="skip")
        jets = cluster_and_trim(batch.prt, charge, cfg)
        weights = ak.to_numpy(batch.info.weights[:, 0]) if config["bias"] else np.ones(len(batch))
        parts.append({"jets": jets, "weight": weights,
                      "number": np.arange(block.first + done, block.first + done + len(batch))})
        done += n
        report(n)
    info = pythia.infoPython()
    return {"jets": ak.concatenate([p["jets"] for p in parts]),
            "weight": np.concatenate([p["weight"] for p in parts]),
            "number": np.concatenate([p["number"] for p in parts]),
            "stats": {"sigma_pb": info.sigmaGen() * 1e9, "events": done, "weight_sum": info.weightSum()}}


def _block_tables(result):
    """One block's trees (``events``: FatJet collection, Event number and weight), jet rows and statistics."""
    jets, weight, number = result["jets"], result["weight"], result["number"]
    df = event_table(jets, number, weight)
    n = len(number)
    fat = ak.zip({"PT": jets.pt, "Eta": jets.eta, "Phi": jets.phi, "Mass": jets.mass,
                  "NTrk": ak.values_astype(jets.ntrk, np.int32), "UngroomedPT": jets.ungroomed_pt,
                  "UngroomedMass": jets.ungroomed_mass})
    event = ak.zip({"Number": ak.unflatten(number, np.ones(n, np.int64)),
                    "Weight": ak.unflatten(weight, np.ones(n, np.int64))})
    stats = dict(result["stats"])
    stats["region_counts"] = {int(k): int(v) for k, v in zip(*np.unique(df["region"], return_counts=True))}
    return runner.BlockTables({TREE: {"FatJet": fat, "Event": event}}, (TREE,), df, stats)


def _summarize(entries):
    """Sample metadata from the manifest entries of all blocks (block order)."""
    counts = {}
    for e in entries:
        for k, v in e["stats"]["region_counts"].items():
            counts[int(k)] = counts.get(int(k), 0) + v
    return {"events_generated": int(sum(e["entries"][TREE] for e in entries)),
            "jets_selected": int(sum(e["rows"] for e in entries)),
            "sigma_pb": float(np.mean([e["stats"]["sigma_pb"] for e in entries])),
            "region_counts": {REGIONS[k]: counts[k] for k in sorted(counts)}}


def make_sample(out, events: int = 20000, seed: int = 1, jobs: int = 1, mpi: bool = False, pthat_min: float = 120.0,
                bias: bool = True, job_index: int = 0, n_jobs: int = 1, block_size: int = 2000, progress: bool = True,
                scheduler=None, cluster: str | None = None, workers: int | None = None, cluster_config=None,
                retries: int = 2, keep_parts: bool = False):
    """Generate the sample: ``out`` (tree ``events``, per-event FatJet collection in Delphes-style names) and
    ``out`` with ``_features`` (one row per jet: JET_COLUMNS + weight + region_name; GeV). Returns the table's path.

    ``events`` generated events in seeded blocks of ``block_size`` (same ``seed`` and ``block_size`` -> the same
    events with any engine). Engines, part files, resume and errors: ``data_prep.runner.produce`` (``jobs`` local
    processes, or a Dask ``scheduler`` address / ``cluster`` kind with ``workers`` and ``cluster_config``).
    """
    out = runner.check_out(out)
    config = {"mpi": mpi, "pthat_min": pthat_min, "bias": bias}
    blocks = runner.make_blocks(events, seed, block_size, job_index, n_jobs)
    meta = {
        "sample": "qcd_jets", "paper": "Lin, Bhimji & Nachman 2019, section 3.2", "seed": seed,
        "block_size": block_size, "job_index": job_index, "n_jobs": n_jobs, "mpi": mpi, "pthat_min": pthat_min,
        "bias": bias,
        "weights": "Pythia event weights (bias2Selection pT^4 above 200 GeV)" if bias else "unweighted (1)",
        "jets": dataclasses.asdict(JetConfig()), "detector": "none: particle-level jets from visible particles",
        "regions": REGIONS, "deta12": "-1 for events with one jet",
    }
    return runner.produce(runner.Sample.of("qcd_jets"), config, out, blocks, meta, progress=progress, jobs=jobs,
                          scheduler=scheduler, cluster=cluster, workers=workers, cluster_config=cluster_config,
                          retries=retries, keep_parts=keep_parts, desc="qcd jets")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m data_prep.qcd_jets", description=__doc__.split("\n\n")[0])
    runner.add_common_args(p, events=20000, block_size=2000, out="samples/qcd_jets.root")
    p.add_argument("--mpi", action="store_true", help="multiparton interactions on (~4x slower)")
    p.add_argument("--pthat-min", type=float, default=120.0, help="PhaseSpace:pTHatMin in GeV (%(default)s)")
    p.add_argument("--no-bias", action="store_true", help="unweighted generation (no pT-hat^4 bias)")
    args = p.parse_args(argv)
    with runner.cli_errors(p.prog):
        path = make_sample(args.out, mpi=args.mpi, pthat_min=args.pthat_min, bias=not args.no_bias,
                           **runner.common_kwargs(args))
    meta = io.read_metadata(path)
    print(f"wrote {args.out} and {path}: {meta['events_generated']} events, {meta['jets_selected']} jets "
          f"{meta['region_counts']}, {runner.rate_text(meta)}")


if __name__ == "__main__":
    main()
