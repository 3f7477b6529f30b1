"""`torchrun --nproc_per_node 2 hisem train`: DDP on CPU (gloo) keeps the replicas' weights in sync."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_processes_stay_in_sync(synth_small: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [
        str(torchrun), "--nnodes", "1", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        "-m", "hisem.cli", "train", "--data", str(synth_small), "--preset", "tiny", "--out", str(run),
        "--epochs", "2", "--batch-size", "16", "--lr", "1e-3", "--max-steps", "4", "--device", "cpu",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sync = json.loads((run / "ddp-sync.json").read_text())
    assert sync["world_size"] == 2
    assert len(sync["checksums"]) == 2
    assert sync["in_sync"] and sync["checksums"][0] == sync["checksums"][1]
    # --max-steps 4 is a cap on the whole run: 3 steps (48 pairs per rank) + 1; rank 0 writes the history
    assert len((run / "history.jsonl").read_text().splitlines()) == 2
