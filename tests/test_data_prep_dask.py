"""The Dask engine of data_prep: same events whatever the engine, worker deaths and failing tasks survived, an
interrupted sample resumed block by block, batch parts merged in block order, one-line errors.

Tiny parton-level ttbar samples (400 events in blocks of 100) keep Pythia's share to seconds; most of the time is
the start of the Dask worker processes.
"""

import json

import numpy as np
import pytest

pytest.importorskip("pythia8mc")
distributed = pytest.importorskip("distributed")

from gan4hep import io  # noqa: E402
from data_prep import cluster, merge, runner, ttbar_partons  # noqa: E402

EVENTS, BLOCK, SEED = 400, 100, 7
COMMON = ["--events", str(EVENTS), "--block-size", str(BLOCK), "--seed", str(SEED), "--no-progress"]


def _hash(path):
    return runner.table_hash(io.read_table(path))


def _features(out):
    return runner.features_path(out)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The sample made in-process (``--jobs 1``): its feature table hash and its event record."""
    out = tmp_path_factory.mktemp("ref") / "tp.root"
    path = ttbar_partons.make_sample(out, events=EVENTS, seed=SEED, block_size=BLOCK, progress=False)
    return _hash(path), io.read_table(out)


def _check_same(out, reference):
    ref_hash, ref_record = reference
    assert _hash(_features(out)) == ref_hash
    np.testing.assert_array_equal(io.read_table(out).to_numpy(), ref_record.to_numpy())
    meta = io.read_metadata(_features(out))
    assert [e["block"] for e in meta["manifest"]] == [0, 1, 2, 3]
    assert meta["events_generated"] == EVENTS
    assert not runner.parts_dir(out).exists()  # assembled, parts removed
    return meta


def test_local_cluster_two_workers_gives_the_jobs_1_table(reference, tmp_path):
    cfg = tmp_path / "cluster.yaml"
    cfg.write_text("local:\n  processes: false  # threads: cheap to start\n")
    out = tmp_path / "dask.root"
    ttbar_partons.main([*COMMON, "--out", str(out), "--cluster", "local", "--workers", "2",
                        "--cluster-config", str(cfg)])
    meta = _check_same(out, reference)
    assert meta["engine"] == "dask LocalCluster, 2 workers"
    assert meta["blocks_generated"] == [0, 1, 2, 3] and meta["blocks_reused"] == []


def test_killed_worker_loses_only_its_block(reference, tmp_path, monkeypatch):
    marker = tmp_path / "fault-fired"
    # the first task of block 2 kills its worker process (os._exit) mid-sample; the nanny restarts the worker
    # and the block is computed again
    monkeypatch.setenv(runner.FAULT_ENV, f"exit:2:{marker}")
    out = tmp_path / "killed.root"
    ttbar_partons.main([*COMMON, "--out", str(out), "--cluster", "local", "--workers", "2"])
    assert marker.exists()
    _check_same(out, reference)


def test_running_scheduler_and_a_failing_task_resubmitted(reference, tmp_path, monkeypatch):
    marker = tmp_path / "fault-fired"
    monkeypatch.setenv(runner.FAULT_ENV, f"raise:1:{marker}")  # block 1's first task raises
    out = tmp_path / "sched.root"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as lc:
        ttbar_partons.main([*COMMON, "--out", str(out), "--scheduler", lc.scheduler_address])
    assert marker.exists()
    meta = _check_same(out, reference)
    assert meta["engine"] == f"dask scheduler {lc.scheduler_address}"


def test_interrupted_sample_generates_only_the_missing_blocks(reference, tmp_path, monkeypatch):
    out = tmp_path / "resume.root"
    kwargs = dict(events=EVENTS, seed=SEED, block_size=BLOCK, progress=False)
    monkeypatch.setenv(runner.FAULT_ENV, f"raise:2:{tmp_path / 'fault-fired'}")
    with pytest.raises(runner.BlocksFailed, match="rerun the same command"):
        ttbar_partons.make_sample(out, retries=0, **kwargs)
    parts = runner.parts_dir(out)
    assert sorted(runner.read_manifest(parts)) == [0, 1, 3] and not _features(out).exists()
    # a damaged part fails its hash and is generated again
    damaged = parts / "block_000003_features.root"
    damaged.write_bytes(damaged.read_bytes()[:-100])
    monkeypatch.delenv(runner.FAULT_ENV)
    path = ttbar_partons.make_sample(out, **kwargs)
    meta = _check_same(out, reference)
    assert meta["blocks_generated"] == [2, 3] and meta["blocks_reused"] == [0, 1]
    assert meta["engine"] == "in-process" and path == _features(out)


def test_parts_of_another_run_are_refused(tmp_path):
    out = tmp_path / "x.root"
    ttbar_partons.make_sample(out, events=50, seed=1, block_size=50, progress=False, keep_parts=True)
    assert json.loads((runner.parts_dir(out) / "run.json").read_text())["seed"] == 1
    with pytest.raises(runner.InputError, match="another run.*seed"):
        ttbar_partons.make_sample(out, events=50, seed=2, block_size=50, progress=False)
    # the same run again: every block comes from the kept parts
    meta = io.read_metadata(ttbar_partons.make_sample(out, events=50, seed=1, block_size=50, progress=False))
    assert meta["blocks_generated"] == [] and meta["blocks_reused"] == [0]


def test_merge_puts_batch_parts_in_block_order(reference, tmp_path):
    parts = []
    for k in (1, 0):  # given in the wrong order on purpose
        part = tmp_path / f"part{k}.root"
        ttbar_partons.make_sample(part, events=EVENTS, seed=SEED, block_size=BLOCK, job_index=k, n_jobs=2,
                                  progress=False)
        parts.append(part)
    merged = merge.merge(parts, tmp_path / "all.root")
    assert _hash(merged) == reference[0]
    np.testing.assert_array_equal(io.read_table(tmp_path / "all.root").to_numpy(), reference[1].to_numpy())
    meta = io.read_metadata(merged)
    assert meta["blocks"] == [0, 1, 2, 3] and meta["events_generated"] == EVENTS
    with pytest.raises(ValueError, match="block 1 is in both"):
        merge.merge([parts[0], parts[0]], tmp_path / "dup.root")


@pytest.mark.parametrize("args, message", [
    (["--cluster", "pbs"], "unknown --cluster 'pbs'"),
    (["--cluster", "slurm", "--workers", "2", "--cluster-config", "MISSING"], "cannot read --cluster-config"),
    (["--cluster", "slurm", "--workers", "2", "--cluster-config", "BADSECTION"], "unknown section(s) ['slurmm']"),
    (["--cluster", "slurm"], "--cluster slurm needs --workers"),
    (["--scheduler", "tcp://127.0.0.1:1"], "cannot reach the Dask scheduler at 'tcp://127.0.0.1:1'"),
    (["--scheduler", "tcp://127.0.0.1:1", "--jobs", "2"], "--jobs is for local processes"),
])
def test_bad_engine_input_gives_one_line_error(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", "1s")
    (tmp_path / "bad.yaml").write_text("slurmm:\n  cores: 1\n")
    args = [{"MISSING": str(tmp_path / "nope.yaml"), "BADSECTION": str(tmp_path / "bad.yaml")}.get(a, a)
            for a in args]
    out = tmp_path / "e.root"
    with pytest.raises(SystemExit) as exc:
        ttbar_partons.main([*COMMON, "--out", str(out), *args])
    assert exc.value.code in (1, 2)
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not runner.parts_dir(out).exists() and not out.exists()


def test_cluster_config_reaches_the_batch_job_script(tmp_path, capsys):
    pytest.importorskip("dask_jobqueue")
    cfg = tmp_path / "cluster.yaml"
    cfg.write_text("slurm:\n  cores: 1\n  memory: 1GB\n  queue: physics\n  walltime: '02:00:00'\n"
                   "htcondor:\n  cores: 1\n  memory: 1GB\n  disk: 3GB\n")
    cluster.main(["--cluster", "slurm", "--cluster-config", str(cfg), "--workers", "4"])
    script = capsys.readouterr().out
    assert "#SBATCH -p physics" in script and "#SBATCH -t 02:00:00" in script and "4 jobs of 1 worker" in script
    cluster.main(["--cluster", "htcondor", "--cluster-config", str(cfg)])
    assert "MY.DaskWorkerDisk = 3000000000" in capsys.readouterr().out
    # the documented example parses for every kind
    from pathlib import Path

    example = Path(cluster.__file__).with_name("cluster.yaml")
    for kind in cluster.KINDS:
        assert cluster.load_config(example, kind)
