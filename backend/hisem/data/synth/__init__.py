"""Synthetic bi-temporal scenes with change masks and LEVIR-CC-style captions.

``make_pair`` renders one pair in memory; ``write_dataset`` writes many in the LEVIR-CC layout
(``hisem synth``), so the real-data reader is also the one that trains on them.

Modules, in the order a pair is made: scene (what a scene is), textures, builders and layout
(the first date), change and events (the second date), render and appearance (pixels),
captions, pair (one pair), writer (a data set).
"""

from hisem.data.synth.change import ChangeEvent
from hisem.data.synth.pair import SynthPair, make_pair
from hisem.data.synth.writer import write_dataset

__all__ = ["ChangeEvent", "SynthPair", "make_pair", "write_dataset"]
