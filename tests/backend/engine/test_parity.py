"""ONNX Runtime vs PyTorch on a trained tiny model: same numbers, same captions; int8 close to fp32."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from engine_support import TrainedModel

from hisem.data.vocab import Vocab
from hisem.engine import OrtRunner, beam_search, greedy_search
from hisem.engine import ort_runner as ort_module
from hisem.engine.decoding import START_ID

ATOL = 1e-4


def repeats(caption: str, n: int) -> bool:
    """Whether a caption holds an n-gram twice or a clause (words between "and"s) twice."""
    words = caption.split()
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    clauses = caption.split(" and ")
    return len(grams) != len(set(grams)) or len(clauses) != len(set(clauses))


@pytest.mark.parametrize("batch", [1, 3, 8])
def test_encoder_outputs_match(ort_fp32, torch_runner, held_out, batch: int) -> None:
    _, before, after = held_out
    got = ort_fp32.encode(before[:batch], after[:batch])
    expected = torch_runner.encode(before[:batch], after[:batch])
    # cross_kv (B, 2 * layers, H, L, D/H): one decoder layer, 4 heads (tiny), L = 8 * 8, D = 64
    shapes = [(batch, 2, 4, 64, 16), (batch,), (batch, 64, 64)]
    for name, g, e, shape in zip(("cross_kv", "change_prob", "mask_prob"), got, expected, shapes, strict=True):
        assert g.dtype == e.dtype == np.float32 and g.shape == e.shape == shape, name
        np.testing.assert_allclose(g, e, rtol=0, atol=ATOL, err_msg=name)
    mask = got[2]
    assert mask.min() >= 0.0 and mask.max() <= 1.0


@pytest.mark.parametrize(("batch", "length"), [(1, 1), (1, 40), (4, 6), (7, 17)])
def test_step_log_probs_match(ort_fp32, torch_runner, held_out, batch: int, length: int) -> None:
    _, before, after = held_out
    memory = torch_runner.encode(before[:batch], after[:batch])[0]
    rng = np.random.default_rng(length)
    tokens = rng.integers(4, len(torch_runner.vocab), (batch, length))
    tokens[:, 0] = START_ID
    got, expected = ort_fp32.step(memory, tokens), torch_runner.step(memory, tokens)
    assert got.shape == (batch, len(ort_fp32.vocab)) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)
    np.testing.assert_allclose(np.exp(got).sum(axis=1), 1.0, atol=1e-4)  # log-softmax


@pytest.mark.parametrize(("beam", "ngram"), [(1, 3), (1, 0), (1, 1), (3, 3), (3, 0), (3, 1)])
def test_captions_match(ort_fp32, torch_runner, held_out, beam: int, ngram: int) -> None:
    """Both runners decode with the one search and the one repetition rule: same captions, on or off.

    The tiny model repeats no 3-gram on its own ("the scene is the same as before" repeats "the"):
    n = 1 is the case where blocking changes its captions, checked below.
    """
    _, before, after = held_out
    got = ort_fp32.caption(before, after, beam=beam, n_best=beam, no_repeat_ngram=ngram)
    expected = torch_runner.caption(before, after, beam=beam, n_best=beam, no_repeat_ngram=ngram)
    assert [[t for t, _ in r.captions] for r in got] == [[t for t, _ in r.captions] for r in expected]
    scores = [[s for _, s in r.captions] for r in got], [[s for _, s in r.captions] for r in expected]
    np.testing.assert_allclose(*scores, atol=ATOL)
    texts = [text for r in got for text, _ in r.captions]
    assert all("<" not in text for text in texts)  # words only, no specials
    assert beam > 1 or all(texts)  # (a weak model's beam alternatives may end at once: "")
    assert all(r.mask_prob.shape == (64, 64) and 0.0 <= r.change_prob <= 1.0 for r in got)
    if ngram:
        assert not any(repeats(text, ngram) for text in texts)
    if ngram == 1:
        unblocked = ort_fp32.caption(before, after, beam=beam, n_best=beam, no_repeat_ngram=0)
        assert any(a.captions != b.captions for a, b in zip(got, unblocked, strict=True))


def test_metadata_read_from_the_graphs(ort_fp32, torch_runner, trained: TrainedModel) -> None:
    meta = ort_fp32.metadata
    assert meta["model_id"] == "tiny-synthetic-test" and ort_fp32.tile_size == 64
    for key in ("config", "vocab", "tile_size", "gsd_m", "bands", "normalization", "max_len", "metrics"):
        assert meta[key] == torch_runner.metadata[key], key


def test_beam_search_on_the_model(ort_fp32, held_out) -> None:
    _, before, after = held_out
    memory = ort_fp32.encode(before[:12], after[:12])[0]
    limit = ort_fp32.metadata["max_len"]
    greedy = greedy_search(ort_fp32.step, memory, limit)
    assert [[h] for h in greedy] == beam_search(ort_fp32.step, memory, limit, beam=1, n_best=1)
    results = ort_fp32.caption(before[:12], after[:12], beam=3, n_best=3)
    for g, result in zip(greedy, results, strict=True):
        scores = [score for _, score in result.captions]
        assert len(scores) == 3 and np.isfinite(scores).all() and scores == sorted(scores, reverse=True)
        assert scores[0] >= g.score() - 1e-9


def test_int8_agrees_with_fp32(ort_fp32, ort_int8, held_out, record_property) -> None:
    records, before, after = held_out
    fp32, int8 = ort_fp32.caption(before, after), ort_int8.caption(before, after)
    pairs = list(zip(fp32, int8, strict=True))
    captions = float(np.mean([a.captions[0][0] == b.captions[0][0] for a, b in pairs]))
    flags = float(np.mean([(a.change_prob > 0.5) == (b.change_prob > 0.5) for a, b in pairs]))
    # Next-token agreement under teacher forcing on the references: sensitive even when the tiny model
    # gives many tiles the same caption.
    vocab = Vocab.from_dict(ort_fp32.metadata["vocab"])
    refs = np.array([vocab.encode(r.captions[0], 12) for r in records])  # (N, 12) <START> w... <END> <NULL>
    mem32, mem8 = ort_fp32.encode(before, after)[0], ort_int8.encode(before, after)[0]
    same = []
    for t in range(1, 11):
        rows = np.flatnonzero(~np.isin(refs[:, t - 1], [0, 3]))  # captions still going at position t
        a = ort_fp32.step(mem32[rows], refs[rows, :t]).argmax(1)
        b = ort_int8.step(mem8[rows], refs[rows, :t]).argmax(1)
        same.extend(a == b)
    tokens = float(np.mean(same))
    agreement = {"captions": captions, "change_flags": flags, "next_tokens": tokens}
    for name, value in agreement.items():
        record_property(f"int8_agreement_{name}", value)
    print(f"int8 vs fp32 on {len(records)} held-out pairs ({len(same)} next tokens): "
          + ", ".join(f"{k} {v:.1%}" for k, v in agreement.items()))
    # int8 graphs are opt-in (decisions.md 26: no faster than fp32, 75 % caption agreement on the lite
    # model): what must hold is the step itself - the next token agrees under teacher forcing. Whole
    # captions and flags of a tiny model with P(changed) near 0.5 move with any rounding; they are
    # recorded above, and bounded loosely so that a broken quantisation still fails.
    assert tokens >= 0.9 and flags >= 0.75 and captions >= 0.6


def test_tiles_are_checked(ort_fp32, held_out) -> None:
    _, before, after = held_out
    with pytest.raises(ValueError, match="uint8"):
        ort_fp32.encode(before[:2].astype(np.float32), after[:2])
    with pytest.raises(ValueError, match="channels first"):
        ort_fp32.encode(before[:2].transpose(0, 2, 3, 1), after[:2].transpose(0, 2, 3, 1))
    with pytest.raises(ValueError, match="different numbers"):
        ort_fp32.encode(before[:2], after[:3])
    with pytest.raises(ValueError, match="n_best"):
        ort_fp32.caption(before[:1], after[:1], beam=2, n_best=3)


def test_providers_are_the_ones_in_use(trained: TrainedModel, monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime as ort

    available = ort.get_available_providers()
    runner = OrtRunner(trained.model_dir, providers="auto")
    assert runner.providers and set(runner.providers) <= set(available)
    if "CUDAExecutionProvider" not in available:
        assert runner.providers == ["CPUExecutionProvider"]
        # asked for CUDA without it: ONNX Runtime falls back, and the runner says so
        with pytest.warns(UserWarning, match="CUDAExecutionProvider"):
            asked = OrtRunner(trained.model_dir, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
        assert asked.providers == ["CPUExecutionProvider"]
    both = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(ort_module.ort, "get_available_providers", lambda: both)
    assert ort_module.choose_providers("auto") == both
    monkeypatch.setattr(ort_module.ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert ort_module.choose_providers("auto") == ["CPUExecutionProvider"]


def test_foreign_onnx_files_are_refused(trained: TrainedModel, tmp_path: Path) -> None:
    folder = tmp_path / "foreign"
    shutil.copytree(trained.model_dir, folder)
    proto = onnx.load(str(folder / "decoder_step.onnx"))
    del proto.metadata_props[:]
    onnx.save(proto, str(folder / "decoder_step.onnx"))
    with pytest.raises(ValueError, match="not a HiSem model export"):
        OrtRunner(folder)
    with pytest.raises(FileNotFoundError, match="int8"):
        OrtRunner(tmp_path / "nothing-here", precision="int8")
