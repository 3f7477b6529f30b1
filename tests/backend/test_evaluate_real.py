"""`hisem evaluate` on real-style A/B/label pairs: baselines and tile flags by hand, an installed ONNX model
run the way `hisem caption` runs it, and the `make eval-real` report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hisem import cli
from hisem.data.readers import read_dataset
from hisem.engine import OrtRunner, resolve_model
from hisem.evaluation.baseline import baseline_scores
from hisem.evaluation.change import TileFlagMetrics


def write_pairs(root: Path, pairs: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]]) -> Path:
    """``name -> (A, B, label)`` as PNGs in ``root/{A,B,label}``; label 0/1 is stored 0/255."""
    for name, (before, after, label) in pairs.items():
        for folder, image in (("A", before), ("B", after), ("label", label)):
            if image is None:
                continue
            (root / folder).mkdir(parents=True, exist_ok=True)
            data = image * 255 if folder == "label" else image
            Image.fromarray(data.astype(np.uint8)).save(root / folder / f"{name}.png")
    return root


def grey_rgb(value: int, size: tuple[int, int]) -> np.ndarray:
    return np.full((*size, 3), value, np.uint8)


@pytest.fixture()
def hand_made(tmp_path: Path) -> Path:
    """Three 8x8 grey pairs whose differencing masks are known pixel for pixel.

    - ``hit``: a 2x2 block brightens by 100 (found); the label also marks a 2x2 block the images
      do not show (missed): 4 TP, 0 FP, 4 FN.
    - ``same``: identical images, empty label: nothing either way.
    - ``false``: a 3x3 block brightens by 40, the label is empty: 9 FP.
    """
    hit_b, hit_label = grey_rgb(100, (8, 8)), np.zeros((8, 8), np.uint8)
    hit_b[0:2, 0:2] = 200
    hit_label[0:2, 0:2] = 1
    hit_label[6:8, 6:8] = 1
    false_b = grey_rgb(50, (8, 8))
    false_b[3:6, 3:6] = 90
    return write_pairs(tmp_path / "hand", {
        "hit": (grey_rgb(100, (8, 8)), hit_b, hit_label),
        "same": (grey_rgb(70, (8, 8)), grey_rgb(70, (8, 8)), np.zeros((8, 8), np.uint8)),
        "false": (grey_rgb(50, (8, 8)), false_b, np.zeros((8, 8), np.uint8)),
    })


def test_baselines_exact_on_hand_made_pairs(hand_made: Path) -> None:
    scores = baseline_scores(read_dataset(hand_made))
    diff = scores["differencing"]  # TP 4, FP 9, FN 4; per-image IoU 4/8 and 0/9 ("same" has no union)
    assert diff["precision"] == pytest.approx(4 / 13)
    assert diff["recall"] == pytest.approx(0.5)
    assert diff["F1"] == pytest.approx(8 / 21)
    assert diff["cIoU"] == pytest.approx(4 / 17)
    assert diff["IoU"] == pytest.approx(0.25) and diff["n_iou"] == 2 and diff["n"] == 3
    every = scores["all_changed"]  # TP 8, FP 56 + 64 + 64, FN 0; per-image IoU 8/64, 0, 0
    assert every["precision"] == pytest.approx(8 / 192)
    assert every["recall"] == 1.0
    assert every["F1"] == pytest.approx(16 / 200)
    assert every["cIoU"] == pytest.approx(8 / 192)
    assert every["IoU"] == pytest.approx(0.125 / 3) and every["n_iou"] == 3


def test_tile_flag_rates_by_hand() -> None:
    flags = TileFlagMetrics()
    # (share of changed pixels, model's call): 3 unchanged tiles (1 false alarm), 2 changed (1 miss),
    # one with 0.5 % changed pixels that counts in neither rate.
    for fraction, called in ((0.0, True), (0.0, False), (0.0, False), (0.5, False), (0.02, True), (0.005, True)):
        flags.update(fraction, called)
    result = flags.compute()
    assert result["false_alarm_rate"] == pytest.approx(1 / 3)
    assert result["miss_rate"] == pytest.approx(0.5)
    assert (result["tiles"], result["unchanged_tiles"], result["false_alarms"], result["changed_tiles"],
            result["misses"], result["minor_change_tiles"], result["tiles_called_changed"]) == (6, 3, 1, 2, 1, 1, 3)
    assert result["accuracy"] == pytest.approx(3 / 5) and result["precision"] == pytest.approx(0.5)
    assert result["recall"] == pytest.approx(0.5) and result["n"] == 5
    assert TileFlagMetrics().compute()["false_alarm_rate"] is None, "no unchanged tile: undefined, not 0"


def run_cli(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(cli, "COMMANDS", ("evaluate",))
    return cli.main(argv)


def test_evaluate_runs_an_installed_onnx_model_tile_by_tile(
    tmp_path: Path, tiny_model: Path, model_id: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A pair at twice the model's GSD is resampled to it and cut into `hisem caption`'s 3 tiles; a pair
    smaller than a tile is mirror-padded to one. Each tile's P(changed) is the engine's own on those pixels."""
    card = json.loads((tiny_model / "model.json").read_text())
    size, gsd = card["tile_size"], card["gsd_m"]
    assert size == 64
    rng = np.random.default_rng(5)
    wide_a = rng.integers(40, 200, (size // 2, size, 3)).astype(np.uint8)  # 64 x 32 px at 2 x GSD
    wide_b = wide_a.copy()
    wide_b[:, size - 8:] = 255  # the last 8 native columns = the last 16 of the working grid
    wide_label = np.zeros((size // 2, size), np.uint8)
    wide_label[:, size - 8:] = 1
    small = rng.integers(40, 200, (size // 4, size // 4, 3)).astype(np.uint8)  # 16 px = half a tile
    data = write_pairs(tmp_path / "data", {
        "wide": (wide_a, wide_b, wide_label), "small": (small, small, np.zeros((size // 4,) * 2, np.uint8)),
    })
    monkeypatch.setenv("HISEM_MODELS_DIR", str(tiny_model.parent))
    out = tmp_path / "report.json"
    args = ["evaluate", "--model", model_id, "--data", str(data), "--gsd", str(2 * gsd), "-o", str(out),
            "--no-progress"]
    assert run_cli(args, monkeypatch) == 0
    report = json.loads(out.read_text())
    assert report["inputs"]["engine"] == "onnxruntime" and report["inputs"]["model"] == model_id
    small_pair, wide_pair = report["pairs"]  # sorted names
    assert small_pair["tiles"] == 1 and small_pair["padding_px"] == [8, 8, 8, 8]
    assert wide_pair["working_grid"] == [2 * size, size] and wide_pair["padding_px"] == [0, 0, 0, 0]
    tiles = wide_pair["tile_results"]
    # Working grid 128 x 64, tiles of 64 with 8 px overlap start at x = 0, 56, 64.
    assert [t["changed_fraction"] for t in tiles] == pytest.approx([0.0, 8 / 64, 16 / 64])

    # The same tiles straight through the engine: the grid is an exact 2x upsampling of the PNGs.
    grid_a = np.asarray(Image.fromarray(wide_a).resize((2 * size, size), Image.BILINEAR))
    grid_b = np.asarray(Image.fromarray(wide_b).resize((2 * size, size), Image.BILINEAR))
    runner = OrtRunner(tiny_model)
    for tile, x in zip(tiles, (0, 56, 64), strict=True):
        window = (slice(None), slice(x, x + size))
        _, prob, _ = runner.encode(grid_a[window].transpose(2, 0, 1)[None], grid_b[window].transpose(2, 0, 1)[None])
        assert tile["change_prob"] == pytest.approx(float(prob[0]), abs=0.05)
        assert tile["changed"] == (tile["change_prob"] >= 0.5)

    calls = [t["changed"] for t in tiles] + [small_pair["tile_results"][0]["changed"]]
    flag = report["change_flag"]
    assert (flag["tiles"], flag["unchanged_tiles"], flag["changed_tiles"]) == (4, 2, 2)
    assert flag["false_alarm_rate"] == pytest.approx((calls[0] + calls[3]) / 2)
    assert flag["miss_rate"] == pytest.approx(((not calls[1]) + (not calls[2])) / 2)
    assert report["mask"]["n"] == 2 and report["baselines"] == baseline_scores(read_dataset(data))
    assert set(report["baselines"]["differencing"]) == set(report["mask"])
    stdout = capsys.readouterr().out
    assert "| change flag per tile (changed = positive) | n | false_alarm_rate | miss_rate |" in stdout
    assert "| differencing | 2 |" in stdout and "| all_changed | 2 |" in stdout


def test_evaluate_without_model_uses_the_default_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hisem.engine import default_model_id

    if default_model_id() is None:
        pytest.skip("no model installed")
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (32, 32, 3)).astype(np.uint8)
    data = write_pairs(tmp_path / "data", {"p": (image, image, None)})
    assert run_cli(["evaluate", "--data", str(data), "--no-progress"], monkeypatch) == 0
    stdout = capsys.readouterr().out
    assert "| p.png | 1 |" in stdout, "no -o: the tables still go to stdout"
    assert resolve_model(None).id == default_model_id()


def test_evaluate_refuses_bad_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["evaluate"], monkeypatch) == 2
    assert "give --data DIR" in capsys.readouterr().err
    data = write_pairs(tmp_path / "d", {"p": (grey_rgb(1, (4, 4)), grey_rgb(1, (4, 4)), None)})
    assert run_cli(["evaluate", "--data", str(data), "--gsd", "0"], monkeypatch) == 2
    assert "--gsd must be positive" in capsys.readouterr().err
    checkpoint = tmp_path / "x.pt"
    checkpoint.write_bytes(b"")
    assert run_cli(["evaluate", "--model", str(checkpoint), "--data", str(data), "--gsd", "1"], monkeypatch) == 2
    assert "apply to installed models" in capsys.readouterr().err


def test_real_report_writes_the_table_and_the_json(tmp_path: Path, tiny_model: Path, hand_made: Path) -> None:
    """`make eval-real`'s module on a data root holding one labelled set (as ``dsifn``) and one without labels
    (as the Joplin chips): a table row with the model, the baselines and the tile rates; sets not found are
    said to be missing."""
    from hisem.evaluation.real_report import main

    root = tmp_path / "data"
    root.mkdir()
    hand_made.rename(root / "dsifn")
    rng = np.random.default_rng(3)
    chip = rng.integers(0, 256, (32, 32, 3)).astype(np.uint8)
    write_pairs(root / "real" / "joplin" / "chips", {"chip_0": (chip, 255 - chip, None)})
    out, doc = tmp_path / "out", tmp_path / "real-imagery.md"
    assert main(["--model", str(tiny_model), "--data-root", str(root), "--out", str(out), "--doc", str(doc),
                 "--no-progress"]) == 0
    dsifn = json.loads((out / "dsifn.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    row = summary["sets"][0]
    assert [r["set"] for r in summary["sets"]] == ["dsifn"] and row["pairs"] == 3
    assert row["differencing_F1"] == pytest.approx(8 / 21) and row["all_changed_F1"] == pytest.approx(0.08)
    assert row["model_F1"] == dsifn["mask"]["F1"]
    assert row["false_alarm_rate"] == dsifn["change_flag"]["false_alarm_rate"]
    text = doc.read_text()
    model_id = json.loads((tiny_model / "model.json").read_text())["model_id"]
    assert f"**Model: `{model_id}`**" in text
    assert "| dsifn | not stated, ~0.5 | 3 | 3 |" in text and "| 0.381 | 0.080 |" in text
    assert "LEVIR-CC pairs not found." in text
    assert "| chip_0.png | 1 |" in text
