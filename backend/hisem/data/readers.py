"""Dataset readers: every supported layout becomes one list of ``PairRecord``.

Supported layouts (``fmt``):

``levir-cc`` (also ``whu-cdc``, ``levir-mci``; the synthetic generator writes it too)
    ``ROOT/<name>captions.json`` (any ``*caption*.json``: ``LevirCCcaptions.json``,
    ``whuCCcaptions.json``) holding ``{"images": [entry, ...]}`` (a bare list of entries is
    accepted too). An entry has ``filename``, a split in ``split`` or else ``filepath``
    (WHU-CDC files carry only ``filepath``), ``sentences`` as ``{"tokens": [...]}`` or
    ``{"raw": "..."}`` (or plain strings), and optionally ``changeflag``. Without ``changeflag``
    it is derived the release's way: 0 iff a no-change sentence is among the references.
    Images: ``ROOT/images/<split>/{A,B}/<filename>``, or ``ROOT/images/{A,B}/<filename>`` when
    there are no split folders; masks in ``label/`` beside ``A``/``B`` (LEVIR-MCI: 0 background,
    128 road, 255 building; WHU-CDC: 0/1; synthetic: 0/255). A missing file gives ``None``.
``change-detection``
    ``ROOT/{A,B,label}/`` (or ``ROOT/<split>/{A,B,label}/``): no captions; the change flag is 1
    iff the mask has a changed pixel. The flat layout has no splits (``split`` is then None).

Records come in the order of the JSON entries (sorted file names for change detection):
predictions files are matched to references by that order.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from hisem.data.captions import NO_CHANGE_SENTENCES, tokenize_caption

log = logging.getLogger(__name__)

CAPTION_FORMATS = ("levir-cc", "whu-cdc", "levir-mci")  # one JSON schema, three names for clarity
FORMATS = ("auto", *CAPTION_FORMATS, "change-detection")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


@dataclass(frozen=True)
class PairRecord:
    """One bi-temporal pair: file paths (None when absent), reference token lists, change flag."""

    name: str
    split: str | None
    before: Path | None
    after: Path | None
    mask: Path | None
    captions: tuple[tuple[str, ...], ...] = ()
    changeflag: int | None = None


def load_mask(path: Path) -> np.ndarray:
    """A label image as stored, (H, W) uint8: LEVIR-MCI keeps 0/128/255, 1-bit files give 0/1."""
    with Image.open(path) as img:
        if img.mode not in ("1", "L"):
            img = img.convert("L")
        return np.asarray(img, dtype=np.uint8)


def binarize_mask(mask: np.ndarray) -> np.ndarray:
    """Changed = any non-zero label (road and building alike), as (H, W) uint8 0/1."""
    return (np.asarray(mask) > 0).astype(np.uint8)


def read_dataset(root_or_json: Path | str, split: str | None = None, fmt: str = "auto") -> list[PairRecord]:
    """Read a data set folder (or its captions JSON) into records, optionally one split only."""
    path = Path(root_or_json)
    if fmt not in FORMATS:
        raise ValueError(f"unknown dataset format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.is_file():
        if fmt == "change-detection":
            raise ValueError(f"{path}: the change-detection layout is a folder, not a file")
        return _read_caption_json(path, split)
    captions_json = _find_caption_json(path)
    if fmt in CAPTION_FORMATS or (fmt == "auto" and captions_json is not None):
        if captions_json is None:
            raise FileNotFoundError(f"{path}: no *caption*.json file (e.g. LevirCCcaptions.json)")
        return _read_caption_json(captions_json, split)
    if _has_pairs_folder(path) or (split is not None and _has_pairs_folder(path / split)):
        return _read_change_detection(path, split)
    raise FileNotFoundError(f"{path}: neither a *caption*.json file nor A/ and B/ image folders")


def _find_caption_json(root: Path) -> Path | None:
    found = sorted(p for p in root.glob("*.json") if "caption" in p.name.lower())
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise ValueError(f"{root}: several captions files ({names}); pass the one to read")
    return found[0] if found else None


def _has_pairs_folder(path: Path) -> bool:
    return (path / "A").is_dir() and (path / "B").is_dir()


@functools.lru_cache(maxsize=64)
def _listing(folder: Path) -> frozenset[str]:
    """File names of a folder, listed once: 10k entries x 3 folders would otherwise be 30k stats."""
    try:
        return frozenset(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return frozenset()


def _locate(base: Path, splits: tuple[str, ...], kind: str, name: str) -> Path | None:
    for folder in [base / s / kind for s in splits] + [base / kind]:
        if name in _listing(folder):
            return folder / name
    return None


def _load_entries(json_path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{json_path}: not valid JSON ({exc})") from exc
    entries = data.get("images") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise ValueError(f'{json_path}: expected {{"images": [...]}} or a list of entries')
    return entries


def _entry_captions(entry: dict[str, Any], where: str) -> tuple[tuple[str, ...], ...]:
    captions = []
    for sentence in entry.get("sentences") or []:
        if isinstance(sentence, str):
            text = sentence
        elif isinstance(sentence, dict) and isinstance(sentence.get("tokens"), list):
            text = " ".join(str(t) for t in sentence["tokens"])
        elif isinstance(sentence, dict) and isinstance(sentence.get("raw"), str):
            text = sentence["raw"]
        else:
            raise ValueError(f"{where}: a sentence without 'tokens' or 'raw'")
        captions.append(tokenize_caption(text))
    return tuple(captions)


def _flag_from_captions(captions: tuple[tuple[str, ...], ...]) -> int | None:
    if not captions:
        return None
    return 0 if any(" ".join(c) in NO_CHANGE_SENTENCES for c in captions) else 1


def _flag_from_mask(mask: Path | None) -> int | None:
    return None if mask is None else int(bool(load_mask(mask).any()))


def _read_caption_json(json_path: Path, split: str | None) -> list[PairRecord]:
    entries = _load_entries(json_path)
    base = json_path.parent / "images"
    _listing.cache_clear()  # folders may have changed since the last read
    records: list[PairRecord] = []
    splits_seen: set[str] = set()
    for i, entry in enumerate(entries):
        where = f"{json_path}: entry {i}"
        if not isinstance(entry, dict) or not isinstance(entry.get("filename"), str):
            raise ValueError(f"{where} has no 'filename'")
        entry_split = entry.get("split") or entry.get("filepath")
        if entry_split is not None:
            splits_seen.add(str(entry_split))
        if split is not None and entry_split != split:
            continue
        name = entry["filename"]
        folders = tuple(dict.fromkeys(s for s in (entry.get("filepath"), entry_split) if s))
        captions = _entry_captions(entry, where)
        mask = _locate(base, folders, "label", name)
        flag = entry.get("changeflag")
        if flag is None:
            flag = _flag_from_captions(captions)
        if flag is None:
            flag = _flag_from_mask(mask)
        if flag not in (None, 0, 1):
            raise ValueError(f"{where}: changeflag must be 0 or 1, not {flag!r}")
        records.append(
            PairRecord(
                name=name,
                split=entry_split,
                before=_locate(base, folders, "A", name),
                after=_locate(base, folders, "B", name),
                mask=mask,
                captions=captions,
                changeflag=None if flag is None else int(flag),
            )
        )
    if split is not None and not records:
        present = ", ".join(sorted(splits_seen)) or "none"
        raise ValueError(f"{json_path}: no entries in split {split!r} (splits present: {present})")
    return records


def _read_change_detection(root: Path, split: str | None) -> list[PairRecord]:
    base, record_split = root, None
    if split is not None and _has_pairs_folder(root / split):
        base, record_split = root / split, split
    elif split is not None:
        log.info("%s has no %s/ folder: reading every pair of the flat A/B/label layout", root, split)
    if not (base / "B").is_dir():
        raise FileNotFoundError(f"{base / 'B'}: missing (the after images)")
    names = sorted(p.name for p in (base / "A").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    records = []
    for name in names:
        after = base / "B" / name
        if not after.is_file():
            raise FileNotFoundError(f"{after}: missing (every A/ image needs a B/ image of the same name)")
        mask = base / "label" / name
        mask = mask if mask.is_file() else None
        records.append(
            PairRecord(name, record_split, base / "A" / name, after, mask, (), _flag_from_mask(mask))
        )
    return records
