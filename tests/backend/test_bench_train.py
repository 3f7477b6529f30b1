"""`hisem bench train` runs and writes its figures (values are measured, never asserted here)."""

from __future__ import annotations

import json
from pathlib import Path

from hisem.cli import main as hisem_main


def test_bench_train_writes_figures(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench.json"
    assert hisem_main(["bench", "train", "--presets", "tiny", "--seconds", "0.05", "--batch-size", "2",
                       "-o", str(out)]) == 0
    figures = json.loads(out.read_text())
    tiny = figures["presets"]["tiny"]
    assert {"train_pairs_per_s", "forward_ms_batch1", "forward_ms_batch2", "parameters_m"} <= set(tiny)
    assert tiny["train_pairs_per_s"] > 0 and figures["peak_rss_mb"] > 0
    assert "| tiny |" in capsys.readouterr().out
