"""Vocabulary: built from the real LEVIR-CC training split, compared with the field's vocab-501."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from hisem.data.readers import PairRecord, read_dataset
from hisem.data.vocab import SPECIALS, Vocab

LEVIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "levir-cc"


def record(split: str, *captions: str, name: str = "p.png") -> PairRecord:
    return PairRecord(name, split, None, None, None, tuple(tuple(c.split()) for c in captions), 1)


@pytest.fixture(scope="module")
def levir_records() -> list[PairRecord]:
    if not LEVIR.is_dir():
        pytest.skip(f"real LEVIR-CC captions not found at {LEVIR}")
    return read_dataset(LEVIR)


def test_levir_train_vocab_is_a_subset_of_vocab_501(levir_records: list[PairRecord]) -> None:
    """vocab-501 counts words over all splits (test included); ours over train only.

    Ours has 432 words + 4 specials = 436, every one of them in vocab-501. The 65 words of
    vocab-501 that we lack reach 5 occurrences only once val/test captions are counted.
    """
    ours = Vocab.build(levir_records, min_count=5)
    field = Vocab.load(LEVIR / "vocab-501.json")
    assert len(field) == 501 and len(ours) == 436
    assert ours.itos[:4] == field.itos[:4] == list(SPECIALS)
    assert set(ours.itos) <= set(field.itos)
    train_counts = Counter(w for r in levir_records if r.split == "train" for c in r.captions for w in c)
    missing = set(field.itos) - set(ours.itos)
    assert len(missing) == 65
    assert all(train_counts[w] < 5 for w in missing)
    assert ours.itos[4:] == sorted(ours.itos[4:]), "words in sorted order, like vocab-501"


def test_vocab_501_loads_with_its_own_ids() -> None:
    if not LEVIR.is_dir():
        pytest.skip(f"real LEVIR-CC captions not found at {LEVIR}")
    mapping = json.loads((LEVIR / "vocab-501.json").read_text())
    vocab = Vocab.load(LEVIR / "vocab-501.json")
    assert vocab.to_dict() == mapping
    assert (vocab.null_id, vocab.unk_id, vocab.start_id, vocab.end_id) == (0, 1, 2, 3)


def test_build_counts_train_only_with_min_count_and_is_order_independent() -> None:
    records = [record("train", "a road is built") for _ in range(5)]
    records += [record("train", "a house") for _ in range(4)]  # "house": 4 < 5
    records += [record("test", "secret word") for _ in range(9)]  # test words never count
    vocab = Vocab.build(records, min_count=5)
    assert vocab.itos == [*SPECIALS, "a", "built", "is", "road"]
    assert "house" not in vocab and "secret" not in vocab
    shuffled = records[:]
    random.Random(1).shuffle(shuffled)
    assert Vocab.build(shuffled, min_count=5).itos == vocab.itos
    assert "house" in Vocab.build(records, min_count=4)
    with pytest.raises(ValueError, match="'train' split"):
        Vocab.build([record("test", "a b")])


def test_encode_decode_round_trip_on_real_captions(levir_records: list[PairRecord]) -> None:
    vocab = Vocab.build(levir_records)
    for r in levir_records[:200]:
        if r.split != "train":
            continue
        for caption in r.captions:
            ids = vocab.encode(caption, max_len=41)
            assert len(ids) == 41 and ids[0] == vocab.start_id
            assert ids[len(caption) + 1] == vocab.end_id
            assert set(ids[len(caption) + 2:]) <= {vocab.null_id}
            if all(w in vocab for w in caption):
                assert vocab.decode(ids) == list(caption)


def test_encode_pads_truncates_keeping_end_and_maps_unknowns() -> None:
    vocab = Vocab(["a", "b", "c"])
    assert vocab.encode(["a", "b"], 6) == [2, 4, 5, 3, 0, 0]
    assert vocab.encode(["a", "zzz"], 4) == [2, 4, 1, 3]
    assert vocab.encode(["a", "b", "c", "a"], 4) == [2, 4, 5, 3], "long captions keep <END>"
    assert vocab.decode([2, 4, 1, 5, 3, 6, 0]) == ["a", "b"], "stops at <END>, drops specials"
    assert vocab.decode([4, 5]) == ["a", "b"]
    with pytest.raises(ValueError, match="max_len"):
        vocab.encode(["a"], 1)


def test_dict_and_file_round_trip_and_validation(tmp_path: Path) -> None:
    vocab = Vocab(["road", "house"])
    assert Vocab.from_dict(vocab.to_dict()).itos == vocab.itos
    vocab.save(tmp_path / "vocab.json")
    assert Vocab.load(tmp_path / "vocab.json").itos == vocab.itos
    assert json.loads((tmp_path / "vocab.json").read_text()) == {
        "<NULL>": 0, "<UNK>": 1, "<START>": 2, "<END>": 3, "road": 4, "house": 5,
    }
    with pytest.raises(ValueError, match="0..n-1"):
        Vocab.from_dict({"<NULL>": 0, "<UNK>": 1, "<START>": 2, "<END>": 3, "a": 5})
    with pytest.raises(ValueError, match="must start with"):
        Vocab.from_dict({"<UNK>": 0, "<NULL>": 1, "<START>": 2, "<END>": 3})
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="bad.json: expected a JSON object"):
        Vocab.load(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="unique"):
        Vocab(["a", "a"])
