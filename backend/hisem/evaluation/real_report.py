"""`make eval-real`: the evaluator on every real data set, JSON reports and docs/real-imagery.md.

    python -m hisem.evaluation.real_report [--model ID|FOLDER|default] [--data-root ../shared/data]
        [--out build/eval-real] [--doc docs/real-imagery.md]

Each set runs at its stated GSD through ``engine_eval`` (the `hisem caption` path on ONNX Runtime),
one engine loaded for all of them. The evaluation sets are never training data (see the data README).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hisem.data.readers import read_dataset
from hisem.engine import OrtRunner, resolve_model
from hisem.engine.registry import ModelInfo
from hisem.evaluation.engine_eval import EngineSettings, evaluate_engine

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[3]  # evaluation -> hisem -> backend -> repository
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "data"


@dataclass(frozen=True)
class RealSet:
    """One real data set: its folder under the data root and the GSD its README states."""

    name: str
    folder: str
    gsd: float | None  # None: georeferenced files, read as they are
    split: str | None = None
    gsd_note: str = ""


REAL_SETS = (
    RealSet("dsifn", "dsifn", 0.5, gsd_note="not stated, ~0.5"),
    RealSet("airchange", "real/airchange", 1.5),
    RealSet("egy-bcd", "real/egy-bcd", 0.25, gsd_note="~0.25"),
    RealSet("levir-cc", "levir-cc", 0.5, split="train"),  # the three pairs stored here are train entries
    RealSet("joplin-chips", "real/joplin/chips", None, gsd_note="georeferenced, 0.6 x 0.67"),
)


def run_suite(model: ModelInfo, data_root: Path, out_dir: Path, progress: bool = True) -> dict[str, dict[str, Any]]:
    """Evaluate ``model`` on every set found under ``data_root``; one JSON report per set in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    runner = OrtRunner(model.path)
    reports: dict[str, dict[str, Any]] = {}
    for real in REAL_SETS:
        path = data_root / real.folder
        if not path.exists():
            log.warning("%s: not found, skipped", path)
            continue
        t0 = time.perf_counter()
        report = evaluate_engine(model, read_dataset(path, split=real.split),
                                 EngineSettings(data_gsd=real.gsd, progress=progress), runner=runner)
        report["inputs"].update({"set": real.name, "data": str(path), "split": real.split,
                                 "seconds": round(time.perf_counter() - t0, 1)})
        (out_dir / f"{real.name}.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
        reports[real.name] = report
        log.info("%s: %d pairs in %.0f s", real.name, report["n"]["pairs"], report["inputs"]["seconds"])
    return reports


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.3f}"


def _rate(flag: dict[str, Any], rate: str, hits: str, of: str) -> str:
    return "–" if flag.get(rate) is None else f"{flag[rate]:.3f} ({flag[hits]} of {flag[of]})"


def _summary_rows(reports: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The table's figures per labelled set (also written as summary.json)."""
    rows = []
    for real in REAL_SETS:
        report = reports.get(real.name)
        if report is None or not report.get("mask"):
            continue
        mask, base, flag = report["mask"], report["baselines"], report["change_flag"]
        best = max(base["differencing"]["F1"] or 0.0, base["all_changed"]["F1"] or 0.0)
        rows.append({
            "set": real.name, "gsd_m": real.gsd, "pairs": report["n"]["pairs"], "tiles": report["n"]["tiles"],
            "model_F1": mask["F1"], "model_IoU": mask["IoU"], "model_cIoU": mask["cIoU"],
            "differencing_F1": base["differencing"]["F1"], "all_changed_F1": base["all_changed"]["F1"],
            "F1_over_best_baseline": None if mask["F1"] is None else mask["F1"] - best,
            "false_alarm_rate": flag["false_alarm_rate"], "miss_rate": flag["miss_rate"],
            "false_alarms": flag["false_alarms"], "unchanged_tiles": flag["unchanged_tiles"],
            "misses": flag["misses"], "changed_tiles": flag["changed_tiles"],
        })
    return rows


def _mask_table(reports: dict[str, dict[str, Any]]) -> str:
    gsd_text = {r.name: r.gsd_note or f"{r.gsd:g}" for r in REAL_SETS}
    lines = [
        "| set | GSD m | pairs | tiles | model F1 | model IoU | model cIoU | differencing F1 | all-changed F1 "
        "| F1 − best baseline | false_alarm_rate | miss_rate |",
        "|---" * 12 + "|",
    ]
    for row in _summary_rows(reports):
        flag = reports[row["set"]]["change_flag"]
        lines.append(
            f"| {row['set']} | {gsd_text[row['set']]} | {row['pairs']} | {row['tiles']} | {_num(row['model_F1'])} | "
            f"{_num(row['model_IoU'])} | {_num(row['model_cIoU'])} | {_num(row['differencing_F1'])} | "
            f"{_num(row['all_changed_F1'])} | {_signed(row['F1_over_best_baseline'])} | "
            f"{_rate(flag, 'false_alarm_rate', 'false_alarms', 'unchanged_tiles')} | "
            f"{_rate(flag, 'miss_rate', 'misses', 'changed_tiles')} |"
        )
    return "\n".join(lines)


def _levir_section(report: dict[str, Any] | None) -> str:
    if report is None:
        return "LEVIR-CC pairs not found."
    lines = ["| pair | model caption | P(changed) | pixels marked | the five references |", "|---|---|---|---|---|"]
    for p in report["pairs"]:
        refs = "<br>".join(p.get("references", []))
        lines.append(f"| {p['name']} | {p['caption'] or '(empty)'} | {p['change_prob']:.3f} | "
                     f"{100 * p['marked_fraction']:.1f} % | {refs} |")
    return "\n".join(lines)


def _joplin_section(report: dict[str, Any] | None) -> str:
    if report is None:
        return "Joplin chips not found."
    lines = ["| chip | tiles | called changed | pixels marked | captions of the tiles called changed (count) |",
             "|---|---|---|---|---|"]
    for p in report["pairs"]:
        counts = Counter(t["caption"] for t in p["tile_results"] if t["changed"])
        captions = "<br>".join(f"{c or '(empty)'} ({n})" for c, n in counts.most_common(4)) or "–"
        if len(counts) > 4:
            captions += f"<br>… {len(counts) - 4} more"
        lines.append(f"| {p['name']} | {p['tiles']} | {p['tiles_called_changed']} | "
                     f"{100 * p['marked_fraction']:.1f} % | {captions} |")
    return "\n".join(lines)


def render(model: ModelInfo, reports: dict[str, dict[str, Any]], seconds: float, command: str,
           out_dir: str = "build/eval-real") -> str:
    """docs/real-imagery.md."""
    any_report = next(iter(reports.values()), {"inputs": {}})
    inputs = any_report["inputs"]
    training = model.card.get("training_data") or {}
    trained_on = ", ".join(f"{k}: {v}" for k, v in training.items()) or "not stated in model.json"
    return f"""# Real imagery: what the model does on real pairs

Generated by `{command}` ({time.strftime("%Y-%m-%d")}); do not edit by hand, re-run it.

**Model: `{model.id}`** (training data — {trained_on}). Engine: ONNX Runtime fp32 on
{", ".join(inputs.get("providers", []))}, exactly the path of `hisem caption`: pairs resampled to
{model.gsd_m:g} m, {model.tile_size} px tiles with {inputs.get("overlap_px")} px overlap, stitched
probabilities; tile flag and pixels at threshold {inputs.get("threshold")}. The whole run took
{seconds / 60:.1f} min on this machine ({os.cpu_count()} CPU cores). JSON reports:
`{out_dir}/<set>.json`, the table's figures in `{out_dir}/summary.json`.

## Change masks and tile flags

{_mask_table(reports)}

- Mask figures over the pixels of the whole set at the **label's own resolution**: the stitched
  probabilities are resampled (bilinear) back onto the label's pixels and thresholded. F1 and cIoU
  from summed pixel counts; IoU is the mean of per-pair IoUs. Fractions, not percentages.
- **differencing**: grey |A − B|, Otsu threshold per pair. **all-changed**: every pixel changed.
  Both at the label's resolution on the stored images.
- **false_alarm_rate**: tiles (of `hisem caption`'s grid) without a single changed label pixel that the
  model calls changed (P(changed) ≥ threshold); **miss_rate**: tiles with ≥ 1 % changed pixels called
  unchanged. A set whose pairs are all changed everywhere has no unchanged tile (–).
- EGY-BCD pairs cover 64 m, less than one tile at {model.gsd_m:g} m: they are mirror-padded to one tile
  (`hisem caption` refuses a mostly empty tile); the padding is not scored. AirChange's `Archieve`
  before image is an old grey photo, given to the model as grey RGB.

## LEVIR-CC: the model's captions and the five references

{_levir_section(reports.get("levir-cc"))}

## Joplin tornado (22 May 2011): captions per chip

No labels; the destroyed blocks are plain to the eye in all four chips. More than half of chips 1 and 3
is black fill without a nodata flag, which `hisem caption` reads as image (unchanged black), so their
share of pixels marked is over the whole chip.

{_joplin_section(reports.get("joplin-chips"))}
"""


def fill_card(card: Path, reports: dict[str, dict[str, Any]]) -> None:
    """Put the mask/flag table into the model's own MODEL_CARD.md (its real-imagery section), if it has one."""
    from hisem.modelcard import fill_real_section

    if card.is_file() and _summary_rows(reports):
        text = card.read_text(encoding="utf-8")
        table = f"{_mask_table(reports)}\n\nCaptions on LEVIR-CC and the Joplin chips: docs/real-imagery.md."
        card.write_text(fill_real_section(text, table), encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hisem.evaluation.real_report", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="default", help="installed model id or folder; 'default': the default model")
    p.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT, help="the shared data folder")
    p.add_argument("--out", type=Path, default=REPO / "build" / "eval-real", help="folder for the JSON reports")
    p.add_argument("--doc", type=Path, default=REPO / "docs" / "real-imagery.md", help="Markdown to write")
    p.add_argument("--command", default="make eval-real", help="how the doc says it was made")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("hisem.geo.grid").setLevel(logging.ERROR)  # one upsampling warning per AirChange pair
    t0 = time.perf_counter()
    model = resolve_model(None if args.model == "default" else args.model)
    reports = run_suite(model, args.data_root, args.out, progress=not args.no_progress)
    if not reports:
        sys.stderr.write(f"no real data set found under {args.data_root}\n")
        return 1
    seconds = time.perf_counter() - t0
    (args.out / "summary.json").write_text(json.dumps(
        {"model": model.id, "seconds": round(seconds, 1), "sets": _summary_rows(reports)}, indent=2), encoding="utf-8")
    args.doc.parent.mkdir(parents=True, exist_ok=True)
    out_text = os.path.relpath(args.out, REPO) if args.out.resolve().is_relative_to(REPO) else str(args.out)
    args.doc.write_text(render(model, reports, seconds, args.command, out_text), encoding="utf-8")
    fill_card(model.path / "MODEL_CARD.md", reports)
    sys.stdout.write(f"{_mask_table(reports)}\nwrote {args.doc} and {args.out}/ in {seconds / 60:.1f} min\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
