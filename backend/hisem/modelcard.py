"""The model card: what a model was trained on and how it scores, on synthetic AND real imagery.

``hisem card`` measures everything it writes: the held-out synthetic test split (a seed never used in
training), the real DSIFN pairs (mask scores next to the image-differencing baseline on the same
pairs) and the real LEVIR-CC pairs (its captions next to their references). It writes MODEL_CARD.md,
metrics.json, and ``release.pt``: the checkpoint with the held-out metrics and the data description
in its ``extra``, which `hisem export` copies into the ONNX metadata.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hisem.data.readers import read_dataset
from hisem.evaluation.model_eval import evaluate_model
from hisem.evaluation.predict import resolve_checkpoint
from hisem.evaluation.report import markdown_table

log = logging.getLogger(__name__)

# Targets of the shipped default model on held-out synthetic pairs (issue "default model").
TARGETS = {"change-flag accuracy": 0.97, "BLEU-4 on changed pairs": 0.55, "mask F1": 0.80}


@dataclass
class CardInputs:
    model: str  # run folder or checkpoint
    model_id: str
    heldout: Path  # synthetic folder with a test split from a seed never used in training
    real_data: Path  # ../shared/data: levir-cc/ (the other real sets: make eval-real)
    out_dir: Path  # where MODEL_CARD.md and metrics.json go
    device: str = "cpu"
    batch_size: int = 32


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def _target_rows(heldout: dict[str, Any]) -> list[tuple[str, float | None, float]]:
    changed = heldout.get("changed") or {}
    values = {
        "change-flag accuracy": (heldout.get("change_flag") or {}).get("accuracy"),
        "BLEU-4 on changed pairs": changed.get("BLEU-4"),
        "mask F1": (heldout.get("mask") or {}).get("F1"),
    }
    return [(name, values[name], target) for name, target in TARGETS.items()]


def measure(inputs: CardInputs) -> dict[str, Any]:
    """Every figure of the card, measured now."""
    heldout_records = read_dataset(inputs.heldout, split="test")
    heldout, _ = evaluate_model(inputs.model, heldout_records, inputs.batch_size, inputs.device)
    levir = [r for r in read_dataset(inputs.real_data / "levir-cc") if r.before is not None and r.after is not None]
    _, levir_preds = evaluate_model(inputs.model, levir, inputs.batch_size, inputs.device)
    return {
        "model_id": inputs.model_id,
        "heldout_synthetic": heldout,
        "levir_cc_pairs": [
            {
                "name": r.name,
                "caption": caption,
                "p_changed": prob,
                "references": [" ".join(tokens) for tokens in r.captions],
            }
            for r, caption, prob in zip(levir, levir_preds.captions or [], levir_preds.change_prob, strict=True)
        ],
    }


def _sources(data: Path) -> tuple[str, Counter[str]]:
    """The training set's description and its train pairs counted by source (synthetic / real kinds)."""
    captions = json.loads((data / "LevirCCcaptions.json").read_text(encoding="utf-8"))
    counts = Counter(i.get("source", "synthetic") for i in captions["images"] if i["split"] == "train")
    return str(captions.get("dataset", "")), counts


SOURCE_WORDS = {
    "synthetic": "fully synthetic scenes",
    "same": "real unchanged pairs (one real crop, two independent real-looking acquisitions)",
    "objects": "synthetic change objects composited on real ground",
    "buildings": "real buildings removed or added by their footprints",
}


def _training_section(run_dir: Path) -> str:
    options_path, history_path = run_dir / "options.json", run_dir / "history.jsonl"
    if not options_path.exists():
        return "Training options not found next to the checkpoint."
    options = json.loads(options_path.read_text(encoding="utf-8"))
    history = [json.loads(line) for line in history_path.read_text(encoding="utf-8").splitlines()] \
        if history_path.exists() else []
    data = Path(options["data"])
    described, counts = _sources(data)
    seconds = sum(h.get("train_seconds", 0.0) for h in history)
    mix = "; ".join(f"{n:,} {SOURCE_WORDS.get(k, k)}" for k, n in counts.most_common())
    lines = [
        f"- Data: {sum(counts.values()):,} training pairs from `hisem synth` (folder `{data.name}`: {described}), "
        f"LEVIR-CC layout, 5 captions and a change mask per pair: {mix}. Validation on its `val` split.",
        f"- Recipe: `hisem train --preset {options['preset']}` — {options['epochs']} epochs, batch "
        f"{options['batch_size']}, Adam lr {options['lr']}, seed {options['seed']}, feature cache "
        f"`{options.get('cache_features', 'auto')}`; the HiSem release's router warm-up/ramp and "
        f"teacher forcing; best epoch by {SELECTION.get(options.get('select') or 'sm')}.",
        f"- Training time: {seconds / 60:.0f} min of training steps on the machine that trained it "
        f"(epochs run: {len(history)}).",
    ]
    if options.get("init"):  # a fine-tune: name the model it started from
        lines.insert(0, f"- Fine-tuned from `{Path(options['init']).name}` (`hisem train --init`; learning rate "
                        f"{options.get('lr_schedule', 'constant')}, backbone "
                        f"{'frozen' if options.get('train_backbone') is None else 'partly trained'}).")
    return "\n".join(lines)


SELECTION = {"sm": "validation S*m", "bleu4": "validation BLEU-4"}  # hisem train --select


def _vocabulary_line(model: str) -> str:
    vocab = _payload(model)["extra"].get("vocabulary") or {}
    if str(vocab.get("source", "")).startswith("parent model"):
        extended = (f"extended by {vocab.get('added_words', 0)} words of the new data (--extend-vocab)"
                    if vocab.get("extended") else
                    f"{vocab.get('unknown_words', 0)} words of the new data read as <UNK>")
        return f"- Vocabulary: the {vocab['source']}'s, {extended}."
    count = vocab.get("min_count", 5)
    return f"- Vocabulary: words seen at least {count} times in the training captions (all of them LEVIR-CC words)."


def _calibration_section(model: str) -> str:
    cal = _payload(model)["extra"].get("calibration")
    if not cal:
        return "- Thresholds: P(changed) ≥ 0.5 for the tile flag and for mask pixels (not calibrated)."
    return (
        f"- Operating point (`hisem calibrate` on {cal['pairs']} `{cal['split']}` pairs of the training set, never an "
        f"evaluation set): tile flag at P(changed) ≥ {cal['flag_threshold']:.3f} (accuracy "
        f"{_pct(cal['flag_accuracy'])} vs {_pct(cal['flag_accuracy_at_half'])} at 0.5), mask pixels at "
        f"≥ {cal['mask_threshold']:.3f} (F1 {_pct(cal['mask_f1'])} vs {_pct(cal['mask_f1_at_half'])} at 0.5), "
        "folded into the graphs so that every client's 0.5 is this point."
    )


REAL_START, REAL_END = "<!-- real-imagery:start -->", "<!-- real-imagery:end -->"


def fill_real_section(card: str, table: str) -> str:
    """The card with its real-imagery section replaced by ``table`` (written by `make eval-real`)."""
    head, _, rest = card.partition(REAL_START)
    _, _, tail = rest.partition(REAL_END)
    if not rest:
        return card
    return f"{head}{REAL_START}\n{table.strip()}\n{REAL_END}{tail}"


def render(inputs: CardInputs, figures: dict[str, Any]) -> str:
    """MODEL_CARD.md text."""
    heldout = figures["heldout_synthetic"]
    run_dir = resolve_checkpoint(inputs.model).parent
    targets = "\n".join(
        f"| {name} | {_pct(value)} | {_pct(target)} | {'met' if value is not None and value >= target else 'MISSED'} |"
        for name, value, target in _target_rows(heldout)
    )
    levir_rows = "\n".join(
        f"| {p['name']} | {p['caption'] or '(empty)'} | {_pct(p['p_changed'])} | {'<br>'.join(p['references'])} |"
        for p in figures["levir_cc_pairs"]
    )
    cfg = _config(inputs.model)
    enc = cfg["encoder"]
    backbone = {"lite": "EfficientNet-Lite0 with ImageNet weights", "tiny": "a small CNN trained from scratch",
                "paper": "CLIP ViT-B/16"}.get(enc["name"], enc["name"])
    frozen = "frozen" if enc["freeze"] else "trained"
    options = json.loads((run_dir / "options.json").read_text(encoding="utf-8")) \
        if (run_dir / "options.json").exists() else {}
    counts = _sources(Path(options["data"]))[1] if options else Counter()
    real_share = 1 - counts.get("synthetic", 0) / max(sum(counts.values()), 1)
    learned = (f"**Trained on synthetic change, {100 * real_share:.0f} % of it on real single-date imagery; no real "
               "bi-temporal pair.**" if real_share > 0 else "**Trained on synthetic scenes only.**")
    return f"""# {inputs.model_id}

{learned} HiSem (BDAM + HASD) change captioning with the `{enc["name"]}` encoder ({backbone},
{frozen}; width {cfg["dim"]}, {cfg["bdam"]["layers"]} BDAM layers), trained by this project's own code
on its bi-temporal generator (`hisem synth`, docs/training.md). The real imagery it learned from is
training material only (../shared/data/README.md): the Joplin pre- and post-event tiles (0.6 m, with
2,823 building footprints used on the pre-event tiles) and the SpaceNet Paris/Atlanta/Las Vegas
singles, resampled to 0.5 m. No evaluation set (DSIFN, AirChange, EGY-BCD, the LEVIR-CC images) was
trained on or used to choose anything.

## Training

{_training_section(run_dir)}
{_calibration_section(inputs.model)}
- Input: two RGB tiles of {enc["image_size"]} × {enc["image_size"]} px at 0.5 m/px (raw 0–255; the exported
  ONNX graph normalises them itself).
{_vocabulary_line(inputs.model)}

## Held-out synthetic test set

{len(read_dataset(inputs.heldout, split="test")):,} pairs of `{inputs.heldout.name}`, fully synthetic, generated with a
seed never used in training; half of them unchanged.

{markdown_table(heldout)}

### Targets

| measure | this model | target | |
|---|---|---|---|
{targets}

## Real imagery

Measured by `make eval-real` on the installed model (ONNX Runtime, the `hisem caption` path), each set
at its stated GSD resampled to 0.5 m, next to the two baselines; see docs/real-imagery.md.

{REAL_START}
(not measured yet: run `make eval-real MODEL={inputs.model_id}`)
{REAL_END}

### LEVIR-CC (the 3 real pairs available here, PyTorch)

PyTorch greedy decoding as in training validation, without the engine's repetition blocking (docs/engine.md):
the product's own captions of these pairs are in docs/real-imagery.md.

| pair | this model's caption | P(changed) | LEVIR-CC references |
|---|---|---|---|
{levir_rows}

## Limits

- Change learnt from simulation: real buildings removed/added by their footprints (Joplin, Missouri,
  suburban houses), synthetic buildings, roads, trees, ponds, fields and parking lots pasted on real
  ground, and fully synthetic towns. Real change of other kinds (construction sites, large
  earthworks, crops, new cities in desert) was never shown to it as such.
- Real backgrounds come from a handful of US/European scenes: other cities, climates and sensors
  are out of its training distribution.
- Captions are LEVIR-CC-style English from a ~{_vocab_size(inputs.model)}-word vocabulary.

Scores: pycocoevalcap on words (see docs/evaluation.md); masks: precision/recall/F1/cIoU over summed
pixel counts, IoU = mean per image. Regenerate with `make train-default`.
"""


def _payload(model: str) -> dict[str, Any]:
    return torch.load(resolve_checkpoint(model), map_location="cpu", weights_only=True)


def _vocab_size(model: str) -> int:
    return len(_payload(model)["vocab"])


def _config(model: str) -> dict[str, Any]:
    return _payload(model)["config"]


def write_card(inputs: CardInputs) -> dict[str, Any]:
    """Measure, then write MODEL_CARD.md, metrics.json and RUN/release.pt; returns the figures."""
    figures = measure(inputs)
    inputs.out_dir.mkdir(parents=True, exist_ok=True)
    (inputs.out_dir / "metrics.json").write_text(json.dumps(figures, indent=2), encoding="utf-8")
    (inputs.out_dir / "MODEL_CARD.md").write_text(render(inputs, figures), encoding="utf-8")
    checkpoint = resolve_checkpoint(inputs.model)
    payload = torch.load(checkpoint, map_location="cpu", weights_only=True)
    heldout = figures["heldout_synthetic"]
    payload["extra"]["held_out_metrics"] = {
        "heldout_synthetic_flag_accuracy": (heldout.get("change_flag") or {}).get("accuracy"),
        **{f"heldout_synthetic_{k}": v for k, v in (heldout.get("all") or {}).items()},
        **{f"heldout_synthetic_changed_{k}": v for k, v in (heldout.get("changed") or {}).items()},
        **{f"heldout_synthetic_mask_{k}": v for k, v in (heldout.get("mask") or {}).items() if k in ("F1", "IoU")},
    }
    run_dir = checkpoint.parent
    options = json.loads((run_dir / "options.json").read_text(encoding="utf-8")) \
        if (run_dir / "options.json").exists() else {}
    described, counts = _sources(Path(options["data"])) if options else ("", Counter())
    payload["extra"]["training_data"] = {
        "dataset": described or "synthetic (hisem synth)", "pairs_by_source": dict(counts),
        "real_imagery": "single-date backgrounds only" if set(counts) - {"synthetic"} else False,
    }
    torch.save(payload, checkpoint.parent / "release.pt")
    log.info("model card written to %s", inputs.out_dir / "MODEL_CARD.md")
    return figures
