"""The synthetic pair generator and `hisem synth`: determinism, layout, masks, captions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hisem.cli import main
from hisem.data.synth import make_pair
from hisem.data.synth.captions import NO_CHANGE, NUMBERS, SAME_AS_BEFORE
from hisem.data.synth.writer import plan

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "levir-cc"
needs_levir = pytest.mark.skipif(not (DATA / "LevirCCcaptions.json").exists(),
                                 reason=f"LEVIR-CC captions and vocabulary absent from {DATA}")

# Small and coarse (64 px at 2 m = the same 128 m of ground as a LEVIR-CC tile): fast to render,
# the same objects, events and captions.
SMALL = {"size": 64, "gsd": 2.0}


@pytest.fixture(scope="module")
def small_pairs() -> list:
    return [make_pair(seed, changed=seed % 4 != 0, **SMALL) for seed in range(300)]


def _third_share(mask: np.ndarray, axis: int) -> np.ndarray:
    """Share of the changed pixels in each third of the image along ``axis`` (0 rows, 1 columns)."""
    coords = np.nonzero(mask)[axis]
    return np.bincount(coords * 3 // mask.shape[axis], minlength=3) / len(coords)


def test_same_seed_same_pair_other_seed_other_pair() -> None:
    a, b, c = make_pair(11), make_pair(np.random.default_rng(11)), make_pair(12)
    for x in ("before", "after", "mask"):
        assert np.array_equal(getattr(a, x), getattr(b, x))
    assert a.captions == b.captions
    assert not np.array_equal(a.before, c.before)


@pytest.mark.parametrize("changed", [True, False])
def test_pair_contract(changed: bool) -> None:
    p = make_pair(5, changed=changed)
    assert p.before.shape == p.after.shape == (256, 256, 3) and p.before.dtype == np.uint8
    assert p.mask.shape == (256, 256) and set(np.unique(p.mask)) <= {0, 255}
    assert p.changeflag == int(changed) and len(p.captions) == 5 == len(set(p.captions))
    assert p.mask.any() == changed
    # Appearance alone differs in unchanged pairs: never pixel-identical dates.
    assert not np.array_equal(p.before, p.after)
    if changed:
        union = np.any([e.mask(p.mask.shape) for e in p.events], axis=0)
        assert np.array_equal(union, p.mask > 0)


def test_masks_and_flags(small_pairs: list) -> None:
    for p in small_pairs:
        assert set(np.unique(p.mask)) <= {0, 255}
        assert bool(p.mask.any()) == bool(p.changeflag) == bool(p.events)
        assert (SAME_AS_BEFORE in p.captions) == (p.changeflag == 0)
        if p.changeflag == 0:
            assert p.captions == list(NO_CHANGE)
        else:
            assert not set(p.captions) & set(NO_CHANGE)


@needs_levir
def test_every_caption_word_is_in_the_levir_vocabulary(small_pairs: list) -> None:
    vocab = json.loads((DATA / "vocab-501.json").read_text())
    kinds = set()
    for p in small_pairs:
        assert len(set(p.captions)) == 5
        kinds |= {e.kind for e in p.events}
        for c in p.captions:
            words = c.split()
            assert c == " ".join(words) and 3 <= len(words) <= 39, c
            assert not set(words) - vocab.keys(), (c, set(words) - vocab.keys())
    assert len(kinds) >= 9  # the sample covers nearly every kind of event


# Place words -> (axis, third) they claim: axis 0 = rows, 1 = columns.
CLAIMS = {
    "top": [(0, 0)], "upper": [(0, 0)], "bottom": [(0, 2)], "lower": [(0, 2)],
    "left": [(1, 0)], "right": [(1, 2)],
    "lower-left": [(0, 2), (1, 0)], "lower-right": [(0, 2), (1, 2)],
}  # fmt: skip


def test_places_counts_and_roads_agree_with_the_mask(small_pairs: list) -> None:
    """In one-event pairs every place word must hold for the mask, every number for the event."""
    checked = 0
    for p in small_pairs:
        if len(p.events) != 1:
            continue
        (ev,) = p.events
        rows, cols = _third_share(p.mask > 0, 0), _third_share(p.mask > 0, 1)
        for c in p.captions:
            words = c.split()
            for w in words:
                for axis, third in CLAIMS.get(w, []):
                    assert (rows, cols)[axis][third] >= 0.6, (c, rows, cols)
            if "middle" in words or "center" in words:
                assert max(rows[1], cols[1]) >= 0.6, (c, rows, cols)
            numbers = [n for n, word in NUMBERS.items() if word in words]
            if numbers and "rows" not in words:
                assert numbers == [ev.count], (c, ev.count)
            if "road" in words and ev.kind != "road_built":
                assert ev.along_road or "parking" in words, c
            checked += 1
    assert checked >= 200


def test_plan_splits_by_index_and_balances_changes() -> None:
    slots = plan(20, (0.5, 0.25, 0.25), 0.5, seed=3)
    assert [s.split for s in slots] == ["train"] * 10 + ["val"] * 5 + ["test"] * 5
    assert [s.index for s in slots] == list(range(20))
    assert [s.name for s in slots[10:12]] == ["val_000001.png", "val_000002.png"]
    assert sum(not s.changed for s in slots[:10]) == 5
    with pytest.raises(ValueError):
        plan(10, (0.5, 0.5, 0.5), 0.5, seed=3)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@needs_levir
def test_cli_writes_levir_layout_reproducibly(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    args = ["synth", "--out", str(out), "--pairs", "12", "--seed", "4", "--split-fractions", "0.5,0.25,0.25",
            "--no-progress"]
    assert main([*args, "--workers", "2"]) == 0
    data = json.loads((out / "LevirCCcaptions.json").read_text())
    real = json.loads((DATA / "LevirCCcaptions.json").read_text())
    assert data.keys() == real.keys()
    entry_keys, sentence_keys = list(real["images"][0]), list(real["images"][0]["sentences"][0])
    images = data["images"]
    assert [im["imgid"] for im in images] == list(range(12))
    names = [im["filename"] for im in images]
    assert names[:7] == [f"train_{k:06d}.png" for k in range(1, 7)] + ["val_000001.png"]
    sentid = 0
    for im in images:
        assert list(im) == entry_keys and im["filepath"] == im["split"]
        assert [list(s) for s in im["sentences"]] == [sentence_keys] * 5
        for s in im["sentences"]:
            assert s["raw"] == " " + " ".join(s["tokens"]) + " ." and s["sentid"] == sentid
            assert s["imgid"] == im["imgid"]
            sentid += 1
        assert im["sentids"] == [s["sentid"] for s in im["sentences"]]
        folder = out / "images" / im["split"]
        a, b = Image.open(folder / "A" / im["filename"]), Image.open(folder / "B" / im["filename"])
        label = np.asarray(Image.open(folder / "label" / im["filename"]))
        assert a.mode == b.mode == "RGB" and a.size == b.size == (256, 256) and label.shape == (256, 256)
        assert set(np.unique(label)) <= {0, 255} and label.any() == bool(im["changeflag"])
        raws = [s["raw"] for s in im["sentences"]]
        assert (f" {SAME_AS_BEFORE} ." in raws) == (im["changeflag"] == 0)
    assert sum(im["changeflag"] for im in images) == 3 + 1 + 1  # 6/3/3 pairs, round(1.5) == 2 unchanged

    # Same arguments, one worker: byte-identical files. Existing data sets are not overwritten.
    assert main([*args, "--workers", "2"]) == 2
    again = tmp_path / "again"
    assert main([*args[:2], str(again), *args[3:], "--workers", "1"]) == 0
    assert _files(out) == _files(again)


def test_cli_rejects_bad_arguments(tmp_path: Path) -> None:
    base = ["synth", "--out", str(tmp_path / "x"), "--pairs", "2", "--seed", "0", "--no-progress"]
    assert main([*base, "--split-fractions", "0.5,0.2,0.2"]) == 2
    assert main([*base, "--unchanged-fraction", "1.5"]) == 2


def test_large_canvas_holds_more_objects_not_bigger_ones() -> None:
    """A 4x larger area of ground gets about 4x the events; objects keep their size in metres."""
    big = make_pair(3, size=512, gsd=0.5, changed=True)
    assert big.before.shape == (512, 512, 3)
    assert len(big.events) >= 4
    houses = [e for e in big.events if e.kind == "buildings_built" and e.count == 1]
    for e in houses:  # one house with its lot: at most ~30 x 30 m, whatever the canvas
        assert e.footprint.sum() * 0.5**2 < 1200
