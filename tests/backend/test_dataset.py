"""ChangeCaptionDataset: the data contract of its items, reference choice, resizing, masks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from hisem.data.captions import NO_CHANGE_SENTENCE
from hisem.data.dataset import ChangeCaptionDataset
from hisem.data.readers import PairRecord, read_dataset
from hisem.data.vocab import Vocab

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.5)
CHANGED_REFS = ["a road is built", "two houses appear", "a house is built", "trees are removed"]
UNCHANGED_REFS = ["there is no difference", "the scene is the same as before", "no change has occurred"]


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """Two 32 px training pairs (changed with a 0/128/255 mask, unchanged without one)."""
    rng = np.random.default_rng(0)
    for name in ("c.png", "u.png"):
        for side in "AB":
            (tmp_path / "images/train" / side).mkdir(parents=True, exist_ok=True)
            pixels = rng.integers(0, 256, (32, 32, 3), np.uint8)
            Image.fromarray(pixels).save(tmp_path / "images/train" / side / name)
    mask = np.zeros((32, 32), np.uint8)
    mask[:8, :8], mask[16:, 16:] = 128, 255
    (tmp_path / "images/train/label").mkdir()
    Image.fromarray(mask).save(tmp_path / "images/train/label/c.png")
    entries = [
        {"filename": "c.png", "split": "train", "changeflag": 1,
         "sentences": [{"tokens": s.split()} for s in CHANGED_REFS]},
        {"filename": "u.png", "split": "train", "changeflag": 0,
         "sentences": [{"tokens": s.split()} for s in UNCHANGED_REFS]},
    ]
    (tmp_path / "LevirCCcaptions.json").write_text(json.dumps({"images": entries}))
    return tmp_path


@pytest.fixture()
def records(folder: Path) -> list[PairRecord]:
    return read_dataset(folder)


@pytest.fixture()
def vocab(records: list[PairRecord]) -> Vocab:
    return Vocab.build(records, min_count=1)


def make(records: list[PairRecord], vocab: Vocab, **kwargs: object) -> ChangeCaptionDataset:
    options: dict = {"image_size": 32, "mean": MEAN, "std": STD, "max_len": 12, "train": False}
    options.update(kwargs)
    return ChangeCaptionDataset(records, vocab, **options)


def test_item_contract_and_exact_normalisation(records: list[PairRecord], vocab: Vocab) -> None:
    item = make(records, vocab)[0]
    assert item["before"].shape == item["after"].shape == (3, 32, 32)
    assert item["before"].dtype == torch.float32 and item["mask"].dtype == torch.float32
    assert item["mask"].shape == (1, 32, 32) and item["has_mask"] is True
    assert item["tokens"].shape == (12,) and item["tokens"].dtype == torch.long
    assert item["changeflag"].dtype == torch.long and item["changeflag"].shape == ()
    assert int(item["changeflag"]) == 1
    assert item["index"] == 0 and item["has_caption"] is True
    original = np.asarray(Image.open(records[0].before), np.float32).transpose(2, 0, 1)
    back = (item["before"].numpy() * np.reshape(STD, (3, 1, 1)) + np.reshape(MEAN, (3, 1, 1))) * 255
    np.testing.assert_allclose(back, original, atol=1e-3)
    expected = np.zeros((32, 32), np.float32)
    expected[:8, :8], expected[16:, 16:] = 1, 1  # road and building both count as changed
    np.testing.assert_array_equal(item["mask"][0].numpy(), expected)


def test_resize_images_bilinear_and_masks_nearest(records: list[PairRecord], vocab: Vocab) -> None:
    ds = make(records, vocab, image_size=16)
    item = ds[0]
    assert item["before"].shape == (3, 16, 16) and item["mask"].shape == (1, 16, 16)
    assert set(torch.unique(item["mask"]).tolist()) == {0.0, 1.0}
    assert item["mask"][0, :4, :4].all() and item["mask"][0, 8:, 8:].all()
    with Image.open(records[0].before) as img:
        resized = np.asarray(img.convert("RGB").resize((16, 16), Image.BILINEAR), np.float32)
    expected = (resized.transpose(2, 0, 1) / 255 - np.reshape(MEAN, (3, 1, 1))) / np.reshape(STD, (3, 1, 1))
    np.testing.assert_allclose(item["before"].numpy(), expected, atol=1e-5)


def test_missing_mask_gives_zeros(records: list[PairRecord], vocab: Vocab) -> None:
    item = make(records, vocab)[1]
    assert item["has_mask"] is False and not item["mask"].any() and item["mask"].shape == (1, 32, 32)


def test_eval_mode_uses_the_first_reference(records: list[PairRecord], vocab: Vocab) -> None:
    ds = make(records, vocab)
    assert vocab.decode(ds[0]["tokens"].tolist()) == CHANGED_REFS[0].split()
    assert vocab.decode(ds[1]["tokens"].tolist()) == UNCHANGED_REFS[0].split(), "no canonical swap in eval"


def test_train_mode_draws_a_random_reference_per_call(records: list[PairRecord], vocab: Vocab) -> None:
    ds = make(records, vocab, train=True, seed=3)
    seen = [" ".join(vocab.decode(ds.targets(0)["tokens"].tolist())) for _ in range(40)]
    assert set(seen) == set(CHANGED_REFS), "every reference is drawn over 40 calls"
    again = make(records, vocab, train=True, seed=3)
    assert [" ".join(vocab.decode(again.targets(0)["tokens"].tolist())) for _ in range(40)] == seen
    other = make(records, vocab, train=True, seed=4)
    assert [" ".join(vocab.decode(other.targets(0)["tokens"].tolist())) for _ in range(40)] != seen


def test_unchanged_training_pairs_get_the_canonical_sentence(records: list[PairRecord], vocab: Vocab) -> None:
    ds = make(records, vocab, train=True)
    canonical = NO_CHANGE_SENTENCE.split()
    assert all(vocab.decode(ds.targets(1)["tokens"].tolist()) == canonical for _ in range(20))
    free = make(records, vocab, train=True, canonical_unchanged=False, seed=1)
    drawn = {" ".join(vocab.decode(free.targets(1)["tokens"].tolist())) for _ in range(40)}
    assert drawn == set(UNCHANGED_REFS)


def test_targets_skip_images_and_batches_collate(records: list[PairRecord], vocab: Vocab) -> None:
    ds = make(records, vocab)
    assert "before" not in ds.targets(0) and "after" not in ds.targets(0)
    batch = next(iter(DataLoader(ds, batch_size=2)))
    assert batch["before"].shape == (2, 3, 32, 32) and batch["tokens"].shape == (2, 12)
    assert batch["changeflag"].tolist() == [1, 0] and batch["has_mask"].tolist() == [True, False]


def test_caption_less_pairs_and_missing_images() -> None:
    vocab = Vocab(["a"])
    no_caption = PairRecord("x.png", None, None, None, None, (), 0)
    ds = ChangeCaptionDataset([no_caption], vocab, 8, MEAN, STD, max_len=5, train=True)
    target = ds.targets(0)
    assert target["has_caption"] is False and target["tokens"].tolist() == [0] * 5
    with pytest.raises(FileNotFoundError, match="'x.png' has no before image"):
        ds[0]
    unknown = ChangeCaptionDataset([PairRecord("y", None, None, None, None)], vocab, 8, MEAN, STD)
    assert int(unknown.targets(0)["changeflag"]) == -1


def test_real_levir_images_at_256() -> None:
    root = SHARED / "levir-cc"
    if not root.is_dir():
        pytest.skip(f"real LEVIR-CC data not found at {root}")
    records = [r for r in read_dataset(root, split="train") if r.before is not None]
    vocab = Vocab.build(read_dataset(root, split="train"))
    item = ChangeCaptionDataset(records, vocab, 256, MEAN, STD)[2]
    assert item["before"].shape == (3, 256, 256) and torch.isfinite(item["after"]).all()
    assert vocab.decode(item["tokens"].tolist()) == list(records[2].captions[0])


def test_dataloader_workers_draw_independent_references(records: list[PairRecord], vocab: Vocab) -> None:
    """A Random(seed) copied into each worker would make both workers draw the same sequence."""
    ds = make([records[0]] * 40, vocab, train=True)
    loader = DataLoader(ds, batch_size=1, num_workers=2, generator=torch.Generator().manual_seed(0))
    drawn = [tuple(batch["tokens"][0].tolist()) for batch in loader]  # batches alternate workers
    assert drawn[0::2] != drawn[1::2]
