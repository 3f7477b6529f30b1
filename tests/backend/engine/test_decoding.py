"""Greedy and beam search on toy step functions with known answers (numpy only, no model)."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from hisem.engine.decoding import END_ID, START_ID, Hypothesis, beam_search, greedy_search, repetition_mask


def markov_step(tables: np.ndarray):
    """A step function whose next-token log-probs depend on the tile and the last token only.

    ``tables`` (tiles, V, V) holds log-probs; memory row 0 carries the tile index. Each call's
    batch size is recorded in ``step.batches``.
    """

    def step(memory: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        step.batches.append(len(tokens))
        tile = memory[:, 0, 0].astype(int)
        return tables[tile, tokens[:, -1]].astype(np.float32)

    step.batches = []  # type: ignore[attr-defined]
    return step


def random_tables(tiles: int, vocab: int, seed: int, temperature: float = 1.0) -> np.ndarray:
    logits = np.random.default_rng(seed).normal(size=(tiles, vocab, vocab)) / temperature
    return logits - np.log(np.exp(logits).sum(-1, keepdims=True))  # log-softmax


def tile_memory(tiles: int) -> np.ndarray:
    return np.arange(tiles, dtype=np.float32)[:, None, None] * np.ones((1, 2, 3), np.float32)


def log_probs_table(probs: dict[int, dict[int, float]], vocab: int) -> np.ndarray:
    """One tile's (V, V) table from {previous: {next: p}}, the rest of each row spread evenly."""
    table = np.full((vocab, vocab), 1e-9)
    for prev, row in probs.items():
        rest = (1.0 - sum(row.values())) / (vocab - len(row))
        table[prev] = rest
        for nxt, p in row.items():
            table[prev, nxt] = p
    return np.log(table)[None]


def test_beam_finds_what_greedy_misses() -> None:
    a, b, v = 4, 5, 8
    # START -> A (0.5) or B (0.4); after A nothing is likely (END 0.2 at best); after B, END 0.95.
    table = log_probs_table({START_ID: {a: 0.5, b: 0.4}, a: {END_ID: 0.2}, b: {END_ID: 0.95}}, v)
    (greedy,) = greedy_search(markov_step(table), tile_memory(1), max_len=6)
    (beams,) = beam_search(markov_step(table), tile_memory(1), max_len=6, beam=2, n_best=2)
    assert greedy.tokens == (a, END_ID) and greedy.log_prob == pytest.approx(np.log(0.5 * 0.2), rel=1e-5)
    assert beams[0].tokens == (b, END_ID) and beams[0].log_prob == pytest.approx(np.log(0.4 * 0.95), rel=1e-5)
    assert beams[0].score() > greedy.score() and beams[1].score() <= beams[0].score()


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("ngram", "sep"), [(0, None), (3, None), (2, 5), (3, 5)])
def test_beam_of_one_is_greedy(seed: int, ngram: int, sep: int | None) -> None:
    tables = random_tables(tiles=6, vocab=12, seed=seed, temperature=0.7)
    memory = tile_memory(6)
    greedy = greedy_search(markov_step(tables), memory, max_len=9, no_repeat_ngram=ngram, clause_sep=sep)
    beams = beam_search(markov_step(tables), memory, max_len=9, beam=1, n_best=1, no_repeat_ngram=ngram,
                        clause_sep=sep)
    assert [[h] for h in greedy] == beams  # same tokens, same float scores, same finished flags


@pytest.mark.parametrize("seed", range(5))
def test_beam_n_best_sorted_finite_and_not_worse_than_greedy(seed: int) -> None:
    tables = random_tables(tiles=5, vocab=10, seed=seed)
    memory = tile_memory(5)
    greedy = greedy_search(markov_step(tables), memory, max_len=8)
    beams = beam_search(markov_step(tables), memory, max_len=8, beam=4, n_best=3)
    for g, hyps in zip(greedy, beams, strict=True):
        scores = [h.score() for h in hyps]
        assert len(hyps) == 3 and np.isfinite(scores).all() and scores == sorted(scores, reverse=True)
        assert len({h.tokens for h in hyps}) == 3
        assert all(len(h.tokens) <= 7 and (h.tokens[-1] == END_ID) == h.finished for h in hyps)
        assert scores[0] >= g.score() - 1e-9


def test_greedy_steps_only_unfinished_tiles_and_stops_at_max_len() -> None:
    v = 6
    ends_now = log_probs_table({START_ID: {END_ID: 0.9}}, v)  # tile 0 ends at once
    never_ends = log_probs_table({START_ID: {4: 0.9}, 4: {4: 0.9}}, v)  # tile 1 repeats word 4
    step = markov_step(np.concatenate([ends_now, never_ends]))
    first, second = greedy_search(step, tile_memory(2), max_len=5, no_repeat_ngram=0)
    assert first == Hypothesis((END_ID,), pytest.approx(np.log(0.9)), True)
    assert second.tokens == (4, 4, 4, 4) and not second.finished
    assert step.batches == [2, 1, 1, 1]


def test_length_penalty_prefers_longer_confident_captions() -> None:
    a, b, w, v = 4, 5, 6, 8
    # "A END": 0.5 * 0.4 = 0.2 (sum -1.61, mean -0.80 per token);
    # "B W END": 0.45 * 0.6 * 0.6 = 0.162 (sum -1.82, lower; mean -0.61, higher).
    table = log_probs_table({START_ID: {a: 0.5, b: 0.45}, a: {END_ID: 0.4}, b: {w: 0.6}, w: {END_ID: 0.6}}, v)
    step, memory = markov_step(table), tile_memory(1)
    plain = beam_search(step, memory, max_len=6, beam=3, n_best=2)[0]
    normed = beam_search(step, memory, max_len=6, beam=3, n_best=2, length_penalty=1.0)[0]
    assert [h.tokens for h in plain] == [(a, END_ID), (b, w, END_ID)]
    assert [h.tokens for h in normed] == [(b, w, END_ID), (a, END_ID)]
    assert normed[0].score(1.0) == pytest.approx(np.log(0.162) / 3, rel=1e-5)


@pytest.mark.parametrize(("beam", "n_best", "max_len", "ngram"),
                         [(0, 1, 5, 3), (2, 3, 5, 3), (2, 0, 5, 3), (2, 1, 1, 3), (2, 1, 5, -1)])
def test_bad_arguments(beam: int, n_best: int, max_len: int, ngram: int) -> None:
    step = markov_step(random_tables(1, 6, 0))
    with pytest.raises(ValueError):
        beam_search(step, tile_memory(1), max_len=max_len, beam=beam, n_best=n_best, no_repeat_ngram=ngram)
    with pytest.raises(ValueError, match="no_repeat_ngram"):
        greedy_search(step, tile_memory(1), max_len=5, no_repeat_ngram=-1)


# --- repetition blocking -------------------------------------------------------------------------------------------
S, E = START_ID, END_ID
A, B, C, D, AND = 4, 5, 6, 7, 8


def banned(prefixes: list[list[int]], ngram: int, sep: int | None = None, vocab: int = 10) -> list[set[int]]:
    mask = repetition_mask(np.array(prefixes, dtype=np.int64), vocab, ngram, sep)
    return [set(np.flatnonzero(row).tolist()) for row in mask]


def test_repetition_mask_blocks_the_token_that_completes_a_repeated_ngram() -> None:
    rows = [[S, A, B, C, A, B],  # "a b" seen before, followed by c: c would repeat "a b c"
            [S, A, B, A, B, D],  # "b d" never seen before: nothing to block at n = 3
            [S, A, B, C, D, C]]  # "d c" is new; c repeats alone but n = 3 looks at pairs
    assert banned(rows, 3) == [{C}, set(), set()]
    assert banned(rows, 2) == [{C}, set(), {D}]  # the word after each earlier copy of the last word
    assert banned(rows, 1) == [{S, A, B, C}, {S, A, B, D}, {S, A, B, C, D}]  # every word seen
    assert banned(rows, 0) == [set(), set(), set()]
    assert banned(rows, 7) == [set(), set(), set()]  # longer than the prefix: nothing yet
    assert banned([[S, A, B, A, B, A]], 2) == [{B}] and banned([[S, A, A]], 2) == [{A}]


def test_repetition_mask_blocks_closing_a_repeated_clause() -> None:
    rows = [[S, A, B, AND, A, B],  # the open clause "a b" equals the first: no "and", no <END> now
            [S, C, A, B, AND, A],  # "a" is not "c a b"
            [S, A, AND, B, AND, B],  # "b" repeats the second clause
            [S, A, B, AND, C, D]]
    assert banned(rows, 9, sep=AND) == [{AND, E}, set(), {AND, E}, set()]
    assert banned(rows, 9) == [set(), set(), set(), set()]  # without a separator, clauses are not known
    assert banned(rows, 0, sep=AND) == [set(), set(), set(), set()]  # 0 turns all blocking off


# "a tree has been cut down and a tree has been cut down and ...": a caption that loops. Words (ids 4-11):
WORDS = ("a", "tree", "has", "been", "cut", "down", "and", "here")
LOOP = {w: i + 4 for i, w in enumerate(WORDS)}
CLAUSE = ("a", "tree", "has", "been", "cut", "down")


def loop_table() -> np.ndarray:
    """Markov log-probs that prefer going around the clause again to ending it."""
    ids = LOOP
    # Each word leads to the next with p 0.95; "down" goes on with "and" (0.9) rather than ending (0.05).
    follow = {START_ID: {ids["a"]: 0.95}}
    for prev, nxt in (("a", "tree"), ("has", "been"), ("been", "cut"), ("cut", "down"), ("and", "a")):
        follow[ids[prev]] = {ids[nxt]: 0.95}
    follow[ids["tree"]] = {ids["has"]: 0.9, ids["here"]: 0.08}
    follow[ids["down"]] = {ids["and"]: 0.9, END_ID: 0.05, ids["here"]: 0.04}
    follow[ids["here"]] = {END_ID: 0.6, ids["and"]: 0.3}
    return log_probs_table(follow, len(WORDS) + 4)


def words(h: Hypothesis) -> list[str]:
    names = {i: w for w, i in LOOP.items()} | {END_ID: "<END>"}
    return [names.get(t, "?") for t in h.tokens]


def has_repeat(tokens: tuple[int, ...], n: int) -> bool:
    grams = [tokens[i:i + n] for i in range(len(tokens) - n + 1)]
    return len(grams) != len(set(grams))


def clauses(h: Hypothesis) -> list[str]:
    return " ".join(w for w in words(h) if w != "<END>").split(" and ")


def test_an_unblocked_decode_loops_and_a_blocked_one_does_not() -> None:
    table, memory = loop_table(), tile_memory(1)
    (loop,) = greedy_search(markov_step(table), memory, max_len=30, no_repeat_ngram=0)
    assert not loop.finished and clauses(loop)[:3] == [" ".join(CLAUSE)] * 3  # round and round to max_len
    (greedy,) = greedy_search(markov_step(table), memory, max_len=30)  # the default: 3-grams blocked
    (beams,) = beam_search(markov_step(table), memory, max_len=30, beam=3, n_best=3)
    for h in (greedy, *beams):
        assert h.finished and not has_repeat(h.tokens, 3), words(h)
        assert clauses(h).count(" ".join(CLAUSE)) <= 1
    # "a tree" cannot go on to "has" again: it says something else and ends.
    assert words(greedy) == [*CLAUSE, "and", "a", "tree", "here", "<END>"]
    # Scores stay the model's own log-probs of the chosen words (blocking renormalises nothing).
    path = [START_ID, *greedy.tokens]
    assert greedy.log_prob == pytest.approx(sum(table[0, p, n] for p, n in pairwise(path)), rel=1e-6)


@pytest.mark.parametrize("beam", [1, 5])
def test_no_clause_repeats_whatever_the_ngram_size(beam: int) -> None:
    table, memory = loop_table(), tile_memory(1)

    def search(ngram: int, sep: int | None) -> list[Hypothesis]:
        return beam_search(markov_step(table), memory, max_len=30, beam=beam, n_best=beam, no_repeat_ngram=ngram,
                           clause_sep=sep)[0]

    def repeats_a_clause(h: Hypothesis) -> bool:
        return len(clauses(h)) != len(set(clauses(h)))

    # 8-grams alone let the 6-word clause come back once (its first 8-gram repeats only after that) ...
    assert any(clauses(h)[:2] == [" ".join(CLAUSE)] * 2 for h in search(8, None))
    # ... the clause rule does not: a second clause must differ from the first before it can close.
    for ngram in (2, 3, 8, 20):
        hyps = search(ngram, LOOP["and"])
        assert all(h.finished for h in hyps) and not any(repeats_a_clause(h) for h in hyps), ngram


@pytest.mark.parametrize("seed", range(4))
def test_blocked_beams_hold_no_repeats(seed: int) -> None:
    tables = random_tables(tiles=4, vocab=9, seed=seed, temperature=0.5)  # peaked: loops without blocking
    memory = tile_memory(4)
    unblocked = beam_search(markov_step(tables), memory, max_len=14, beam=4, n_best=4, no_repeat_ngram=0)
    assert any(has_repeat(h.tokens, 3) for hyps in unblocked for h in hyps)  # the test can fail
    for n in (2, 3):
        for hyps in beam_search(markov_step(tables), memory, max_len=14, beam=4, n_best=4, no_repeat_ngram=n):
            assert len(hyps) == 4 and not any(has_repeat(h.tokens, n) for h in hyps)
            scores = [h.score() for h in hyps]
            assert np.isfinite(scores).all() and scores == sorted(scores, reverse=True)
