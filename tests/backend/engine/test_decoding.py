"""Greedy and beam search on toy step functions with known answers (numpy only, no model)."""

from __future__ import annotations

import numpy as np
import pytest

from hisem.engine.decoding import END_ID, START_ID, Hypothesis, beam_search, greedy_search


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
def test_beam_of_one_is_greedy(seed: int) -> None:
    tables = random_tables(tiles=6, vocab=12, seed=seed, temperature=0.7)
    memory = tile_memory(6)
    greedy = greedy_search(markov_step(tables), memory, max_len=9)
    beams = beam_search(markov_step(tables), memory, max_len=9, beam=1, n_best=1)
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
    first, second = greedy_search(step, tile_memory(2), max_len=5)
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


@pytest.mark.parametrize(("beam", "n_best", "max_len"), [(0, 1, 5), (2, 3, 5), (2, 0, 5), (2, 1, 1)])
def test_bad_arguments(beam: int, n_best: int, max_len: int) -> None:
    step = markov_step(random_tables(1, 6, 0))
    with pytest.raises(ValueError):
        beam_search(step, tile_memory(1), max_len=max_len, beam=beam, n_best=n_best)
