"""weights.pt: what a model folder keeps for fine-tuning, small enough for resources/models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hisem.model import build_model, load_checkpoint, save_checkpoint
from hisem.model.checkpoint import packaged_backbone_keys, save_weights

VOCAB = {"<NULL>": 0, "<UNK>": 1, "<START>": 2, "<END>": 3, "road": 4}


def _close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:  # float16 storage: 2^-11 relative rounding at most
        assert torch.allclose(a[key].float(), b[key].float(), rtol=1e-3, atol=1e-6), key


def test_tiny_weights_keep_everything(tmp_path: Path) -> None:
    model = build_model("tiny", vocab_size=len(VOCAB))
    assert packaged_backbone_keys(model) == []  # a random backbone cannot be fetched again
    save_weights(tmp_path / "weights.pt", model, VOCAB, {"model_id": "t"})
    loaded, vocab, extra = load_checkpoint(tmp_path / "weights.pt")
    assert vocab == VOCAB and extra == {"model_id": "t"}
    _close(loaded.state_dict(), model.state_dict())


@pytest.mark.slow
def test_lite_weights_leave_the_packaged_backbone_out(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("lite", vocab_size=500)
    keys = packaged_backbone_keys(model)
    assert keys and all(k.startswith("backbone.") for k in keys)
    save_weights(tmp_path / "weights.pt", model, VOCAB, {})
    save_checkpoint(tmp_path / "full.pt", model, VOCAB, {})
    # float16 matrices and no backbone: well under half the full checkpoint
    assert (tmp_path / "weights.pt").stat().st_size < 0.5 * (tmp_path / "full.pt").stat().st_size
    assert (tmp_path / "weights.pt").stat().st_size < 18e6
    loaded = load_checkpoint(tmp_path / "weights.pt")[0]
    _close(loaded.state_dict(), model.state_dict())
    # the package's weights are checked against the ones the model was trained with
    payload = torch.load(tmp_path / "weights.pt", weights_only=True)
    payload["omitted"]["sha256"] = "0" * 64
    torch.save(payload, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="differ from those this model was trained with"):
        load_checkpoint(tmp_path / "other.pt")
