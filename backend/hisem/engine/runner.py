"""What every runner offers (ONNX Runtime for inference, PyTorch for parity) and the captioning on top.

Tiles are uint8 arrays **(B, 3, S, S), channels first, RGB** — the layout GDAL's ``ReadAsArray``
returns for a band stack — with S the model's ``tile_size``. Runners implement ``encode`` and
``step``; ``caption_tiles`` turns them into captions the same way for both, so a difference between
runners can only come from the two graphs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from hisem.data.vocab import Vocab
from hisem.engine.decoding import NO_REPEAT_NGRAM, Hypothesis, beam_search, check_no_repeat_ngram, greedy_search

CLAUSE_SEPARATOR = "and"  # LEVIR-CC and the generator join clauses with "and": no clause may repeat


@dataclass
class TileResult:
    """One tile's answer: P(changed), the change-probability map and the n best captions."""

    change_prob: float
    mask_prob: np.ndarray  # (S, S) float32 in [0, 1]
    captions: list[tuple[str, float]] = field(default_factory=list)  # (text, score), best first


class Runner(Protocol):
    """A loaded model that encodes tile pairs and scores next tokens."""

    @property
    def metadata(self) -> dict[str, Any]: ...

    @property
    def tile_size(self) -> int: ...

    @property
    def providers(self) -> list[str]: ...

    def encode(self, before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """uint8 (B, 3, S, S) pairs -> memory (B, ...: what ``step`` takes; the decoder's cross-attention
        keys/values), change_prob (B,), mask_prob (B, S, S) float32."""
        ...

    def step(self, memory: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """memory (N, ...) from ``encode``, tokens (N, T) int64 from <START> -> next-token log-probs (N, V)."""
        ...

    def caption(
        self,
        before: np.ndarray,
        after: np.ndarray,
        beam: int = 1,
        n_best: int = 1,
        max_len: int | None = None,
        length_penalty: float = 0.0,
        no_repeat_ngram: int = NO_REPEAT_NGRAM,
    ) -> list[TileResult]:
        """Per tile: P(changed), mask and the ``n_best`` captions (see ``caption_tiles``)."""
        ...


def check_tiles(before: np.ndarray, after: np.ndarray, tile_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate a batch of tile pairs; returns them as float32 0-255 for the encoder graph."""
    for name, arr in (("before", before), ("after", after)):
        if not isinstance(arr, np.ndarray) or arr.dtype != np.uint8:
            raise ValueError(f"{name}: expected a uint8 numpy array of raw RGB values, got "
                             f"{getattr(arr, 'dtype', type(arr).__name__)}")
        if arr.ndim != 4 or arr.shape[1:] != (3, tile_size, tile_size):
            raise ValueError(f"{name}: expected shape (B, 3, {tile_size}, {tile_size}) (channels first), "
                             f"got {arr.shape}")
    if before.shape != after.shape:
        raise ValueError(f"before {before.shape} and after {after.shape} hold different numbers of tiles")
    return before.astype(np.float32), after.astype(np.float32)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function without overflow warnings for large negative logits."""
    return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32)


def decode_limit(metadata: dict[str, Any], max_len: int | None) -> int:
    """Tokens per caption counting <START> and <END>: the request, capped at the model's maximum."""
    model_max = int(metadata["max_len"])
    return model_max if max_len is None else max(2, min(int(max_len), model_max))


def caption_tiles(
    runner: Runner,
    vocab: Vocab,
    before: np.ndarray,
    after: np.ndarray,
    beam: int = 1,
    n_best: int = 1,
    max_len: int | None = None,
    length_penalty: float = 0.0,
    no_repeat_ngram: int = NO_REPEAT_NGRAM,
) -> list[TileResult]:
    """Encode a batch of tile pairs and caption them: greedy for ``beam=1``, else beam search.

    ``no_repeat_ngram``: no n-gram of that many words and no clause repeats within a caption
    (0: off); see ``engine.decoding``.
    """
    if beam < 1 or not 1 <= n_best <= beam:
        raise ValueError(f"need beam >= 1 and 1 <= n_best <= beam, got beam={beam}, n_best={n_best}")
    check_no_repeat_ngram(no_repeat_ngram)
    memory, change_prob, mask_prob = runner.encode(before, after)
    limit = decode_limit(runner.metadata, max_len)
    sep = vocab.stoi.get(CLAUSE_SEPARATOR)
    hyps: list[list[Hypothesis]]
    if beam == 1:
        hyps = [[h] for h in greedy_search(runner.step, memory, limit, no_repeat_ngram, sep)]
    else:
        hyps = beam_search(runner.step, memory, limit, beam, n_best, length_penalty, no_repeat_ngram, sep)
    return [
        TileResult(
            change_prob=float(change_prob[i]),
            mask_prob=mask_prob[i],
            captions=[(" ".join(vocab.decode(h.tokens)), h.score(length_penalty)) for h in tile_hyps],
        )
        for i, tile_hyps in enumerate(hyps)
    ]
