"""Dilepton + b sample of Lebese & Ruan (section 4.2): ttbar and Wt -> l l nu nu b (b), 13 TeV, Pythia 8.

Events are generated with Pythia 8 (ttbar via ``Top:gg2ttbar``/``Top:qqbar2ttbar``; g b -> t W via the user
process of ``data_prep.wt_process``), mixed by cross-section inside one Pythia run, passed through the simple
ATLAS-like detector response of ``detector_response`` and written as a Delphes-style tree ``Delphes``. The feature
table (``FILE_features.root``) comes from ``features_from_objects``, the same function ``read_delphes`` applies to
any Delphes ROOT file. Response and selection are documented in ``data_prep/README.md``.

    python -m data_prep.dilepton --events 20000 --seed 1 --jobs 2 --out samples/dilepton.root
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import awkward as ak
import numpy as np
import pandas as pd

from gan4hep import io, physics
from data_prep import runner

TREE = "Delphes"
FEATURES = physics.DILEPTON_FEATURES
PROCESS_CODES = {0: "ttbar", 1: "Wt"}


@dataclasses.dataclass(frozen=True)
class Detector:
    """Parameters of the ATLAS-like response (see README: numbers are our choice, ATLAS-inspired)."""

    lep_pt_min: float = 10.0  # stored leptons
    el_eta_max: float = 2.47
    mu_eta_max: float = 2.5
    el_eff: float = 0.85  # "Tight" likelihood, flat
    mu_eff: float = 0.95  # the paper's muon working point
    el_res_stoch: float = 0.10  # sigma_E/E = 10 %/sqrt(E) (+) 0.7 %
    el_res_const: float = 0.007
    mu_res_const: float = 0.02  # sigma_pT/pT = 2 % (+) 0.01 % x pT/GeV
    mu_res_slope: float = 1.0e-4
    iso_dr: float = 0.3  # relative isolation: sum pT(visible, pT > 0.5 GeV, dR < 0.3) / pT(l) < 0.15
    iso_max: float = 0.15
    iso_track_pt: float = 0.5
    calo_eta_max: float = 4.9
    jet_r: float = 0.4
    jet_pt_min: float = 20.0
    jet_eta_max: float = 4.5
    jet_res_central: tuple = (0.5, 0.03)  # sigma_E/E = a/sqrt(E) (+) c, |eta| < 3.2
    jet_res_forward: tuple = (1.0, 0.10)
    btag_eta_max: float = 2.5
    btag_dr: float = 0.3
    btag_hadron_pt: float = 5.0
    btag_eff_b: float = 0.70
    btag_eff_c: float = 1 / 12  # ATLAS 70 % WP: c rejection ~12, light rejection ~380
    btag_eff_light: float = 1 / 380
    met_soft_res: float = 0.5  # soft term: sigma(px), sigma(py) = 0.5 sqrt(sum ET_soft / GeV) GeV


@dataclasses.dataclass(frozen=True)
class Selection:
    """Event selection of Lebese & Ruan section 4.2 (muon cut: our choice, as the electrons)."""

    el_pt_min: float = 25.0
    mu_pt_min: float = 25.0
    jet_pt_min: float = 20.0
    jet_eta_max: float = 4.5
    jet_count_pt_min: float = 30.0
    n_bjet_min: int = 1


# ---------------------------------------------------------------------------------------------- generation

def pythia_settings(mpi=True, wt=True, hadronisation=True):
    """Pythia 8 settings of the sample (the Wt user process is added separately)."""
    return [
        "Beams:eCM = 13000.",
        "Top:gg2ttbar = on",
        "Top:qqbar2ttbar = on",
        "24:onMode = off",
        "24:onIfAny = 11 13 15",
        f"PartonLevel:MPI = {'on' if mpi else 'off'}",
        f"HadronLevel:all = {'on' if hadronisation else 'off'}",
    ]


def make_pythia(seed, settings, wt=True):
    """An initialised Pythia; returns (pythia, wt_process or None) — keep both alive."""
    pythia = runner.configured_pythia(seed, settings)
    proc = None
    if wt:
        from data_prep import wt_process

        proc = wt_process.attach(pythia)
    runner.init_pythia(pythia)
    if proc is not None:
        wt_process.finalize(pythia, proc)
    return pythia, proc


def _generate_block(config, block, report):
    det = Detector(**config.get("detector", {}))
    pythia, proc = make_pythia(block.seed, pythia_settings(config["mpi"], config["wt"], config["hadronisation"]),
                               config["wt"])
    rng = np.random.default_rng([block.seed, 7])
    parts, done = [], 0
    chunk = config.get("chunk", 1000)  # events per nextBatch + detector call: awkward overhead is per call
    while done < block.events:
        n = min(chunk, block.events - done)
        batch = pythia.nextBatch(n, errorMode="skip")
        objs = detector_response(batch.prt, rng, det)
        objs["Event"] = ak.zip({
            "Number": _one_per_event(np.arange(block.first + done, block.first + done + len(batch))),
            "Weight": _one_per_event(np.ones(len(batch))),
            "ProcessID": _one_per_event(process_id(batch.prt)),
        })
        parts.append(objs)
        done += n
        report(n)
    info = pythia.infoPython()
    stats = {"sigma_pb": info.sigmaGen() * 1e9, "sigma_err_pb": info.sigmaErr() * 1e9,
             "n_accepted": int(info.nAccepted()), "events": done}
    if proc is not None:
        stats["sigma_wt_pb"] = info.sigmaGen(proc.code()) * 1e9
        stats["sigma_ttbar_pb"] = (info.sigmaGen(601) + info.sigmaGen(602)) * 1e9
    merged = {k: ak.concatenate([p[k] for p in parts]) for k in parts[0]}
    return {"objects": merged, "stats": stats}


def process_id(prt):
    """0 for ttbar, 1 for Wt: the number of top quarks of the hard process (status -22)."""
    tops = ak.sum((abs(prt.id) == 6) & (prt.status == -22), axis=1)
    return ak.to_numpy(ak.where(tops >= 2, 0, 1)).astype(np.int32)


# -------------------------------------------------------------------------------------- detector response

def _kin(p):
    px, py, pz, e = p.px, p.py, p.pz, p.e
    pt = np.hypot(px, py)
    return px, py, pz, e, pt, np.arcsinh(pz / np.maximum(pt, 1e-9)), np.arctan2(py, px)


def _one_per_event(x):
    """A jagged (var) list of one entry per event, as Delphes' MissingET and Event collections."""
    x = np.asarray(x)
    return ak.unflatten(x, np.ones(len(x), dtype=np.int64))


def _gauss(rng, like):
    """Standard normal numbers with the jagged structure of ``like``."""
    counts = ak.num(like, axis=1)
    return ak.unflatten(rng.standard_normal(int(ak.sum(counts))), counts)


def _uniform(rng, like):
    counts = ak.num(like, axis=1)
    return ak.unflatten(rng.random(int(ak.sum(counts))), counts)


def _hadron_flavour(aid):
    """5 for b hadrons, 4 for c hadrons, 0 otherwise (PDG numbering; quarks and diquarks excluded)."""
    code = aid % 10000
    is_hadron = (code > 100) & ((code // 10) % 10 != 0)
    q2, q1 = (code // 100) % 10, (code // 1000) % 10
    b = is_hadron & ((q1 == 5) | (q2 == 5))
    c = is_hadron & ~b & ((q1 == 4) | (q2 == 4))
    return ak.where(b, 5, ak.where(c, 4, 0))


def _visible(prt, det):
    """Stable visible particles inside the calorimeter acceptance: (particles, px, py, pz, E, pT, eta, phi)."""
    final = prt[prt.status > 0]
    aid = abs(final.id)
    vis = final[(aid != 12) & (aid != 14) & (aid != 16)]
    px, py, pz, e, pt, eta, phi = _kin(vis.p)
    inside = abs(eta) < det.calo_eta_max
    return tuple(a[inside] for a in (vis, px, py, pz, e, pt, eta, phi))


def reconstruct_leptons(vis, e, pt, eta, phi, rng, det):
    """Electrons and muons: candidates in acceptance, track isolation (sum pT of tracks within ``iso_dr`` over the
    lepton pT < ``iso_max``), identification efficiency, then the momentum resolution (electrons: calorimeter
    stochastic + constant term in E; muons: constant + pT-proportional term). Returns an awkward record per
    lepton (PT [GeV], Eta, Phi, Charge, flavour, idx: the particle index, to remove it from the jet inputs)."""
    aid = abs(vis.id)
    idx = ak.local_index(pt, axis=1)
    is_el = (aid == 11) & (abs(eta) < det.el_eta_max)
    is_mu = (aid == 13) & (abs(eta) < det.mu_eta_max)
    cand = (is_el | is_mu) & (pt > 0.8 * det.lep_pt_min)
    c = ak.zip({"pt": pt[cand], "eta": eta[cand], "phi": phi[cand], "idx": idx[cand]})
    trk = pt > det.iso_track_pt
    o = ak.zip({"pt": pt[trk], "eta": eta[trk], "phi": phi[trk], "idx": idx[trk]})
    lc, oc = ak.unzip(ak.cartesian([c, o], axis=1, nested=True))
    dphi = (oc.phi - lc.phi + np.pi) % (2 * np.pi) - np.pi
    near = ((oc.eta - lc.eta) ** 2 + dphi**2 < det.iso_dr**2) & (oc.idx != lc.idx)
    iso = ak.sum(ak.where(near, oc.pt, 0.0), axis=2) / c.pt
    lep_id = aid[cand]
    eff = ak.where(lep_id == 11, det.el_eff, det.mu_eff)
    found = (iso < det.iso_max) & (_uniform(rng, c.pt) < eff)
    el_sigma = np.sqrt(det.el_res_stoch**2 / np.maximum(e[cand], 1e-3) + det.el_res_const**2)
    mu_sigma = np.sqrt(det.mu_res_const**2 + (det.mu_res_slope * c.pt) ** 2)
    scale = np.maximum(1 + ak.where(lep_id == 11, el_sigma, mu_sigma) * _gauss(rng, c.pt), 0.0)
    lep = ak.zip({"PT": c.pt * scale, "Eta": c.eta, "Phi": c.phi, "Charge": -np.sign(vis.id[cand]),
                  "flavour": lep_id, "idx": c.idx})
    return lep[found & (lep.PT > det.lep_pt_min)]


def cluster_jets(px, py, pz, e, rng, det):
    """Anti-kt jets (radius ``jet_r``) of the given particles with pT > 0.75 ``jet_pt_min``, and their energy
    resolution factors (stochastic + constant term, central |eta| < 3.2 and forward): (jets, scale) where jets
    holds px, py, pz, E, pt, eta, phi, m [GeV, rad] before smearing."""
    import fastjet

    fastjet._swig.ClusterSequence.set_fastjet_banner_stream(None)
    inputs = ak.zip({"px": px, "py": py, "pz": pz, "E": e}, with_name="Momentum4D")
    cs = fastjet.ClusterSequence(inputs, fastjet.JetDefinition(fastjet.antikt_algorithm, det.jet_r))
    tj = cs.inclusive_jets(min_pt=0.75 * det.jet_pt_min)
    jpx, jpy, jpz, je = tj.px, tj.py, tj.pz, tj.E
    jpt = np.hypot(jpx, jpy)
    jeta = np.arcsinh(jpz / np.maximum(jpt, 1e-9))
    jets = ak.zip({"px": jpx, "py": jpy, "pz": jpz, "E": je, "pt": jpt, "eta": jeta, "phi": np.arctan2(jpy, jpx),
                   "m": np.sqrt(np.maximum(je**2 - jpx**2 - jpy**2 - jpz**2, 0.0))})
    central = abs(jeta) < 3.2
    a = ak.where(central, det.jet_res_central[0], det.jet_res_forward[0])
    cst = ak.where(central, det.jet_res_central[1], det.jet_res_forward[1])
    scale = np.maximum(1 + np.sqrt(a**2 / np.maximum(je, 1e-3) + cst**2) * _gauss(rng, jpt), 0.0)
    return jets, scale


def b_tag(prt, jets, rng, det):
    """Hadron-flavour labels (5: b, 4: c, 0: light) of jets by Delta R < ``btag_dr`` matching to b/c hadrons
    above ``btag_hadron_pt``, then tagging with the flavour's efficiency inside ``btag_eta_max``:
    (label, tagged) per jet."""
    hf = _hadron_flavour(abs(prt.id))
    _, _, _, _, hpt, heta, hphi = _kin(prt.p)
    hsel = (hf > 0) & (hpt > det.btag_hadron_pt)
    had = ak.zip({"eta": heta[hsel], "phi": hphi[hsel], "fl": hf[hsel]})
    jj, hh = ak.unzip(ak.cartesian([ak.zip({"eta": jets.eta, "phi": jets.phi}), had], axis=1, nested=True))
    hdphi = (hh.phi - jj.phi + np.pi) % (2 * np.pi) - np.pi
    match = (hh.eta - jj.eta) ** 2 + hdphi**2 < det.btag_dr**2
    label = ak.fill_none(ak.max(ak.where(match, hh.fl, 0), axis=2), 0)
    p_tag = ak.where(label == 5, det.btag_eff_b, ak.where(label == 4, det.btag_eff_c, det.btag_eff_light))
    tagged = (_uniform(rng, jets.pt) < p_tag) & (abs(jets.eta) < det.btag_eta_max)
    return label, tagged


def missing_et(px, py, pt, jets, jet_scale, lep, rng, det):
    """Missing transverse momentum from the reconstructed leptons, all smeared jets and the soft term (the
    visible particles not in jets, smeared by ``met_soft_res`` sqrt(sum pT)): (MET_x, MET_y) per event, GeV."""
    soft_x = ak.sum(px, axis=1) - ak.sum(jets.px, axis=1)
    soft_y = ak.sum(py, axis=1) - ak.sum(jets.py, axis=1)
    soft_et = np.maximum(ak.sum(pt, axis=1) - ak.sum(jets.pt, axis=1), 0.0)
    sig = det.met_soft_res * np.sqrt(ak.to_numpy(soft_et))
    soft_x = ak.to_numpy(soft_x) + sig * rng.standard_normal(len(pt))
    soft_y = ak.to_numpy(soft_y) + sig * rng.standard_normal(len(pt))
    jet_x = ak.to_numpy(ak.sum(jets.pt * jet_scale * np.cos(jets.phi), axis=1))
    jet_y = ak.to_numpy(ak.sum(jets.pt * jet_scale * np.sin(jets.phi), axis=1))
    lep_x = ak.to_numpy(ak.sum(lep.PT * np.cos(lep.Phi), axis=1))
    lep_y = ak.to_numpy(ak.sum(lep.PT * np.sin(lep.Phi), axis=1))
    return -(soft_x + jet_x + lep_x), -(soft_y + jet_y + lep_y)


def _leptons(lep, flavour):
    sel = lep[lep.flavour == flavour]
    sel = sel[ak.argsort(sel.PT, axis=1, ascending=False)]
    return ak.zip({"PT": sel.PT, "Eta": sel.Eta, "Phi": sel.Phi, "Charge": ak.values_astype(sel.Charge, np.int32)})


def detector_response(prt, rng, det=Detector()):
    """Reconstructed Electron, Muon, Jet, MissingET collections (awkward records, Delphes branch names) from
    Pythia particles, in four named steps: ``reconstruct_leptons``, ``cluster_jets`` (of the visible particles
    minus the reconstructed leptons), ``b_tag``, ``missing_et``. The random draws happen in that order.

    Args:
        prt: awkward array of events of particles with id, status, p (px, py, pz, e) [GeV], as from ``nextBatch``.
        rng: numpy Generator of the block.
        det: the detector response parameters.
    """
    vis, px, py, pz, e, pt, eta, phi = _visible(prt, det)
    lep = reconstruct_leptons(vis, e, pt, eta, phi, rng, det)
    keep = ~ak.any(ak.local_index(pt, axis=1)[:, :, None] == lep.idx[:, None, :], axis=2)
    jets, jet_scale = cluster_jets(px[keep], py[keep], pz[keep], e[keep], rng, det)
    label, tagged = b_tag(prt, jets, rng, det)
    jet = ak.zip({"PT": jets.pt * jet_scale, "Eta": jets.eta, "Phi": jets.phi, "Mass": jets.m * jet_scale,
                  "BTag": ak.values_astype(tagged, np.int32), "Flavor": ak.values_astype(label, np.int32)})
    jet = jet[(jet.PT > det.jet_pt_min) & (abs(jet.Eta) < det.jet_eta_max)]
    jet = jet[ak.argsort(jet.PT, axis=1, ascending=False)]
    mex, mey = missing_et(px[keep], py[keep], pt[keep], jets, jet_scale, lep, rng, det)
    met = ak.zip({"MET": _one_per_event(np.hypot(mex, mey)), "Phi": _one_per_event(np.arctan2(mey, mex))})
    return {"Electron": _leptons(lep, 11), "Muon": _leptons(lep, 13), "Jet": jet, "MissingET": met}


# ------------------------------------------------------------------------------------- features / Delphes

DELPHES_BRANCHES = ("Electron.PT", "Electron.Eta", "Electron.Phi", "Electron.Charge", "Muon.PT", "Muon.Eta",
                    "Muon.Phi", "Muon.Charge", "Jet.PT", "Jet.Eta", "Jet.Phi", "Jet.Mass", "Jet.BTag",
                    "MissingET.MET", "MissingET.Phi")
M_E, M_MU = 0.000511, 0.10566


def features_from_objects(objs, sel=Selection(), path="objects"):
    """Apply the selection and compute the 8 features; returns a DataFrame with FEATURES, weight, process, njet,
    nbjet (one row per selected event).

    objs: mapping with awkward records Electron{PT,Eta,Phi,Charge}, Muon{...}, Jet{PT,Eta,Phi,Mass,BTag},
    MissingET{MET,Phi} and optionally Event{Weight, ProcessID}.
    """
    el, mu, jet, met = objs["Electron"], objs["Muon"], objs["Jet"], objs["MissingET"]
    el = el[el.PT > sel.el_pt_min]
    mu = mu[mu.PT > sel.mu_pt_min]
    lep = ak.concatenate([ak.zip({"PT": el.PT, "Eta": el.Eta, "Phi": el.Phi, "Charge": el.Charge,
                                  "M": ak.full_like(el.PT, M_E)}),
                          ak.zip({"PT": mu.PT, "Eta": mu.Eta, "Phi": mu.Phi, "Charge": mu.Charge,
                                  "M": ak.full_like(mu.PT, M_MU)})], axis=1)
    lep = lep[ak.argsort(lep.PT, axis=1, ascending=False)]
    jet = jet[(jet.PT > sel.jet_pt_min) & (abs(jet.Eta) < sel.jet_eta_max)]
    nb = ak.sum((jet.BTag % 2) == 1, axis=1)
    nj = ak.sum(jet.PT > sel.jet_count_pt_min, axis=1)
    two = ak.num(lep, axis=1) == 2
    lep2 = ak.pad_none(lep, 2, axis=1)
    os_ = ak.fill_none(lep2.Charge[:, 0] * lep2.Charge[:, 1] < 0, False)
    mask = ak.to_numpy(two & os_ & (nb >= sel.n_bjet_min))
    l0, l1 = lep2[mask][:, 0], lep2[mask][:, 1]
    m = met[mask][:, 0]
    f = physics.dilepton_features(*(ak.to_numpy(x) for x in (l0.PT, l0.Eta, l0.Phi, l0.M, l1.PT, l1.Eta, l1.Phi,
                                                             l1.M, m.MET, m.Phi)))
    df = pd.DataFrame(f)
    n = len(df)
    if "Event" in objs:
        ev = objs["Event"][mask]
        df["weight"] = ak.to_numpy(ev.Weight[:, 0]).astype(float) if "Weight" in ev.fields else np.ones(n)
        if "ProcessID" in ev.fields:
            codes = ak.to_numpy(ev.ProcessID[:, 0])
            df["process"] = pd.Categorical([PROCESS_CODES.get(int(c), str(int(c))) for c in codes],
                                           categories=list(PROCESS_CODES.values()))
        else:
            df["process"] = pd.Categorical(["unknown"] * n)
    else:
        df["weight"] = np.ones(n)
        df["process"] = pd.Categorical(["unknown"] * n)
    df["njet"] = ak.to_numpy(nj[mask]).astype(np.int32)
    df["nbjet"] = ak.to_numpy(nb[mask]).astype(np.int32)
    return df


def _branch_map(tree):
    """Delphes branch name -> key in the file (real Delphes nests them as ``Jet/Jet.PT``)."""
    out = {}
    for key in tree.keys(recursive=True):
        out.setdefault(key.split("/")[-1], key)
    return out


def read_delphes_objects(path, tree=TREE):
    """Read the Electron/Muon/Jet/MissingET (and Event) collections of a Delphes-style ROOT file."""
    import uproot

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    with uproot.open(path) as f:
        if tree not in f:
            raise KeyError(f"{path}: no tree {tree!r}; keys: {sorted(f.keys(cycle=False))}")
        t = f[tree]
        names = _branch_map(t)
        missing = [b for b in DELPHES_BRANCHES if b not in names]
        if missing:
            raise KeyError(f"{path}: tree {tree!r} lacks the Delphes branches {missing}")
        wanted = list(DELPHES_BRANCHES) + [b for b in ("Event.Weight", "Event.ProcessID") if b in names]
        arr = t.arrays([names[b] for b in wanted], library="ak")
    cols = {b: arr[names[b]] for b in wanted}
    objs = {}
    for coll in ("Electron", "Muon", "Jet", "MissingET", "Event"):
        fields = {b.split(".", 1)[1]: cols[b] for b in wanted if b.startswith(coll + ".")}
        if fields:
            objs[coll] = ak.zip(fields)
    if "Event" in objs and "Weight" in objs["Event"].fields:
        objs["Event"] = ak.zip({k: ak.values_astype(objs["Event"][k], np.float64 if k == "Weight" else np.int32)
                                for k in objs["Event"].fields})
    return objs


def read_delphes(path, tree=TREE, selection=Selection()):
    """Feature table (``features_from_objects``) of any Delphes ROOT file with the Delphes branches
    (``Electron.PT/Eta/Phi/Charge``, ``Muon.*``, ``Jet.PT/Eta/Phi/Mass/BTag``, ``MissingET.MET/Phi``)."""
    return features_from_objects(read_delphes_objects(path, tree), selection, path)


# --------------------------------------------------------------------------------------------- the sample

def _block_tables(result):
    """One block's trees (``Delphes``), selected feature rows (``features_from_objects``) and statistics."""
    objs = result["objects"]
    return runner.BlockTables({TREE: objs}, (TREE,), features_from_objects(objs), result["stats"])


def _summarize(entries):
    """Sample metadata from the manifest entries of all blocks (block order): counts and event-weighted
    cross-sections."""
    def _avg(key):
        vals = [e["stats"].get(key) for e in entries]
        return None if None in vals else float(np.average(vals, weights=[e["stats"]["events"] for e in entries]))

    return {"events_generated": int(sum(e["stats"]["events"] for e in entries)),
            "events_selected": int(sum(e["rows"] for e in entries)),
            "sigma_pb": _avg("sigma_pb"), "sigma_ttbar_pb": _avg("sigma_ttbar_pb"), "sigma_wt_pb": _avg("sigma_wt_pb")}


def make_sample(out, events: int = 20000, seed: int = 1, jobs: int = 1, mpi: bool = True, wt: bool = True,
                hadronisation: bool = True, job_index: int = 0, n_jobs: int = 1, block_size: int = 2000,
                progress: bool = True, detector: Detector | None = None, scheduler=None, cluster: str | None = None,
                workers: int | None = None, cluster_config=None, retries: int = 2, keep_parts: bool = False):
    """Generate the sample: ``out`` (Delphes-style tree) and ``out`` with ``_features`` (flat table, tree
    ``events``; GeV, radians). Returns the feature table's path.

    ``events`` generated events in seeded blocks of ``block_size`` (same ``seed`` and ``block_size`` -> the same
    events with any engine). Engines, part files, resume and errors: ``data_prep.runner.produce`` (``jobs`` local
    processes, or a Dask ``scheduler`` address / ``cluster`` kind with ``workers`` and ``cluster_config``).
    """
    out = runner.check_out(out)
    config = {"mpi": mpi, "wt": wt, "hadronisation": hadronisation,
              "detector": dataclasses.asdict(detector) if detector else {}}
    blocks = runner.make_blocks(events, seed, block_size, job_index, n_jobs)
    meta = {
        "sample": "dilepton", "paper": "Lebese & Ruan 2021, section 4.2", "seed": seed, "block_size": block_size,
        "job_index": job_index, "n_jobs": n_jobs, "mpi": mpi, "hadronisation": hadronisation, "wt": wt,
        "sigma_note": "LO Pythia cross-sections including W -> e/mu/tau nu branching ratios",
        "weight": "unweighted events, weight = 1; ttbar and Wt mixed by cross-section inside Pythia",
        "omissions": [] if wt else ["Wt (g b -> t W) not generated: ttbar only"],
        "detector": dataclasses.asdict(detector or Detector()), "selection": dataclasses.asdict(Selection()),
        "features": list(FEATURES), "mt_definition": "mT^2 = (ET_ll + MET)^2 - |pT_ll + MET|^2, "
                                                     "ET_ll = sqrt(pT_ll^2 + m_ll^2)",
        "dphi_definition": "unsigned, [0, pi]",
    }
    return runner.produce(runner.Sample.of("dilepton"), config, out, blocks, meta, progress=progress, jobs=jobs,
                          scheduler=scheduler, cluster=cluster, workers=workers, cluster_config=cluster_config,
                          retries=retries, keep_parts=keep_parts, desc="dilepton")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m data_prep.dilepton", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    runner.add_common_args(p, events=20000, block_size=2000, out="samples/dilepton.root")
    p.add_argument("--no-mpi", action="store_true", help="switch multiparton interactions off (x4 faster)")
    p.add_argument("--no-wt", action="store_true", help="ttbar only (no g b -> t W user process)")
    args = p.parse_args(argv)
    with runner.cli_errors(p.prog):
        path = make_sample(args.out, mpi=not args.no_mpi, wt=not args.no_wt, **runner.common_kwargs(args))
    meta = io.read_metadata(path)
    print(f"wrote {args.out} and {path}: {meta['events_generated']} events, {meta['events_selected']} selected, "
          f"{runner.rate_text(meta)}")


if __name__ == "__main__":
    main()
