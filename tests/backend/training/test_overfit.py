"""The tiny model memorises 16 synthetic pairs: its greedy captions for them come out exact.

A model that cannot overfit a handful of pairs has a bug (a leaking mask, a wrong shift, a dead
path); this is the end-to-end check that data, model, loss and decoding fit together.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hisem.data.dataset import ChangeCaptionDataset
from hisem.data.readers import read_dataset
from hisem.data.vocab import Vocab
from hisem.model import build_model
from hisem.model.config import preset
from hisem.model.losses import total_loss
from tests.backend.conftest import make_synth

PAIRS = 16


@pytest.mark.slow
def test_tiny_model_overfits_16_pairs(tmp_path: Path) -> None:
    data = make_synth(tmp_path / "synth", pairs=PAIRS, seed=5, splits="1,0,0")
    records = read_dataset(data, split="train")
    assert len(records) == PAIRS
    vocab = Vocab.build(records, min_count=1)
    torch.manual_seed(0)
    model = build_model(preset("tiny", vocab_size=len(vocab)))
    enc = model.cfg.encoder
    # train=False: always the first reference, so there is one exact target per pair
    dataset = ChangeCaptionDataset(records, vocab, enc.image_size, enc.mean, enc.std, train=False)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(PAIRS)])
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    for _ in range(400):
        out = model(batch["before"], batch["after"], batch["tokens"][:, :-1], route=batch["changeflag"])
        loss, parts = total_loss(out, batch, router_weight=1.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if parts["caption"] < 0.01 and parts["router"] < 0.01:
            break
    model.eval()
    ids, out = model.generate(batch["before"], batch["after"])  # the router decides the path
    predicted = [" ".join(vocab.decode(row.tolist())) for row in ids]
    expected = [" ".join(vocab.decode(row.tolist())) for row in batch["tokens"]]
    assert predicted == expected
    assert torch.equal(out.router_logits.argmax(-1), batch["changeflag"])
