"""Transcript normalisation shared by every corpus.

Two levels: :func:`normalize_text` always returns the normalised form (any
character it does not know is dropped), while :func:`clean_text` also says when
a transcript should not be used at all: empty after normalisation, or holding
letters of another script or control characters. Dropping those silently
would change the words, so importers skip such utterances and count them with
their ids. Punctuation and symbols (Unicode categories P* and S*, emoji
included) carry no words and are dropped, keeping the utterance:
``"great 🙂"`` becomes ``"GREAT"``.
"""

import re
import unicodedata
from dataclasses import dataclass
from typing import Optional

__all__ = ["CleanText", "clean_text", "normalize_text", "unknown_characters"]

_NOT_WORD = re.compile(r"[^A-Z0-9' ]+")
_SPACES = re.compile(r"\s+")
# Typographic variants people paste into transcripts, mapped before the rest.
_TRANSLATE = str.maketrans(
    {
        "\u2019": "'",  # right single quotation mark, the usual curly apostrophe
        "\u2018": "'",
        "\u02bc": "'",  # modifier letter apostrophe
        "\u2010": "-",
        "\u2011": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u00a0": " ",
    }
)
# Letters that NFKD does not split into base letter + accent.
_LIGATURES = {
    "\u00df": "SS",
    "\u00e6": "AE",
    "\u00c6": "AE",
    "\u0153": "OE",
    "\u0152": "OE",
    "\u00f8": "O",
    "\u00d8": "O",
    "\u0142": "L",
    "\u0141": "L",
    "\u00f0": "D",
    "\u00de": "TH",
    "\u00fe": "TH",
}


@dataclass(frozen=True)
class CleanText:
    """A normalised transcript and, when it is unusable, why.

    Attributes:
      text: the normalised transcript (possibly empty).
      problem: ``None`` when usable, else ``"empty transcript"`` or
        ``"unknown characters"``.
      detail: the offending characters for ``"unknown characters"``.
    """

    text: str
    problem: Optional[str] = None
    detail: str = ""


def _fold(text: str) -> str:
    """Maps typographic marks to ASCII and strips accents (``café -> cafe``)."""
    text = text.translate(_TRANSLATE)
    text = "".join(_LIGATURES.get(ch, ch) for ch in text)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def unknown_characters(text: str) -> str:
    """Characters of ``text`` that are not letters/digits/punctuation we know.

    Letters and digits must be ASCII after accent folding; punctuation and
    symbols (Unicode categories P* and S*) and white space are known, since
    normalisation deletes them without changing any word. Control and other
    invisible characters (category C*) are unknown: they signal a broken file.

    Args:
      text: a raw transcript.
    Returns:
      The unknown characters, each once, in order of appearance; ``""`` if none.
    """
    seen = []
    for ch in _fold(text):
        if ch.isspace():
            continue
        category = unicodedata.category(ch)[0]
        if category != "C" and (ch.isascii() or category in "PS"):
            continue
        if ch not in seen:
            seen.append(ch)
    return "".join(seen)


def normalize_text(text: str) -> str:
    """Upper-cases, drops punctuation but keeps apostrophes, folds white space.

    This is the form the lexicon, the BPE model and the scorer all see, so a
    reference and a hypothesis never differ only by case or punctuation.
    Accents are stripped (``CAFÉ -> CAFE``) and curly apostrophes straightened.

    Args:
      text: a raw transcript, e.g. ``"Turn on the lights, please!"``.
    Returns:
      e.g. ``"TURN ON THE LIGHTS PLEASE"``; empty if nothing word-like remains.
    """
    text = _NOT_WORD.sub(" ", _fold(text).upper().replace("-", " "))
    return _SPACES.sub(" ", text).strip()


def clean_text(text: Optional[str]) -> CleanText:
    """Normalises a transcript and says whether it is usable.

    Args:
      text: a raw transcript; ``None`` counts as empty.
    Returns:
      A :class:`CleanText`; its ``problem`` is set for an empty transcript or
      one with unknown characters (e.g. Cyrillic in an English corpus).
    """
    unknown = unknown_characters(text or "")
    if unknown:
        return CleanText(normalize_text(text or ""), "unknown characters", unknown)
    normalized = normalize_text(text or "")
    if not normalized:
        return CleanText("", "empty transcript")
    return CleanText(normalized)
