"""Dataset readers on the real LEVIR-CC captions, real DSIFN pairs and layouts written at test time."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hisem.data.readers import PairRecord, binarize_mask, load_mask, read_dataset

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
LEVIR = SHARED / "levir-cc"
DSIFN = SHARED / "dsifn"
needs_levir = pytest.mark.skipif(not LEVIR.is_dir(), reason=f"real LEVIR-CC captions not found at {LEVIR}")
needs_dsifn = pytest.mark.skipif(not DSIFN.is_dir(), reason=f"real DSIFN pairs not found at {DSIFN}")


def write_png(path: Path, array: np.ndarray, mode: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(array)
    (img.convert(mode) if mode else img).save(path)


@pytest.fixture(scope="module")
def levir_records() -> list[PairRecord]:
    if not LEVIR.is_dir():
        pytest.skip(f"real LEVIR-CC captions not found at {LEVIR}")
    return read_dataset(LEVIR)


@needs_levir
def test_levir_cc_split_counts_and_flags(levir_records: list[PairRecord]) -> None:
    counts = {s: sum(r.split == s for r in levir_records) for s in ("train", "val", "test")}
    assert counts == {"train": 6815, "val": 1333, "test": 1929}
    assert all(r.changeflag in (0, 1) for r in levir_records)
    assert all(len(r.captions) == 5 for r in levir_records)
    test = [r for r in levir_records if r.split == "test"]
    assert sum(r.changeflag == 0 for r in test) == 965
    # An unchanged pair carries the canonical sentence among its references.
    unchanged = next(r for r in test if r.changeflag == 0)
    assert ("the", "scene", "is", "the", "same", "as", "before") in unchanged.captions


@needs_levir
def test_levir_cc_order_and_split_filter_follow_the_json(levir_records: list[PairRecord]) -> None:
    entries = json.loads((LEVIR / "LevirCCcaptions.json").read_text())["images"]
    assert [r.name for r in levir_records] == [e["filename"] for e in entries]
    test = read_dataset(LEVIR / "LevirCCcaptions.json", split="test")
    assert test == [r for r in levir_records if r.split == "test"]
    assert test[0].name == "test_000001.png"
    first = next(e for e in entries if e["split"] == "test")
    assert test[0].captions[0] == tuple(first["sentences"][0]["tokens"])


@needs_levir
def test_levir_cc_finds_the_three_real_images_without_split_folders(levir_records: list[PairRecord]) -> None:
    with_images = [r for r in levir_records if r.before is not None]
    assert [r.name for r in with_images] == ["train_000016.png", "train_000051.png", "train_000054.png"]
    for r in with_images:
        assert r.before == LEVIR / "images" / "A" / r.name and r.before.is_file()
        assert r.after == LEVIR / "images" / "B" / r.name and r.after.is_file()
    assert all(r.after is None and r.mask is None for r in levir_records if r.before is None)


@needs_levir
def test_unknown_split_names_the_splits_present() -> None:
    with pytest.raises(ValueError, match=r"no entries in split 'tset'.*test, train, val"):
        read_dataset(LEVIR, split="tset")


@needs_dsifn
def test_change_detection_layout_dsifn() -> None:
    records = read_dataset(DSIFN)
    assert len(records) == 10
    assert [r.name for r in records] == sorted(p.name for p in (DSIFN / "A").iterdir())
    for r in records:
        assert r.split is None and r.captions == ()
        assert r.before == DSIFN / "A" / r.name and r.after == DSIFN / "B" / r.name
        assert r.mask == DSIFN / "label" / r.name
        raw = load_mask(r.mask)
        assert set(np.unique(raw)) <= {0, 255}
        assert r.changeflag == int(raw.any())
    # The flat layout has no splits: asking for one still reads every pair.
    assert read_dataset(DSIFN, split="test") == records


@pytest.fixture()
def levir_mci(tmp_path: Path) -> Path:
    """A LEVIR-MCI-style folder: split folders, 0/128/255 masks, one pair without a mask."""
    rng = np.random.default_rng(0)
    entries = []
    for split, names in (("train", ["train_1.png", "train_2.png"]), ("test", ["test_1.png"])):
        for name in names:
            for side in "AB":
                pixels = rng.integers(0, 256, (8, 8, 3), np.uint8)
                write_png(tmp_path / "images" / split / side / name, pixels)
            if name != "train_2.png":
                mask = np.zeros((8, 8), np.uint8)
                mask[:2, :2], mask[4:, 4:] = 128, 255  # road, building
                write_png(tmp_path / "images" / split / "label" / name, mask)
            changed = name != "train_2.png"
            sentence = "a road and a house are built ." if changed else "the scene is the same as before ."
            entries.append({
                "filepath": split, "filename": name, "split": split, "changeflag": int(changed),
                "sentences": [{"tokens": sentence.split()[:-1], "raw": " " + sentence}],
            })
    (tmp_path / "LevirCCcaptions.json").write_text(json.dumps({"images": entries}))
    return tmp_path


def test_levir_mci_layout_masks_as_is_and_binarised(levir_mci: Path) -> None:
    records = read_dataset(levir_mci)
    assert [(r.name, r.split) for r in records] == [
        ("train_1.png", "train"), ("train_2.png", "train"), ("test_1.png", "test"),
    ]
    first, unmasked, test = records
    assert first.before == levir_mci / "images/train/A/train_1.png"
    assert first.mask == levir_mci / "images/train/label/train_1.png"
    assert unmasked.mask is None and unmasked.before is not None
    raw = load_mask(test.mask)
    assert raw.dtype == np.uint8 and set(np.unique(raw)) == {0, 128, 255}
    binary = binarize_mask(raw)
    assert set(np.unique(binary)) == {0, 1}
    assert binary.sum() == 4 + 16 and binary[:2, :2].all() and binary[4:, 4:].all()
    assert [r.changeflag for r in records] == [1, 0, 1]
    assert read_dataset(levir_mci, split="test", fmt="levir-mci") == [test]


def test_whu_cdc_style_json(tmp_path: Path) -> None:
    """WHU-CDC: whuCCcaptions.json, the split only in ``filepath``, no changeflag, 1-bit masks."""
    label = np.zeros((8, 8), bool)
    label[3:5, 3:5] = True
    write_png(tmp_path / "images/train/label/c.png", label.astype(np.uint8) * 255, mode="1")
    entries = [
        {"filepath": "train", "filename": "c.png",
         "sentences": [{"tokens": ["A", "Building", "is", "built", "."]}, {"raw": "Two roads appear."}]},
        {"filepath": "train", "filename": "u.png",
         "sentences": [{"tokens": ["There", "is", "no", "difference"]}, {"raw": "a road appears"}]},
        {"filepath": "val", "filename": "v.png", "sentences": []},
    ]
    json_path = tmp_path / "whuCCcaptions.json"
    json_path.write_text(json.dumps({"images": entries}))
    records = read_dataset(tmp_path, fmt="whu-cdc")
    c, u, v = records
    assert c.split == "train" and c.captions == (("a", "building", "is", "built"), ("two", "roads", "appear"))
    assert c.changeflag == 1, "no no-change sentence among the references"
    assert u.changeflag == 0, "a no-change sentence is among the references"
    assert v.captions == () and v.changeflag is None
    assert c.mask is not None and c.before is None
    assert binarize_mask(load_mask(c.mask)).sum() == 4
    assert read_dataset(json_path, split="val") == [v]


def test_change_detection_with_split_folders(tmp_path: Path) -> None:
    for split in ("train", "test"):
        for side in ("A", "B"):
            write_png(tmp_path / split / side / "p.png", np.zeros((4, 4, 3), np.uint8))
        write_png(tmp_path / split / "label" / "p.png", np.zeros((4, 4), np.uint8))
    (records,) = [read_dataset(tmp_path, split="test")]
    assert len(records) == 1
    assert records[0].split == "test" and records[0].before == tmp_path / "test/A/p.png"
    assert records[0].changeflag == 0, "an all-zero mask means unchanged"


def test_errors_name_the_file_and_the_problem(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_dataset(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="neither"):
        read_dataset(tmp_path)
    with pytest.raises(ValueError, match="unknown dataset format"):
        read_dataset(tmp_path, fmt="coco")

    bad = tmp_path / "bad" / "LevirCCcaptions.json"
    bad.parent.mkdir()
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"LevirCCcaptions.json: not valid JSON"):
        read_dataset(bad.parent)
    bad.write_text(json.dumps({"images": [{"split": "train", "sentences": []}]}))
    with pytest.raises(ValueError, match=r"entry 0 has no 'filename'"):
        read_dataset(bad)
    bad.write_text(json.dumps({"images": [{"filename": "x.png", "changeflag": 2}]}))
    with pytest.raises(ValueError, match="changeflag must be 0 or 1"):
        read_dataset(bad)
    (bad.parent / "whuCCcaptions.json").write_text("{}")
    with pytest.raises(ValueError, match="several captions files"):
        read_dataset(bad.parent)

    cd = tmp_path / "cd"
    write_png(cd / "A" / "p.png", np.zeros((4, 4, 3), np.uint8))
    (cd / "B").mkdir()
    with pytest.raises(FileNotFoundError, match=r"B/p.png: missing"):
        read_dataset(cd)
