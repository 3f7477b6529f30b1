"""Caption metrics the way the change-captioning field computes them.

Protocol: captions lower-case, '.' removed, split on whitespace (``normalize_caption``), and the
strings go straight to pycocoevalcap's Bleu(4), Meteor, Rouge and Cider, without PTBTokenizer.
That is what the ``get_eval_score`` of RSICCformer, Chg2Cap, RSCaMa and PromptCC does, with one
twist: they join the *vocabulary ids* of the words (``str(id)``; GPT-2 ids for PromptCC), not the
words. BLEU, ROUGE-L and CIDEr only test token identity, so ids and words give the same numbers
(up to rare words merged into ``<UNK>``). METEOR does not: on id strings its stem, synonym and
paraphrase matchers see numbers, so it is close to exact-match only, and it even depends on which
id each word got. On PromptCC's LEVIR-CC test captions METEOR is 42.07 on words, 41.14 on
vocab-501 ids, 41.05-41.14 on shuffled ids.

Default: words (deterministic, pycocoevalcap as documented). ``field_vocab`` reproduces the field
exactly: words become ``str(id)`` of that vocabulary, unknown words ``<UNK>``, as in the release.

S*m = mean(BLEU-4, METEOR, ROUGE-L, CIDEr). Every value is a fraction, as pycocoevalcap returns it
(papers print them x 100).
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Sequence
from typing import Any

from hisem.data.captions import normalize_caption
from hisem.data.vocab import Vocab

log = logging.getLogger(__name__)

_METEOR: Any = None
_METEOR_LOCK = threading.Lock()

METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr", "S*m")


def empty_scores() -> dict[str, float | None]:
    """The scores of a set with no pairs: every metric None."""
    return dict.fromkeys(METRICS)


def _to_ids(texts: list[str], vocab: Vocab) -> list[str]:
    """The field's form: each word replaced by its vocabulary id, unknown words by ``<UNK>``'s."""
    return [" ".join(str(vocab.stoi.get(w, vocab.unk_id)) for w in t.split()) for t in texts]


def _meteor() -> Any:
    """The process's METEOR scorer, started on first use and kept.

    Starting one costs about 9 s (the JVM loads METEOR's paraphrase tables), which validation
    would otherwise pay every epoch. pycocoevalcap's Meteor serialises calls with its own lock.
    """
    global _METEOR
    with _METEOR_LOCK:
        if _METEOR is None:
            from pycocoevalcap.meteor.meteor import Meteor

            _METEOR = Meteor()
            atexit.register(_stop_meteor)
        return _METEOR


def _stop_meteor() -> None:
    global _METEOR
    # Meteor has no close(); its __del__ ends the Java process once the last reference goes.
    _METEOR = None


def score_captions(
    predictions: Sequence[str], references: Sequence[Sequence[str]], field_vocab: Vocab | None = None
) -> dict[str, float | None]:
    """Corpus BLEU-1..4, METEOR, ROUGE-L, CIDEr and S*m of ``predictions[i]`` vs ``references[i]``.

    Each prediction has one or more reference strings. An empty set gives None for every metric.
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} reference sets")
    if not predictions:
        return empty_scores()
    # Normalising also strips newlines, which would break METEOR's line-by-line pipe protocol.
    hyps = [normalize_caption(p) for p in predictions]
    refs = [[normalize_caption(r) for r in rs] for rs in references]
    if any(not rs for rs in refs):
        raise ValueError("every prediction needs at least one reference")
    if field_vocab is not None:
        hyps = _to_ids(hyps, field_vocab)
        refs = [_to_ids(rs, field_vocab) for rs in refs]
    gts = dict(enumerate(refs))
    res = {i: [h] for i, h in enumerate(hyps)}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    meteor, _ = _meteor().compute_score(gts, res)
    rouge, _ = Rouge().compute_score(gts, res)
    cider, _ = Cider().compute_score(gts, res)
    scores: dict[str, float | None] = {f"BLEU-{n + 1}": float(b) for n, b in enumerate(bleu)}
    scores.update({"METEOR": float(meteor), "ROUGE-L": float(rouge), "CIDEr": float(cider)})
    scores["S*m"] = (float(bleu[3]) + float(meteor) + float(rouge) + float(cider)) / 4
    log.debug("scored %d captions: %s", len(hyps), scores)
    return scores
