"""`hisem train --init MODEL`: fine-tuning from an installed model, a model folder, a run or a checkpoint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from hisem.cli import main as hisem_main
from hisem.data.vocab import Vocab
from hisem.model import load_checkpoint
from hisem.model.checkpoint import WEIGHTS_FILE
from hisem.training.trainer import Trainer, TrainOptions


def _opts(data: Path, out: Path, init: Path | str, **kw: object) -> TrainOptions:
    return TrainOptions(data=str(data), out=str(out), init=str(init), **kw)


@pytest.mark.slow
def test_fine_tune_a_model_folder_then_export_it(synth40: Path, parent_model: Path, tmp_path: Path) -> None:
    run, child = tmp_path / "run", tmp_path / "child"
    assert hisem_main(["train", "--init", str(parent_model), "--data", str(synth40), "--max-steps", "5",
                       "--out", str(run), "--device", "cpu"]) == 0
    model, vocab, extra = load_checkpoint(run / "last.pt")
    parent_vocab = json.loads((parent_model / "model.json").read_text())["vocab"]
    assert vocab == parent_vocab  # new words read as <UNK> without --extend-vocab
    assert extra["vocabulary"]["unknown_words"] > 0 and not extra["vocabulary"]["extended"]
    # the fine-tuning defaults: backbone frozen, cosine from 1e-4, 3 epochs (1 step each at batch 32)
    options = extra["options"]
    assert (options["epochs"], options["lr"], options["lr_schedule"]) == (3, 1e-4, "cosine")
    assert model.cfg.encoder.freeze and not any(p.requires_grad for p in model.backbone.parameters())
    lrs = [json.loads(line)["lr"] for line in (run / "history.jsonl").read_text().splitlines()]
    assert len(lrs) == 3 and lrs[0] == 1e-4 and lrs[0] > lrs[1] > lrs[2] > 0
    assert hisem_main(["export", "--model", str(run), "-o", str(child), "--id", "X"]) == 0
    card = json.loads((child / "model.json").read_text())
    assert card["model_id"] == "X"
    assert card["parent_model"]["model_id"] == "tiny-parent" and card["parent_model"]["source"] == "model folder"
    assert card["parent_model"]["training_data"]["dataset"] == "pairs40"
    assert card["training_data"]["dataset"] == "pairs40" and card["training_data"]["fine_tuned_from"] == "tiny-parent"
    assert card["training_data"]["train_pairs"] == 32
    assert card["vocabulary"]["source"] == "parent model tiny-parent"
    assert card["selection"]["metric"] == "sm"
    assert (child / WEIGHTS_FILE).is_file()  # a fine-tuned model can be fine-tuned again
    # MODEL_CARD.md's lines (hisem card) name the parent, the selection and the vocabulary
    from hisem.modelcard import _training_section, _vocabulary_line

    section = _training_section(run)
    assert "- Fine-tuned from `tiny-parent`" in section and "best epoch by validation S*m" in section
    assert "parent model tiny-parent's" in _vocabulary_line(str(run / "last.pt"))


def test_starts_from_the_parent_weights(synth40: Path, parent_model: Path, tmp_path: Path) -> None:
    trainer = Trainer(_opts(synth40, tmp_path / "run", parent_model))
    exported = load_checkpoint(parent_model / WEIGHTS_FILE)[0].state_dict()
    trained = load_checkpoint(parent_model.parent / "run" / "best.pt")[0].state_dict()
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(value.cpu(), exported[key]), key
        # weights.pt keeps matrices in float16: the rounding is all that differs from the run
        assert torch.allclose(value.cpu().float(), trained[key].float(), rtol=1e-3, atol=1e-4), key


def test_installed_model_id_run_folder_and_checkpoint(
    synth40: Path, parent_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "models"
    shutil.copytree(parent_model, models / "some-folder-name")
    monkeypatch.setenv("HISEM_MODELS_DIR", str(models))
    trainer = Trainer(_opts(synth40, tmp_path / "a", "tiny-parent"))
    assert trainer.parent_info["source"] == "installed model" and trainer.parent_info["model_id"] == "tiny-parent"
    run = parent_model.parent / "run"
    assert Trainer(_opts(synth40, tmp_path / "b", run)).parent_info["source"] == "training run"
    trainer = Trainer(_opts(synth40, tmp_path / "c", run / "best.pt"))
    assert trainer.parent_info == {**trainer.parent_info, "source": "checkpoint", "model_id": "run"}


def test_extend_vocab_grows_the_word_rows(synth40: Path, parent_model: Path, tmp_path: Path) -> None:
    parent, parent_vocab, _ = load_checkpoint(parent_model / WEIGHTS_FILE)
    trainer = Trainer(_opts(synth40, tmp_path / "run", parent_model, extend_vocab=True, max_steps=1))
    vocab, model = trainer.vocab, trainer.model
    added = trainer.vocab_info["added_words"]
    assert added > 0 and len(vocab) == len(parent_vocab) + added == model.cfg.vocab_size
    assert Vocab.from_dict(parent_vocab).itos == vocab.itos[: len(parent_vocab)]  # old ids kept
    n = len(parent_vocab)
    assert torch.equal(model.decoder.embed.weight[:n], parent.decoder.embed.weight)
    assert model.decoder.head.weight.shape[0] == len(vocab)
    trainer.fit()
    assert load_checkpoint(tmp_path / "run" / "last.pt")[2]["vocabulary"]["extended"] is True


def test_clear_errors(synth40: Path, parent_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    no_weights = tmp_path / "v1-like"
    shutil.copytree(parent_model, no_weights)
    (no_weights / WEIGHTS_FILE).unlink()  # a folder exported before weights.pt existed
    args = ["train", "--data", str(synth40), "--out", str(tmp_path / "run"), "--device", "cpu", "--init"]
    assert hisem_main([*args, str(no_weights)]) == 2
    assert "carries no PyTorch weights (weights.pt)" in capsys.readouterr().err
    assert hisem_main([*args, "no-such-model"]) == 2
    assert "no model 'no-such-model'" in capsys.readouterr().err
    assert hisem_main([*args, str(parent_model), "--preset", "lite"]) == 2
    assert "keeps its parent's architecture" in capsys.readouterr().err
    assert hisem_main(args[:-1] + ["--extend-vocab"]) == 2
    assert "--extend-vocab only applies when fine-tuning" in capsys.readouterr().err


def test_train_backbone_unfreezes_it(synth40: Path, parent_model: Path, tmp_path: Path) -> None:
    trainer = Trainer(_opts(synth40, tmp_path / "run", parent_model, train_backbone=1))
    assert all(p.requires_grad for p in trainer.model.backbone.parameters())  # tiny: all of it
    assert not trainer.use_cache
