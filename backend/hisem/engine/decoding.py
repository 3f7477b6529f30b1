"""Caption search on numpy, over any ``step(memory, tokens) -> log_probs`` function (both runners').

Scores are sums of the log-probabilities of the generated tokens, ``<END>`` included (float64).
With ``length_penalty`` alpha > 0 a finished caption is ranked by ``sum / length ** alpha`` (length
counts ``<END>``); alpha = 0, the default, ranks by the plain sum. The beams themselves are always
pruned on plain sums.

Beam search follows the usual scheme: each step takes the 2k best extensions of a tile's live
beams; an ``<END>`` among the first k finishes a caption; the best k others stay live. A tile stops
when it has k finished captions and no live beam can still beat the k-th of them (log-probs are
<= 0, so a live sum can only fall; with a length penalty its best case is reaching ``max_len``
with the same sum), or at ``max_len``. Stopping at the first k finished captions (Hugging Face's
``early_stopping=True``) would often keep short, early captions over a better longer one.
With k = 1 and the plain sum this is exactly greedy decoding (same tokens, same scores): ties go
to the lower token id in both, and the same rows are stepped in the same order.

Both searches block repetition with one rule, ``repetition_mask``, applied to every row's
next-token log-probs before a token is chosen (a blocked token gets -inf; the others keep the
model's own log-probs, so scores stay sums of what the model said):
- no n-gram of ``no_repeat_ngram`` tokens appears twice in a caption (3 by default, as in the
  captioning literature's ``no_repeat_ngram_size``): a model that loops on "and a tree has been cut
  down" is stopped at the third word of the repeat;
- no clause appears twice: with ``clause_sep`` (the id of "and") a clause, the words between two
  separators, cannot be closed by a separator or ``<END>`` when it equals an earlier clause. The
  n-gram rule already stops repeats of clauses of ``no_repeat_ngram`` words or more; this one holds
  for shorter clauses and larger n too.
``no_repeat_ngram=0`` turns both off (the model's raw search). <END> is never blocked by the n-gram
rule (it never sits inside a prefix), so a caption can always end unless it would repeat a clause.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

NULL_ID, UNK_ID, START_ID, END_ID = 0, 1, 2, 3
NO_REPEAT_NGRAM = 3  # the default n of the repeated n-gram block (0: no repetition blocking)

# (memory (N, ...) float32 — batch first, opaque otherwise —, tokens (N, T) int64 from <START>) -> log-probs (N, V)
StepFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Hypothesis:
    tokens: tuple[int, ...]  # generated ids after <START>; ends with <END> when finished
    log_prob: float  # sum of the tokens' log-probabilities
    finished: bool  # produced <END> (False: stopped at max_len)

    def score(self, length_penalty: float = 0.0) -> float:
        """The ranking score: log_prob / len ** length_penalty (the plain sum at 0)."""
        if length_penalty == 0.0:
            return self.log_prob
        return self.log_prob / max(len(self.tokens), 1) ** length_penalty


def repetition_mask(
    prefixes: np.ndarray, vocab: int, no_repeat_ngram: int, clause_sep: int | None = None
) -> np.ndarray:
    """prefixes (N, T) int from <START> -> (N, vocab) bool: True where the next token would repeat.

    True for every token that completes an n-gram (n = ``no_repeat_ngram``) already in its row, and,
    with ``clause_sep``, for the separator and <END> when the open clause equals an earlier one.
    """
    rows, length = prefixes.shape
    banned = np.zeros((rows, vocab), dtype=bool)
    n = no_repeat_ngram
    if n <= 0:
        return banned
    if length >= n:
        windows = sliding_window_view(prefixes, n, axis=1)  # (N, T - n + 1, n): every complete n-gram
        tail = prefixes[:, length - n + 1:]  # (N, n - 1): what the next token would complete
        hit_row, hit_gram = np.nonzero((windows[:, :, :-1] == tail[:, None, :]).all(axis=2))
        banned[hit_row, windows[hit_row, hit_gram, -1]] = True
    if clause_sep is not None:
        for r, ids in enumerate(prefixes[:, 1:].tolist()):
            clauses = _clauses(ids, clause_sep)
            if clauses[-1] and clauses[-1] in clauses[:-1]:
                banned[r, [clause_sep, END_ID]] = True
    return banned


def _clauses(ids: list[int], sep: int) -> list[tuple[int, ...]]:
    """``a b SEP c`` -> [(a, b), (c,)]; the last one is the clause still open."""
    out: list[tuple[int, ...]] = []
    start = 0
    for i, token in enumerate(ids):
        if token == sep:
            out.append(tuple(ids[start:i]))
            start = i + 1
    out.append(tuple(ids[start:]))
    return out


def _blocked(lp: np.ndarray, prefixes: np.ndarray, no_repeat_ngram: int, clause_sep: int | None) -> np.ndarray:
    """``lp`` (N, V) float64 with the tokens ``repetition_mask`` forbids set to -inf (in place)."""
    if no_repeat_ngram > 0:
        lp[repetition_mask(prefixes, lp.shape[1], no_repeat_ngram, clause_sep)] = -np.inf
    return lp


def _check(memory: np.ndarray, max_len: int, no_repeat_ngram: int) -> None:
    if memory.ndim < 2:
        raise ValueError(f"memory must have a batch axis first and the step's own axes after it, got {memory.shape}")
    if max_len < 2:
        raise ValueError(f"max_len counts <START> and <END> and must be at least 2, got {max_len}")
    check_no_repeat_ngram(no_repeat_ngram)


def check_no_repeat_ngram(no_repeat_ngram: int) -> None:
    """The n-gram size is 0 (off) or positive."""
    if no_repeat_ngram < 0:
        raise ValueError(f"no_repeat_ngram must be 0 (off) or a positive n-gram size, got {no_repeat_ngram}")


def greedy_search(
    step: StepFn,
    memory: np.ndarray,
    max_len: int,
    no_repeat_ngram: int = NO_REPEAT_NGRAM,
    clause_sep: int | None = None,
) -> list[Hypothesis]:
    """The most probable allowed next token at every step, per tile; at most ``max_len - 1`` tokens."""
    _check(memory, max_len, no_repeat_ngram)
    batch = memory.shape[0]
    tokens = np.full((batch, 1), START_ID, dtype=np.int64)  # (B, 1)
    log_prob = np.zeros(batch, dtype=np.float64)
    active = np.ones(batch, dtype=bool)
    for _ in range(max_len - 1):
        rows = np.flatnonzero(active)
        # Only unfinished tiles are stepped; the finished ones are padded with <NULL>.
        mem = memory if rows.size == batch else memory[rows]
        prefixes = tokens[rows]
        lp = _blocked(step(mem, prefixes).astype(np.float64), prefixes, no_repeat_ngram, clause_sep)  # (n, V)
        nxt = lp.argmax(axis=1)  # first maximum on ties, as in beam search
        column = np.full(batch, NULL_ID, dtype=np.int64)
        column[rows] = nxt
        log_prob[rows] += lp[np.arange(rows.size), nxt]
        tokens = np.concatenate([tokens, column[:, None]], axis=1)  # (B, t + 1)
        active[rows[nxt == END_ID]] = False
        if not active.any():
            break
    out = []
    for i in range(batch):
        ids = [int(t) for t in tokens[i, 1:]]
        if END_ID in ids:
            ids = ids[: ids.index(END_ID) + 1]
        out.append(Hypothesis(tuple(ids), float(log_prob[i]), ids[-1:] == [END_ID]))
    return out


@dataclass
class _Tile:
    """One tile's search state: live beams (ids after <START>, sums) and finished captions."""

    live: list[tuple[tuple[int, ...], float]]
    finished: list[Hypothesis]
    done: bool = False


def beam_search(
    step: StepFn,
    memory: np.ndarray,
    max_len: int,
    beam: int = 3,
    n_best: int = 1,
    length_penalty: float = 0.0,
    no_repeat_ngram: int = NO_REPEAT_NGRAM,
    clause_sep: int | None = None,
) -> list[list[Hypothesis]]:
    """The ``n_best`` (<= ``beam``) best captions per tile, best first, by ``Hypothesis.score``."""
    _check(memory, max_len, no_repeat_ngram)
    if beam < 1 or not 1 <= n_best <= beam:
        raise ValueError(f"need beam >= 1 and 1 <= n_best <= beam, got beam={beam}, n_best={n_best}")
    tiles = [_Tile(live=[((), 0.0)], finished=[]) for _ in range(memory.shape[0])]
    for t in range(max_len - 1):
        # Every live beam of every unfinished tile, in tile order, as one batch for the step.
        owners = [(i, b) for i, tile in enumerate(tiles) if not tile.done for b in range(len(tile.live))]
        if not owners:
            break
        tile_of = np.array([i for i, _ in owners])
        prefixes = np.array([(START_ID, *tiles[i].live[b][0]) for i, b in owners], dtype=np.int64)  # (N, t+1)
        lp = step(memory[tile_of], prefixes).astype(np.float64)  # (N, V)
        lp = _blocked(lp, prefixes, no_repeat_ngram, clause_sep)
        last = t == max_len - 2
        for i in np.unique(tile_of):
            _extend(tiles[i], lp[tile_of == i], beam, length_penalty, max_len, last)
    return [_best(tile, n_best, length_penalty) for tile in tiles]


def _extend(tile: _Tile, lp: np.ndarray, beam: int, length_penalty: float, max_len: int, last: bool) -> None:
    """One step of one tile: ``lp`` (n_live, V) are its live beams' next-token log-probs."""
    vocab = lp.shape[1]
    sums = np.array([s for _, s in tile.live])[:, None] + lp  # (n_live, V)
    flat = sums.ravel()
    # Stable sort of the negated sums: equal sums keep the lower (beam, token) index first.
    order = np.argsort(-flat, kind="stable")[: 2 * beam]
    live: list[tuple[tuple[int, ...], float]] = []
    for rank, idx in enumerate(order):
        b, token = divmod(int(idx), vocab)
        ids = (*tile.live[b][0], token)
        if token == END_ID:
            if rank < beam:
                tile.finished.append(Hypothesis(ids, float(flat[idx]), True))
        elif len(live) < beam:
            live.append((ids, float(flat[idx])))
    tile.live = live
    if len(tile.finished) >= beam:
        kth = sorted((h.score(length_penalty) for h in tile.finished), reverse=True)[beam - 1]
        best_live = max(s for _, s in live)
        if length_penalty:
            best_live /= (max_len - 1) ** length_penalty  # the longest caption divides by the most
        if best_live <= kth:
            tile.done = True
            return
    if last:  # out of length: the live beams become (unfinished) candidates
        tile.finished.extend(Hypothesis(ids, s, False) for ids, s in live)
        tile.done = True


def _best(tile: _Tile, n_best: int, length_penalty: float) -> list[Hypothesis]:
    # sorted() is stable: equal scores keep the order they were found in.
    ranked = sorted(tile.finished, key=lambda h: -h.score(length_penalty))
    return ranked[:n_best]
