"""Caption text as the field scores it, and the sentences that mean "nothing changed".

Normalisation follows the change-captioning evaluation protocol (RSICCformer, Chg2Cap, RSCaMa):
lower-case, every '.' removed, tokens split on whitespace and joined by single spaces. LEVIR-CC
ships its captions pre-tokenised this way, so references pass through unchanged; free-form text
(a predictions file, a WHU-CDC ``raw`` string) is brought to the same form before scoring.
"""

from __future__ import annotations

from collections.abc import Iterable

# The release trains every unchanged pair on this one sentence (MODEL.md, training recipe).
NO_CHANGE_SENTENCE = "the scene is the same as before"

# The five phrasings of LEVIR-CC's unchanged pairs (all 5,039 of them carry exactly these five,
# checked on LevirCCcaptions.json); WHU-CDC's evaluation code lists the same five.
NO_CHANGE_SENTENCES: frozenset[str] = frozenset(
    {
        "the scene is the same as before",
        "there is no difference",
        "the two scenes seem identical",
        "no change has occurred",
        "almost nothing has changed",
    }
)


def normalize_caption(text: str) -> str:
    """Lower-case, drop '.', collapse whitespace: the string the scorers see."""
    return " ".join(text.lower().replace(".", "").split())


def tokenize_caption(text: str) -> tuple[str, ...]:
    """The normalised caption as a token tuple."""
    return tuple(normalize_caption(text).split())


def is_no_change(caption: str | Iterable[str]) -> bool:
    """Whether a caption (text or tokens) normalises to one of the no-change phrasings."""
    text = caption if isinstance(caption, str) else " ".join(caption)
    return normalize_caption(text) in NO_CHANGE_SENTENCES
