"""`recsys train` under torchrun: two CPU processes (gloo) give the single-process result."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from recsys.db import movielens
from recsys.db.engine import make_engine
from recsys.db.migrate import upgrade
from recsys.jobs.model_versions import list_versions

TRAIN = ["train", "--epochs", "3", "--promote", "never", "--seed", "7"]


@pytest.mark.slow
def test_two_gloo_ranks_match_one_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'recsys.db'}"
    upgrade(url)
    engine = make_engine(url)
    movielens.load(engine, 50_000)
    env = {
        **os.environ,
        "RECSYS_DATABASE_URL": url,
        "RECSYS_ARTIFACT_DIR": str(tmp_path / "a"),
        "RECSYS_DEVICE": "cpu",
    }

    single = subprocess.run(
        [sys.executable, "-m", "recsys", *TRAIN],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr
    parallel = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "recsys",
            *TRAIN,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert parallel.returncode == 0, parallel.stdout[-4000:] + parallel.stderr

    versions = list_versions(engine)
    engine.dispose()
    assert len(versions) == 2  # rank 0 alone registered the parallel run
    data_parallel, one_process = versions
    assert data_parallel.status == one_process.status == "ready"
    assert data_parallel.metrics["rmse"] == pytest.approx(one_process.metrics["rmse"], abs=0.005)
    assert data_parallel.metrics["n_train"] == one_process.metrics["n_train"]
    # One rank reports, once for the fit that chooses and once for the refit.
    assert parallel.stdout.count("event=epoch_end epoch=2") == 2
