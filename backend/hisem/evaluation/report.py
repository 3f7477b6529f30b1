"""One evaluation report: captions overall and per subset, the change flag, the change mask.

The field reports captions over the whole test set only. Half of LEVIR-CC's pairs are unchanged
and share five fixed sentences, so a model that flags change well and says one stock sentence for
every changed pair already scores about BLEU-4 64 / CIDEr 125. The report therefore also scores
the changed and unchanged subsets (split by the references' change flag) and the flag itself.
On LEVIR-CC the unchanged subset's CIDEr is 0 by construction: every unchanged pair has the same
five references, so each n-gram occurs in every pair's references and its IDF weight is log(1) = 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hisem.data.captions import is_no_change
from hisem.data.readers import PairRecord
from hisem.data.vocab import Vocab
from hisem.evaluation.captions import METRICS, empty_scores, score_captions
from hisem.evaluation.change import MaskMetrics, change_flag_metrics

SUBSETS = ("all", "changed", "unchanged")
FLAG_METRICS = ("accuracy", "precision", "recall")
MASK_METRICS = ("precision", "recall", "F1", "IoU", "cIoU")
TILE_FLAG_METRICS = ("false_alarm_rate", "miss_rate", *FLAG_METRICS)


def flags_from_captions(captions: Sequence[str]) -> list[int]:
    """The change flag a caption implies: 0 iff it is one of the no-change sentences."""
    return [0 if is_no_change(c) else 1 for c in captions]


def _caption_sections(
    records: Sequence[PairRecord], captions: Sequence[str], field_vocab: Vocab | None
) -> tuple[dict[str, Any], dict[str, int]]:
    scored = [i for i, r in enumerate(records) if r.captions]
    subsets = {
        "all": scored,
        "changed": [i for i in scored if records[i].changeflag == 1],
        "unchanged": [i for i in scored if records[i].changeflag == 0],
    }
    sections = {
        name: score_captions(
            [captions[i] for i in idx], [[" ".join(c) for c in records[i].captions] for i in idx], field_vocab
        )
        for name, idx in subsets.items()
    }
    return sections, {name: len(idx) for name, idx in subsets.items()}


def build_report(
    records: Sequence[PairRecord],
    captions: Sequence[str] | None = None,
    change_flags: Sequence[int] | None = None,
    mask_metrics: MaskMetrics | None = None,
    field_vocab: Vocab | None = None,
) -> dict[str, Any]:
    """Scores of predictions made for ``records`` (same order).

    ``captions``: one predicted caption per record, or None (mask-only models or data). Pairs
    without references are left out of the caption scores. ``change_flags``: predicted flags; by
    default derived from ``captions`` (0 iff a no-change sentence). ``mask_metrics``: an
    accumulator already fed with every predicted/true mask pair, or None. ``field_vocab``: score
    vocabulary ids as the field's code does (see ``hisem.evaluation.captions``).
    Caption sections are None without captions; a subset with no pairs has None values.
    """
    if captions is not None and len(captions) != len(records):
        raise ValueError(f"{len(captions)} captions for {len(records)} pairs")
    if change_flags is not None and len(change_flags) != len(records):
        raise ValueError(f"{len(change_flags)} change flags for {len(records)} pairs")
    report: dict[str, Any] = dict.fromkeys((*SUBSETS, "change_flag", "mask"))
    counts: dict[str, int] = {"pairs": len(records), **dict.fromkeys(SUBSETS, 0), "change_flag": 0, "mask": 0}
    if captions is not None and any(r.captions for r in records):
        sections, subset_counts = _caption_sections(records, captions, field_vocab)
        report.update(sections)
        counts.update(subset_counts)

    flag_source = "model" if change_flags is not None else "captions" if captions is not None else None
    if change_flags is None and captions is not None:
        change_flags = flags_from_captions(captions)
    known = [(i, r.changeflag) for i, r in enumerate(records) if r.changeflag is not None]
    if change_flags is not None and known:
        truth = [flag for _, flag in known]
        report["change_flag"] = change_flag_metrics(truth, [int(change_flags[i]) for i, _ in known])
        counts["change_flag"] = len(known)

    if mask_metrics is not None and mask_metrics.n:
        report["mask"] = mask_metrics.compute()
        counts["mask"] = mask_metrics.n
    report["n"] = counts
    report["protocol"] = {
        "caption_tokens": "words" if field_vocab is None else f"ids of a {len(field_vocab)}-word vocabulary",
        "normalisation": "lower-case, '.' removed, whitespace tokens",
        "change_flag_from": flag_source,
        "subsets_by": "reference changeflag",
    }
    return report


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}"


def _table(title: str, names: Sequence[str], rows: Sequence[tuple[str, int, dict[str, Any]]]) -> str:
    lines = [f"| {title} | n | " + " | ".join(names) + " |", "|---" * (len(names) + 2) + "|"]
    for label, n, values in rows:
        lines.append(f"| {label} | {n} | " + " | ".join(_pct(values.get(m)) for m in names) + " |")
    return "\n".join(lines)


def markdown_table(report: dict[str, Any]) -> str:
    """The report as Markdown tables, metrics x 100 as papers print them."""
    counts = report.get("n", {})
    blocks = []
    if any(report.get(s) for s in SUBSETS):
        rows = [(s, counts.get(s, 0), report.get(s) or empty_scores()) for s in SUBSETS]
        blocks.append(_table("captions", METRICS, rows))
    if report.get("change_flag"):
        flag = report["change_flag"]
        if "false_alarm_rate" in flag:
            blocks.append(_table("change flag per tile (changed = positive)", TILE_FLAG_METRICS,
                                 [("tiles", flag["n"], flag)]) + "\n\n" + _tile_counts(flag))
        else:
            blocks.append(_table("change flag (changed = positive)", FLAG_METRICS, [("all", flag["n"], flag)]))
    if report.get("mask"):
        mask = report["mask"]
        rows = [("model", mask["n"], mask)]
        rows += [(name, scores["n"], scores) for name, scores in (report.get("baselines") or {}).items()]
        blocks.append(_table("change mask (changed class)", MASK_METRICS, rows))
    if report.get("pairs"):
        blocks.append(_pairs_table(report["pairs"]))
    return "\n\n".join(blocks) if blocks else "(nothing to score)"


def _tile_counts(flag: dict[str, Any]) -> str:
    return (f"{flag['tiles']} tiles: {flag['false_alarms']} of {flag['unchanged_tiles']} unchanged tiles called "
            f"changed, {flag['misses']} of {flag['changed_tiles']} changed tiles (>= "
            f"{100 * flag['changed_tile_fraction']:g} % changed pixels) called unchanged, "
            f"{flag['minor_change_tiles']} with fewer changed pixels in neither rate.")


def _pairs_table(pairs: Sequence[dict[str, Any]]) -> str:
    """Per pair: tiles, tiles called changed, share of pixels marked, the most-changed tile's caption."""
    lines = ["| pair | tiles | called changed | marked % | caption (most-changed tile) |", "|---|---|---|---|---|"]
    for p in pairs:
        lines.append(f"| {p['name']} | {p['tiles']} | {p['tiles_called_changed']} | "
                     f"{_pct(p['marked_fraction'])} | {p['caption'] or '(empty)'} |")
    return "\n".join(lines)
