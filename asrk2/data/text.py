"""Transcript normalisation shared by every corpus."""
import re

__all__ = ["normalize_text"]

_NOT_WORD = re.compile(r"[^A-Z0-9' ]+")
_SPACES = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Upper-cases, drops punctuation but keeps apostrophes, folds white space.

    This is the form the lexicon, the BPE model and the scorer all see, so a
    reference and a hypothesis never differ only by case or punctuation.

    Args:
      text: a raw transcript, e.g. ``"Turn on the lights, please!"``.
    Returns:
      e.g. ``"TURN ON THE LIGHTS PLEASE"``; empty if nothing word-like remains.
    """
    text = _NOT_WORD.sub(" ", text.upper().replace("-", " "))
    return _SPACES.sub(" ", text).strip()
