"""Decoding graphs with k2: L, H, G and their compositions HL and HLG.

Conventions (those of icefall, so its decoders read these graphs):

- ``L`` maps tokens to words: ``labels`` are token ids, ``aux_labels`` word
  ids; the word is output on the first token of its pronunciation.
  ``L_disambig`` also carries ``#k`` on the tokens side and a ``#0:#0``
  self-loop that lets the back-off arcs of G through.
- ``G`` comes from kaldilm's arpa2fst with ``#0`` on back-off arcs and
  ``<s>``/``</s>`` turned into epsilons; scores are natural-log probabilities.
- ``HLG = H o min(det(L_disambig o G))`` with disambiguation symbols and
  epsilons removed; its labels are token ids (0 = blank), its ``tokens``
  attribute the same, and its ragged ``aux_labels`` word ids.
- ``HL`` is the same with no G: lexicon-constrained decoding without an LM.

Every FSA is saved with ``torch.save(fsa.as_dict())`` and loads with
:func:`load_fsa`.

Example::

    L = lexicon_to_fst(lexicon_disambig, token2id, word2id, need_self_loops=True)
    G = fst_text_to_G(arpa_to_fst_text("lm_3.arpa", "words.txt"))
    LG = compile_LG(L, G, 500, word2id["#0"])  # ids of token and word #0
    HLG = compose_H(build_H(max_token_id=499), LG)
"""

import logging
import math
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import k2
import torch

from asrk2.lang.fsa_minimize import minimize_encoded
from asrk2.lang.lexicon import Lexicon
from asrk2.utils import atomic_path

__all__ = [
    "lexicon_to_fst",
    "build_H",
    "arpa_to_fst_text",
    "fst_text_to_G",
    "G_for_rescoring",
    "compile_LG",
    "compose_H",
    "graph_size",
    "save_fsa",
    "load_fsa",
]

log = logging.getLogger(__name__)

PathLike = Union[str, Path]
# (src, dst, label, aux_label, score)
Arc = Tuple[int, int, int, int, float]


def _fsa_from_arcs(arcs: List[Arc], num_states: int) -> k2.Fsa:
    """A k2 FSA from arcs whose final state is ``num_states - 1``."""
    arcs = sorted(arcs, key=lambda a: a[0])
    ints = torch.tensor([a[:3] for a in arcs], dtype=torch.int32).reshape(-1, 3)
    scores = torch.tensor([a[4] for a in arcs], dtype=torch.float32)
    table = torch.cat([ints, scores.view(torch.int32).reshape(-1, 1)], dim=1)
    aux = torch.tensor([a[3] for a in arcs], dtype=torch.int32)
    fsa = k2.Fsa(table, aux_labels=aux)
    if fsa.shape[0] != num_states:
        raise AssertionError(f"built {fsa.shape[0]} states, expected {num_states}")
    return fsa


def _word_path(
    arcs: List[Arc],
    next_state: int,
    start: int,
    ends: List[Tuple[int, float]],
    tokens: List[int],
    word: int,
) -> int:
    """Adds a pronunciation from ``start`` to each ``(end, score)``.

    Returns:
      The next free state id.
    """
    state = start
    for i, token in enumerate(tokens[:-1]):
        arcs.append((state, next_state, token, word if i == 0 else 0, 0.0))
        state, next_state = next_state, next_state + 1
    for end, score in ends:
        arcs.append((state, end, tokens[-1], word if len(tokens) == 1 else 0, score))
    return next_state


def lexicon_to_fst(
    lexicon: Lexicon,
    token2id: Dict[str, int],
    word2id: Dict[str, int],
    need_self_loops: bool = False,
    sil_token: Optional[str] = None,
    sil_prob: float = 0.5,
    sil_disambig: Optional[str] = None,
) -> k2.Fsa:
    """Builds the lexicon transducer L (Kleene closure of the pronunciations).

    Without ``sil_token`` (BPE lexicons) there is one loop state, which is both
    start and final. With it (phone lexicons), as Kaldi's make_lexicon_fst.py:
    optional silence at the start and after each word with probability
    ``sil_prob`` (start state 0, loop state 1, silence state 2 whose ``SIL``
    arc leads back to the loop), the silence followed by ``sil_disambig`` if
    given so that L_disambig stays determinisable.

    Args:
      lexicon: ``(word, tokens)`` pairs; with disambiguation symbols for
        ``L_disambig``.
      token2id: token table, including ``#k`` if the lexicon has them.
      word2id: word table, including ``#0`` if ``need_self_loops``.
      need_self_loops: add the ``#0:#0`` self-loop (for ``L_disambig``).
      sil_token: the optional-silence token, e.g. ``SIL``; None for none.
      sil_prob: probability of silence after a word.
      sil_disambig: token put after the optional silence, e.g. ``#3``.
    Returns:
      L, arc-sorted: labels token ids, aux_labels word ids, scores natural-log
      probabilities (0 without silence).
    """
    arcs: List[Arc] = []
    if sil_token is None:
        loop, next_state, ends = 0, 1, [(0, 0.0)]
    else:
        if not 0.0 < sil_prob < 1.0:
            raise ValueError(f"sil_prob must be in (0, 1), got {sil_prob}")
        loop, sil, next_state = 1, 2, 3
        sil_score, no_sil_score = math.log(sil_prob), math.log(1.0 - sil_prob)
        arcs.append((0, loop, 0, 0, no_sil_score))
        arcs.append((0, sil, 0, 0, sil_score))
        if sil_disambig is None:
            arcs.append((sil, loop, token2id[sil_token], 0, 0.0))
        else:
            arcs.append((sil, next_state, token2id[sil_token], 0, 0.0))
            arcs.append((next_state, loop, token2id[sil_disambig], 0, 0.0))
            next_state += 1
        ends = [(loop, no_sil_score), (sil, sil_score)]
    for word, tokens in lexicon:
        ids = [token2id[t] for t in tokens]
        next_state = _word_path(arcs, next_state, loop, ends, ids, word2id[word])
    if need_self_loops:
        arcs.append((loop, loop, token2id["#0"], word2id["#0"], 0.0))
    final = next_state
    arcs.append((loop, final, -1, -1, 0.0))
    return k2.arc_sort(_fsa_from_arcs(arcs, final + 1))


def build_H(max_token_id: int, modified: bool = False) -> k2.Fsa:
    """The CTC topology H on CPU, arc-sorted.

    Args:
      max_token_id: the largest token id; 0 is the blank.
      modified: the modified topology (k2 issue #746: no blank needed
        between repeated tokens, linear instead of quadratic size).
    Returns:
      H: labels token ids (0 = blank), aux_labels emitted tokens (0 = none).
    """
    return k2.arc_sort(k2.ctc_topo(max_token_id, modified=modified))


def arpa_to_fst_text(arpa: PathLike, words_txt: PathLike, max_order: int = -1) -> str:
    """Converts an ARPA LM to G in OpenFst text form with kaldilm.

    Args:
      arpa: the ARPA file; all its words must be in ``words_txt``.
      words_txt: the word table (with ``#0``, ``<s>``, ``</s>``).
      max_order: use n-grams up to this order; -1 for all.
    Returns:
      The FST text: ``#0`` on back-off arcs, ``<s>``/``</s>`` as epsilons,
      weights in -ln probability.
    """
    import kaldilm

    return kaldilm.arpa2fst(
        input_arpa=str(arpa),
        disambig_symbol="#0",
        read_symbol_table=str(words_txt),
        max_order=max_order,
    )


def fst_text_to_G(text: str) -> k2.Fsa:
    """Loads G from OpenFst text (as written by :func:`arpa_to_fst_text`)."""
    return k2.arc_sort(k2.Fsa.from_openfst(text, acceptor=False))


def G_for_rescoring(G: k2.Fsa, first_word_disambig_id: int) -> k2.Fsa:
    """Turns G into a word acceptor for lattice rescoring.

    Args:
      G: as from :func:`fst_text_to_G`.
      first_word_disambig_id: id of ``#0`` in words.txt.
    Returns:
      An arc-sorted acceptor: ``#0`` and higher ids turned into epsilon, no
      aux_labels. Rescoring code usually adds epsilon self-loops next
      (``k2.add_epsilon_self_loops``) and keeps ``scores`` as LM scores.
    """
    labels = G.labels.clone()
    labels[labels >= first_word_disambig_id] = 0
    out = k2.Fsa(G.arcs.values().clone())
    out.labels = labels
    return k2.arc_sort(out)


def _remove_disambig(
    LG: k2.Fsa, first_token_disambig_id: int, first_word_disambig_id: int
) -> k2.Fsa:
    """Replaces disambiguation ids by epsilon on both sides, then removes epsilons."""
    labels = LG.labels.clone()
    labels[labels >= first_token_disambig_id] = 0
    LG.labels = labels
    # Setting labels in place does not refresh cached properties (k2 issue #874).
    LG.__dict__["_properties"] = None
    aux = LG.aux_labels
    if isinstance(aux, torch.Tensor):
        splits = torch.arange(aux.numel() + 1, dtype=torch.int32)
        aux = k2.RaggedTensor(
            k2.ragged.create_ragged_shape2(splits, None, aux.numel()), aux
        )
    values = aux.values.clone()
    values[values >= first_word_disambig_id] = 0
    LG.aux_labels = k2.RaggedTensor(aux.shape, values)
    LG = k2.connect(k2.remove_epsilon(LG))
    LG.aux_labels = LG.aux_labels.remove_values_eq(0)
    return k2.arc_sort(LG)


def compile_LG(
    L_disambig: k2.Fsa,
    G: Optional[k2.Fsa],
    first_token_disambig_id: int,
    first_word_disambig_id: int,
    minimize: bool = True,
) -> k2.Fsa:
    """``LG = rmdisambig(min(det(L_disambig o G)))``, or det L alone if G is None.

    Args:
      L_disambig: from :func:`lexicon_to_fst` with disambiguation symbols.
      G: the LM from :func:`fst_text_to_G`, or None for a word loop (HL).
      first_token_disambig_id: id of token ``#0``; ids at or above are removed.
      first_word_disambig_id: id of word ``#0``; ids at or above are removed.
      minimize: merge equivalent states after determinisation
        (:func:`minimize_encoded`).
    Returns:
      LG, arc-sorted and epsilon-free on the token side, ragged aux_labels
      holding word ids. k2 treats aux_labels as arc attributes, so where two
      epsilon paths join the same two states only the better one survives
      ``remove_epsilon``: without G, homophones (phone lexicons only; BPE
      pieces spell the word) collapse to one word; with G they lead to
      different LM states and are kept.
    """
    LG = k2.arc_sort(L_disambig)
    if G is not None:
        LG = k2.connect(k2.compose(LG, k2.arc_sort(G)))
        log.info("L o G: %d states, %d arcs", *graph_size(LG))
    LG = k2.connect(k2.determinize(LG))
    log.info("det: %d states, %d arcs", *graph_size(LG))
    if minimize:
        LG = minimize_encoded(LG)
    LG = _remove_disambig(LG, first_token_disambig_id, first_word_disambig_id)
    log.info("LG: %d states, %d arcs", *graph_size(LG))
    return LG


def compose_H(H: k2.Fsa, LG: k2.Fsa) -> k2.Fsa:
    """``H o LG``: the decoding graph (HLG, or HL when LG has no G).

    Args:
      H: from :func:`build_H`.
      LG: from :func:`compile_LG`.
    Returns:
      Connected and arc-sorted; labels token ids (0 = blank), ``tokens`` the
      same, aux_labels ragged word ids.
    """
    HLG = k2.connect(k2.compose(H, LG, inner_labels="tokens"))
    HLG = k2.arc_sort(HLG)
    log.info("H o LG: %d states, %d arcs", *graph_size(HLG))
    return HLG


def graph_size(fsa: k2.Fsa) -> Tuple[int, int]:
    """``(num_states, num_arcs)`` of a single FSA."""
    return int(fsa.shape[0]), int(fsa.num_arcs)


def save_fsa(fsa: k2.Fsa, path: PathLike) -> None:
    """Saves ``fsa.as_dict()`` with torch, atomically."""
    with atomic_path(path) as tmp:
        torch.save(fsa.as_dict(), tmp)


def load_fsa(path: PathLike, map_location: str = "cpu") -> k2.Fsa:
    """Loads an FSA saved by :func:`save_fsa` (or icefall)."""
    return k2.Fsa.from_dict(torch.load(path, map_location=map_location))
