"""Caption and change metrics, the report, and `hisem evaluate --predictions` end to end.

The reference point is PromptCC's published output on the LEVIR-CC test split: our evaluator must
equal direct pycocoevalcap calls on it, and land near the published numbers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from hisem import cli
from hisem.data.readers import PairRecord, read_dataset
from hisem.data.vocab import Vocab
from hisem.evaluation.baseline import difference_baseline
from hisem.evaluation.captions import METRICS, score_captions
from hisem.evaluation.change import MaskMetrics, change_flag_metrics
from hisem.evaluation.report import build_report, flags_from_captions, markdown_table

LEVIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "levir-cc"
PUBLISHED_PROMPTCC = {"BLEU-4": 0.635, "METEOR": 0.388, "ROUGE-L": 0.737, "CIDEr": 1.364}


@pytest.fixture(scope="module")
def meteor() -> Any:
    """A METEOR process of the test's own for the direct calls (starting one takes ~9 s)."""
    from pycocoevalcap.meteor.meteor import Meteor

    return Meteor()


def direct_scores(meteor: Any, predictions: list[str], references: list[list[str]]) -> dict[str, float]:
    """pycocoevalcap's four scorers called directly on the given strings."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    gts = dict(enumerate(references))
    res = {i: [p] for i, p in enumerate(predictions)}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    scores = {f"BLEU-{i + 1}": b for i, b in enumerate(bleu)}
    scores["METEOR"], _ = meteor.compute_score(gts, res)
    scores["ROUGE-L"], _ = Rouge().compute_score(gts, res)
    scores["CIDEr"], _ = Cider().compute_score(gts, res)
    return scores


@pytest.fixture(scope="module")
def test_split() -> tuple[list[PairRecord], list[str]]:
    if not LEVIR.is_dir():
        pytest.skip(f"real LEVIR-CC data not found at {LEVIR}")
    records = read_dataset(LEVIR / "LevirCCcaptions.json", split="test")
    predictions = (LEVIR / "peer-predictions-test.txt").read_text(encoding="utf-8").splitlines()
    return records, predictions


@pytest.fixture(scope="module")
def peer_scores(meteor: Any, test_split: tuple[list[PairRecord], list[str]]) -> tuple[dict, dict]:
    """Ours and the direct scorers' on all 1,929 test pairs, computed once (METEOR takes ~10 s)."""
    records, predictions = test_split
    references = [[" ".join(c) for c in r.captions] for r in records]
    return score_captions(predictions, references), direct_scores(meteor, predictions, references)


@pytest.mark.slow
def test_peer_predictions_equal_direct_pycocoevalcap(peer_scores: tuple[dict, dict]) -> None:
    ours, direct = peer_scores
    for metric, value in direct.items():
        assert ours[metric] == pytest.approx(value, abs=1e-9), metric
    expected_sm = (direct["BLEU-4"] + direct["METEOR"] + direct["ROUGE-L"] + direct["CIDEr"]) / 4
    assert ours["S*m"] == pytest.approx(expected_sm, abs=1e-9)


@pytest.mark.slow
def test_peer_predictions_land_near_the_published_numbers(peer_scores: tuple[dict, dict]) -> None:
    """Ours: B4 66.20, M 42.07, R 77.07, C 140.98 against published about 63.5 / 38.8 / 73.7 / 136.4."""
    ours, _ = peer_scores
    for metric, published in PUBLISHED_PROMPTCC.items():
        assert ours[metric] == pytest.approx(published, abs=0.05 if metric != "CIDEr" else 0.1), metric


def test_field_vocab_scores_ids_like_the_field(
    meteor: Any, test_split: tuple[list[PairRecord], list[str]]
) -> None:
    records, predictions = test_split
    records, predictions = records[:60], predictions[:60]
    vocab = Vocab.load(LEVIR / "vocab-501.json")
    references = [[" ".join(c) for c in r.captions] for r in records]

    def ids(text: str) -> str:
        return " ".join(str(vocab.stoi.get(w, vocab.unk_id)) for w in text.split())

    ours = score_captions(predictions, references, field_vocab=vocab)
    direct = direct_scores(meteor, [ids(p) for p in predictions], [[ids(r) for r in rs] for rs in references])
    for metric, value in direct.items():
        assert ours[metric] == pytest.approx(value, abs=1e-9), metric


def test_normalisation_and_empty_sets() -> None:
    scores = score_captions(["A Road is BUILT ."], [["a road is built"]])
    assert scores["BLEU-4"] == pytest.approx(1.0, abs=1e-6) and scores["ROUGE-L"] == pytest.approx(1.0)
    assert score_captions([], []) == dict.fromkeys(METRICS)
    with pytest.raises(ValueError, match="2 predictions for 1 reference sets"):
        score_captions(["a", "b"], [["a"]])


def test_change_flag_metrics_by_hand() -> None:
    truth, predicted = [1, 1, 1, 0, 0], [1, 0, 1, 1, 0]
    m = change_flag_metrics(truth, predicted)
    assert m == {"accuracy": 3 / 5, "precision": 2 / 3, "recall": 2 / 3, "n": 5}
    assert change_flag_metrics([0, 0], [0, 0])["precision"] is None, "no predicted positives"
    captions = ["There is no difference .", "a road is built", "almost nothing has changed"]
    assert flags_from_captions(captions) == [0, 1, 0]


def test_mask_metrics_per_image_mean_vs_accumulated() -> None:
    m = MaskMetrics()
    big_gt = np.zeros((10, 10), np.uint8)
    big_gt[:, :5] = 255  # 50 changed pixels
    big_pred = np.zeros((10, 10), np.uint8)
    big_pred[:, :4] = 1  # 40 of them found: IoU 0.8
    small_gt = np.zeros((10, 10), np.uint8)
    small_gt[0, :2] = 1  # 2 changed pixels
    small_pred = np.zeros((10, 10), np.uint8)
    small_pred[0, 1:4] = 1  # 1 hit, 2 false alarms: IoU 1/4
    m.update(big_pred, big_gt)
    m.update(small_pred, small_gt)
    m.update(np.zeros((4, 4)), np.zeros((4, 4)))  # nothing either side: no IoU, counted in n
    r = m.compute()
    assert r["n"] == 3 and r["n_iou"] == 2
    assert r["IoU"] == pytest.approx((0.8 + 0.25) / 2)
    assert r["cIoU"] == pytest.approx(41 / (41 + 2 + 11))
    assert r["precision"] == pytest.approx(41 / 43) and r["recall"] == pytest.approx(41 / 52)
    assert r["F1"] == pytest.approx(2 * r["precision"] * r["recall"] / (r["precision"] + r["recall"]))
    with pytest.raises(ValueError, match="differ in shape"):
        m.update(np.zeros((2, 2)), np.zeros((3, 3)))
    assert MaskMetrics().compute()["cIoU"] is None


def test_report_subsets_flags_and_masks(test_split: tuple[list[PairRecord], list[str]]) -> None:
    records, predictions = test_split
    records, predictions = records[:40], predictions[:40]
    masks = MaskMetrics()
    masks.update(np.ones((2, 2)), np.ones((2, 2)))
    report = build_report(records, predictions, mask_metrics=masks)
    changed = [i for i, r in enumerate(records) if r.changeflag == 1]
    assert report["n"] == {
        "pairs": 40, "all": 40, "changed": len(changed), "unchanged": 40 - len(changed),
        "change_flag": 40, "mask": 1,
    }
    refs = [[" ".join(c) for c in records[i].captions] for i in changed]
    direct = score_captions([predictions[i] for i in changed], refs)
    assert report["changed"] == pytest.approx(direct, abs=1e-12)
    flags = flags_from_captions(predictions)
    assert report["change_flag"] == change_flag_metrics([r.changeflag for r in records], flags)
    assert report["mask"]["cIoU"] == 1.0
    table = markdown_table(report)
    assert "| unchanged | " in table and "| change mask (changed class) | n |" in table

    only_changed = build_report([records[i] for i in changed[:3]], [predictions[i] for i in changed[:3]])
    assert only_changed["unchanged"] == dict.fromkeys(METRICS), "an empty subset gives None values"
    assert "n/a" in markdown_table(only_changed)


def test_report_without_captions_keeps_flag_and_mask() -> None:
    records = [PairRecord(f"{i}.png", None, None, None, None, (), i % 2) for i in range(4)]
    masks = MaskMetrics()
    masks.update(np.eye(3), np.eye(3))
    report = build_report(records, captions=None, change_flags=[0, 1, 1, 1], mask_metrics=masks)
    assert report["all"] is None and report["changed"] is None
    assert report["change_flag"]["accuracy"] == 0.75 and report["mask"]["IoU"] == 1.0
    assert "captions" not in markdown_table(report)


@pytest.fixture()
def small_references(
    tmp_path: Path, test_split: tuple[list[PairRecord], list[str]]
) -> tuple[Path, list[str]]:
    """The first 30 test entries of the real JSON (plus a train entry that must be ignored)."""
    entries = json.loads((LEVIR / "LevirCCcaptions.json").read_text())["images"]
    test_entries = [e for e in entries if e["split"] == "test"][:30]
    path = tmp_path / "LevirCCcaptions.json"
    path.write_text(json.dumps({"images": [entries[0], *test_entries]}))
    return path, test_split[1][:30]


def run_cli(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    # Only this command's module is loaded, so the test does not depend on the other commands.
    monkeypatch.setattr(cli, "COMMANDS", ("evaluate",))
    return cli.main(argv)


def test_cli_predictions_end_to_end(
    tmp_path: Path, small_references: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    references, predictions = small_references
    pred_file = tmp_path / "pred.txt"
    pred_file.write_text("\n".join(predictions) + "\n", encoding="utf-8")
    out = tmp_path / "out" / "report.json"
    args = ["evaluate", "--predictions", str(pred_file), "--references", str(references), "-o", str(out)]
    assert run_cli(args, monkeypatch) == 0
    report = json.loads(out.read_text())
    expected = build_report(read_dataset(references, split="test"), predictions)
    assert report["all"] == pytest.approx(expected["all"], abs=1e-12)
    assert report["n"]["all"] == 30 and report["inputs"]["split"] == "test"
    stdout = capsys.readouterr().out
    assert stdout.startswith("| captions | n | BLEU-1")
    assert f"| all | 30 | {100 * expected['all']['BLEU-1']:.2f} |" in stdout

    pred_file.write_text("\n".join(predictions[:29]) + "\n", encoding="utf-8")
    assert run_cli(args, monkeypatch) == 2
    assert "has 29 lines but the 'test' split" in capsys.readouterr().err
    assert run_cli(["evaluate", "--predictions", str(pred_file), "-o", str(out)], monkeypatch) == 2
    assert "--predictions needs --references" in capsys.readouterr().err


def test_cli_model_on_change_detection_folder_gives_flag_and_mask_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An untrained tiny model on the real DSIFN pairs: the wiring, not the quality, is under test."""
    dsifn = LEVIR.parent / "dsifn"
    if not dsifn.is_dir():
        pytest.skip(f"real DSIFN pairs not found at {dsifn}")
    from dataclasses import replace

    from hisem.evaluation.predict import predict_records
    from hisem.model import build_model, preset, save_checkpoint

    vocab = Vocab(["a", "road", "is", "built"])
    checkpoint = tmp_path / "tiny.pt"
    save_checkpoint(checkpoint, build_model(replace(preset("tiny"), vocab_size=len(vocab))), vocab.to_dict())
    out = tmp_path / "report.json"
    args = ["evaluate", "--model", str(checkpoint), "--data", str(dsifn), "-o", str(out), "--device", "cpu"]
    assert run_cli(args, monkeypatch) == 0
    report = json.loads(out.read_text())
    assert report["all"] is None, "no references, no caption scores"
    assert report["n"]["change_flag"] == report["n"]["mask"] == 10

    records = read_dataset(dsifn)
    preds = predict_records(str(checkpoint), records, batch_size=4, device="cpu")
    expected = MaskMetrics()
    for record, pred in zip(records, preds.masks, strict=True):
        expected.update(pred, np.asarray(Image.open(record.mask)))
    assert report["mask"] == pytest.approx(expected.compute())
    flags = [int(p >= 0.5) for p in preds.change_prob]
    assert report["change_flag"] == pytest.approx(change_flag_metrics([r.changeflag for r in records], flags))
    assert report["inputs"]["engine"] == "pytorch"
    assert report["baselines"]["differencing"] == pytest.approx(difference_baseline(records))
    stdout = capsys.readouterr().out
    assert "| change mask (changed class) | n |" in stdout and "| differencing | 10 |" in stdout
