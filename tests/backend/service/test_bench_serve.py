"""`hisem bench serve` runs end to end and writes the figures the issue names."""

from __future__ import annotations

import json
from pathlib import Path

from hisem.cli import main as hisem_main


def test_bench_serve_writes_its_figures(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "serve.json"
    assert hisem_main(["bench", "serve", "--model", str(tiny_model), "--size-m", "64", "--clients", "2",
                       "--repeats", "1", "-o", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["tiles"] == 9 and figures["clients"] == 2
    assert figures["http_job_s"] > 0 and figures["caption_cli_s"] > 0
    assert figures["overhead_ratio"] == figures["http_job_s"] / figures["caption_cli_s"]
    assert figures["jobs_per_min"] > 0
    assert figures["peak_rss_mb"]["server"] > 0 and figures["peak_rss_mb"]["workers_max"] > 0
