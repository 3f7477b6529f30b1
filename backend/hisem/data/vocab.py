"""Word vocabulary: the four special tokens, then the training split's frequent words.

The ids and the JSON file format (``{"word": id}``) are those of RSCaMa/HiSem's ``vocab.json``
(``<NULL>`` 0, ``<UNK>`` 1, ``<START>`` 2, ``<END>`` 3, then words in sorted order), so their files
load as they are. Unlike the field, which counts words over every split (test included), ``build``
counts the training split only: no test word leaks into the model.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from hisem.data.readers import PairRecord

NULL, UNK, START, END = "<NULL>", "<UNK>", "<START>", "<END>"
SPECIALS = (NULL, UNK, START, END)


class Vocab:
    """Bidirectional word <-> id map with the encode/decode rules of the caption decoder."""

    def __init__(self, words: Sequence[str]) -> None:
        """``words``: the ordinary words in id order; the specials take ids 0-3 before them."""
        self.itos: list[str] = [*SPECIALS, *words]
        self.stoi: dict[str, int] = {w: i for i, w in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("vocabulary words must be unique and must not repeat a special token")
        self.null_id, self.unk_id, self.start_id, self.end_id = range(4)

    @classmethod
    def build(cls, records: Iterable[PairRecord], min_count: int = 5) -> Vocab:
        """Words seen at least ``min_count`` times in the references of the ``train`` records."""
        counts: Counter[str] = Counter()
        n_train = 0
        for record in records:
            if record.split != "train":
                continue
            n_train += 1
            for caption in record.captions:
                counts.update(caption)
        if n_train == 0:
            raise ValueError("no records of the 'train' split: the vocabulary is built from training only")
        # Sorted order makes the ids independent of the order the records came in.
        return cls(sorted(w for w, n in counts.items() if n >= min_count and w not in SPECIALS))

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, word: object) -> bool:
        return word in self.stoi

    def encode(self, tokens: Sequence[str], max_len: int) -> list[int]:
        """``<START> w... <END>`` padded with ``<NULL>`` to ``max_len``; long captions keep ``<END>``."""
        if max_len < 2:
            raise ValueError(f"max_len must leave room for <START> and <END>, got {max_len}")
        ids = [self.stoi.get(t, self.unk_id) for t in tokens[: max_len - 2]]
        ids = [self.start_id, *ids, self.end_id]
        return ids + [self.null_id] * (max_len - len(ids))

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Words up to the first ``<END>``; every special token (``<UNK>`` included) is dropped."""
        words = []
        for i in ids:
            i = int(i)
            if i == self.end_id:
                break
            if i >= len(SPECIALS):
                words.append(self.itos[i])
        return words

    def to_dict(self) -> dict[str, int]:
        return dict(self.stoi)

    @classmethod
    def from_dict(cls, mapping: dict[str, int]) -> Vocab:
        """Inverse of ``to_dict``; checks that the ids are 0..n-1 with the specials first."""
        ordered = sorted(mapping.items(), key=lambda kv: kv[1])
        if [i for _, i in ordered] != list(range(len(ordered))):
            raise ValueError("vocabulary ids must be exactly 0..n-1")
        if tuple(w for w, _ in ordered[:4]) != SPECIALS:
            raise ValueError(f"vocabulary must start with {', '.join(SPECIALS)} at ids 0-3")
        return cls([w for w, _ in ordered[4:]])

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict()), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        path = Path(path)
        try:
            mapping = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from exc
        if not isinstance(mapping, dict):
            raise ValueError(f"{path}: expected a JSON object word -> id")
        try:
            return cls.from_dict(mapping)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc
