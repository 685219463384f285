"""Offline decoding methods, selectable by name, on one batch of CTC outputs.

=========================  ================================================
``ctc-greedy``             H 1-best, token ids (no lexicon)
``hl-1best``               HL lattice 1-best (lexicon, no LM)
``hlg-1best``              HLG lattice 1-best
``hlg-nbest``              N sampled HLG paths, best total score
``nbest-rescoring``        the HLG n-best rescored with G (4-gram), per LM scale
``whole-lattice-rescoring``  HLG lattice composed with G, per LM scale
``attention-rescoring``    the HLG n-best rescored with the attention decoder
``attention-beam-search``  beam search over the attention decoder alone, token ids
=========================  ================================================

Each batch's lattices are computed once per graph and shared by the methods.
Results are keyed by method, or ``method-lm_scale_0.5`` /
``attention-rescoring-scale_1.0`` for the methods with scales, and
``attention-beam-search-ctc_weight_0.3`` for the joint CTC/attention search;
values are word ids per utterance in batch order (token ids for
``ctc-greedy`` and the beam search, :func:`is_token_result`).

Example::

    graphs = load_graphs(Path("data/lang_bpe_500"), ["hlg-1best"], device)
    hyps = decode_batch(["hlg-1best"], log_probs, out_lens, graphs, MethodOptions())
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import k2
import torch

from asrk2.beams import SearchBeams
from asrk2.decode.attention_search import BeamSearchOptions
from asrk2.decode.ctc_decode import (
    build_ctc_topo,
    ctc_greedy_decode,
    get_lattice,
    one_best_token_ids,
)
from asrk2.decode.graph_weights import GraphWeights, weight_graph
from asrk2.decode.hotwords import HotwordOptions, bias_graph, hotword_context
from asrk2.decode.rescore import (
    Nbest,
    add_lm_scores,
    rescore_whole_lattice,
    sample_nbest,
    word_seq_lm_scores,
)
from asrk2.lang.bpe import load_bpe
from asrk2.lang.graphs import G_for_rescoring, load_fsa
from asrk2.lang.lexicon import read_symbol_table

__all__ = [
    "METHODS",
    "TOKEN_METHODS",
    "GRAPH_METHODS",
    "SWEPT_METHODS",
    "beam_search_key",
    "is_token_result",
    "DecoderSearch",
    "DecodingGraphs",
    "MethodOptions",
    "DecoderScorer",
    "check_methods",
    "load_graphs",
    "load_streaming_graph",
    "needs_redecode_final",
    "decode_batch",
]

METHODS = (
    "ctc-greedy",
    "hl-1best",
    "hlg-1best",
    "hlg-nbest",
    "nbest-rescoring",
    "whole-lattice-rescoring",
    "attention-rescoring",
    "attention-beam-search",
)
# Methods whose hypotheses are BPE token ids (the others give word ids).
TOKEN_METHODS = {"ctc-greedy", "attention-beam-search"}
_NEEDS_HLG = {
    "hlg-1best",
    "hlg-nbest",
    "nbest-rescoring",
    "whole-lattice-rescoring",
    "attention-rescoring",
}
# Methods that search HL or HLG, so that graph weights change their results.
GRAPH_METHODS = frozenset({"hl-1best"} | _NEEDS_HLG)
_NEEDS_G = {"nbest-rescoring", "whole-lattice-rescoring"}
# Methods with one result per scale (``-lm_scale_X``, ``-scale_X``).
SWEPT_METHODS = frozenset(_NEEDS_G | {"attention-rescoring"})
_NBEST = {"hlg-nbest", "nbest-rescoring", "attention-rescoring"}

# The batch's best token ids under the attention decoder, for these options.
DecoderSearch = Callable[[BeamSearchOptions], List[List[int]]]
# (token ids of P hypotheses, (P,) their utterance in the batch) -> (P,) scores
DecoderScorer = Callable[[List[List[int]], torch.Tensor], torch.Tensor]


@dataclass
class DecodingGraphs:
    """The graphs the chosen methods need; None for those not needed.

    Attributes:
      H: CTC topology (``ctc-greedy``).
      HL: lexicon graph with ``lm_scores`` (``hl-1best``).
      HLG: full graph with ``lm_scores`` (HLG methods).
      G: rescoring word acceptor from :func:`G_for_rescoring`.
    """

    H: Optional[k2.Fsa] = None
    HL: Optional[k2.Fsa] = None
    HLG: Optional[k2.Fsa] = None
    G: Optional[k2.Fsa] = None


@dataclass
class MethodOptions:
    """Search and rescoring options shared by the methods.

    Attributes:
      beams: the pruned intersection (:func:`get_lattice`); None for the
        experiment's ``decode`` beams (:mod:`asrk2.decode.offline`), or
        :class:`~asrk2.beams.SearchBeams` defaults without an experiment.
      num_paths: paths sampled per lattice for the n-best methods.
      nbest_scale: score scale while sampling (smaller: more diverse).
      lm_scales: LM scales of the two G rescoring methods.
      attention_scales: decoder score scales of ``attention-rescoring``.
      reverse_weight: share of the right-to-left decoder in the decoder score
        of ``attention-rescoring`` (models with ``num_r2l_layers``; WeNet
        uses 0.3).
      hotwords: contextual biasing of the graphs (:mod:`asrk2.decode.hotwords`).
      beam_search: ``attention-beam-search`` options.
      graph_weights: scale of HL's and HLG's scores and a bonus per word
        (:mod:`asrk2.decode.graph_weights`), e.g. tuned on a dev set by
        ``local/tune_graph_weights.py``.
    """

    beams: Optional[SearchBeams] = None
    num_paths: int = 100
    nbest_scale: float = 0.5
    lm_scales: List[float] = field(default_factory=lambda: [0.3, 0.5, 0.7, 1.0])
    attention_scales: List[float] = field(default_factory=lambda: [0.5, 1.0, 2.0])
    reverse_weight: float = 0.0
    hotwords: HotwordOptions = field(default_factory=HotwordOptions)
    beam_search: BeamSearchOptions = field(default_factory=BeamSearchOptions)
    graph_weights: GraphWeights = field(default_factory=GraphWeights)


def beam_search_key(options: BeamSearchOptions) -> str:
    """``attention-beam-search``, or with joint CTC scoring
    ``attention-beam-search-ctc_weight_0.3``: results of the two differ."""
    if options.ctc_weight > 0:
        return f"attention-beam-search-ctc_weight_{options.ctc_weight}"
    return "attention-beam-search"


def is_token_result(key: str) -> bool:
    """Whether a result key's hypotheses are BPE token ids (else word ids)."""
    return key == "ctc-greedy" or key.startswith("attention-beam-search")


def check_methods(methods: Sequence[str]) -> None:
    """Raises ValueError on an unknown or repeated method name."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown or len(set(methods)) != len(methods) or not methods:
        raise ValueError(
            f"methods must be distinct names from {METHODS}, got {list(methods)}"
        )


def load_graphs(
    lang_dir: Path,
    methods: Sequence[str],
    device: torch.device,
    G_name: str = "G_4_gram.pt",
    max_token_id: Optional[int] = None,
    hotwords: Optional[HotwordOptions] = None,
    weights: GraphWeights = GraphWeights(),
) -> DecodingGraphs:
    """Loads from ``lang_dir`` the graphs that ``methods`` need.

    Args:
      lang_dir: holds ``tokens.txt``, ``HL.pt``, ``HLG.pt``, ``words.txt``
        and ``G_name`` as needed.
      methods: names from :data:`METHODS`.
      device: where to put the graphs.
      G_name: the n-gram G used for rescoring.
      max_token_id: the largest token id, for H; None reads ``tokens.txt``.
      hotwords: bias H, HL and HLG with these phrases
        (:mod:`asrk2.decode.hotwords`); G is not biased.
      weights: applied to HL and HLG before the bias (:func:`weight_graph`).
    Returns:
      The graphs; HL and HLG carry ``lm_scores`` (weighted, without the bias).
    """
    check_methods(methods)
    lang_dir = Path(lang_dir)
    graphs = DecodingGraphs()
    if "ctc-greedy" in methods:
        if max_token_id is None:
            max_token_id = max(read_symbol_table(lang_dir / "tokens.txt").values())
        graphs.H = build_ctc_topo(max_token_id, device=device)
    if "hl-1best" in methods:
        HL = weight_graph(load_fsa(lang_dir / "HL.pt").to(device), weights)
        graphs.HL = add_lm_scores(HL)
    if _NEEDS_HLG & set(methods):
        HLG = weight_graph(load_fsa(lang_dir / "HLG.pt").to(device), weights)
        graphs.HLG = add_lm_scores(HLG)
    if graphs.H is not None:
        tokens = hotword_context(hotwords, lang_dir, word_level=False)
        if tokens is not None:
            graphs.H = bias_graph(graphs.H, tokens)
    if graphs.HL is not None or graphs.HLG is not None:
        words = hotword_context(hotwords, lang_dir, word_level=True)
        for name in ("HL", "HLG"):
            graph = getattr(graphs, name)
            if graph is not None and words is not None:
                setattr(graphs, name, bias_graph(graph, words))
    if _NEEDS_G & set(methods):
        first_disambig = read_symbol_table(lang_dir / "words.txt")["#0"]
        G = load_fsa(lang_dir / G_name)
        graphs.G = G_for_rescoring(G, first_disambig).to(device)
    return graphs


def _lattice(
    log_probs: torch.Tensor, out_lens: torch.Tensor, graph: k2.Fsa, opts: MethodOptions
) -> k2.Fsa:
    """:func:`get_lattice` with the options' beams."""
    return get_lattice(log_probs, out_lens, graph, opts.beams or SearchBeams())


def _nbest_methods(
    methods: Sequence[str],
    nbest: Nbest,
    graphs: DecodingGraphs,
    opts: MethodOptions,
    scorer: Optional[DecoderScorer],
) -> Dict[str, List[List[int]]]:
    """Picks from one n-best list for each of the n-best methods."""
    out: Dict[str, List[List[int]]] = {}
    if "hlg-nbest" in methods:
        out["hlg-nbest"] = nbest.best(nbest.scores)
    if "nbest-rescoring" in methods:
        lm = word_seq_lm_scores(graphs.G, nbest.flat_words())
        for scale in opts.lm_scales:
            key = f"nbest-rescoring-lm_scale_{scale}"
            out[key] = nbest.best(nbest.am_scores + scale * lm)
    if "attention-rescoring" in methods:
        if scorer is None:
            raise ValueError("attention-rescoring needs a decoder scorer")
        attn = scorer(nbest.flat_tokens(), nbest.utt).double().cpu()
        for scale in opts.attention_scales:
            key = f"attention-rescoring-scale_{scale}"
            out[key] = nbest.best(nbest.scores + scale * attn)
    return out


def decode_batch(
    methods: Sequence[str],
    log_probs: torch.Tensor,
    out_lens: torch.Tensor,
    graphs: DecodingGraphs,
    opts: MethodOptions,
    scorer: Optional[DecoderScorer] = None,
    searcher: Optional[DecoderSearch] = None,
) -> Dict[str, List[List[int]]]:
    """Decodes one batch with every method in ``methods``.

    Args:
      methods: names from :data:`METHODS`.
      log_probs: CTC log-probs (N, T, V), blank at 0.
      out_lens: valid frames per utterance (N,).
      graphs: from :func:`load_graphs` (or built in memory).
      opts: beams, n-best size and scales.
      scorer: scores token sequences with the attention decoder; needed
        only by ``attention-rescoring``.
      searcher: beam search over the attention decoder; needed only by
        ``attention-beam-search``.
    Returns:
      ``{key: ids per utterance}`` in batch order; keys as in the module doc.
    """
    check_methods(methods)
    out: Dict[str, List[List[int]]] = {}
    if "ctc-greedy" in methods:
        out["ctc-greedy"] = ctc_greedy_decode(log_probs, out_lens, graphs.H)
    if "attention-beam-search" in methods:
        if searcher is None:
            raise ValueError("attention-beam-search needs a decoder search")
        out[beam_search_key(opts.beam_search)] = searcher(opts.beam_search)
    if "hl-1best" in methods:
        lattice = _lattice(log_probs, out_lens, graphs.HL, opts)
        out["hl-1best"] = one_best_token_ids(lattice)
    if not _NEEDS_HLG & set(methods):
        return out
    lattice = _lattice(log_probs, out_lens, graphs.HLG, opts)
    if "hlg-1best" in methods:
        out["hlg-1best"] = one_best_token_ids(lattice)
    if _NBEST & set(methods):
        nbest = sample_nbest(lattice, opts.num_paths, opts.nbest_scale)
        out.update(_nbest_methods(methods, nbest, graphs, opts, scorer))
    if "whole-lattice-rescoring" in methods:
        for scale, hyps in rescore_whole_lattice(
            lattice, graphs.G, opts.lm_scales
        ).items():
            out[f"whole-lattice-rescoring-lm_scale_{scale}"] = hyps
    return out


def needs_redecode_final(graph_name: str) -> bool:
    """Whether finals on ``graph_name`` need ``StreamingOptions.redecode_final``.

    True for HL and HLG: k2 1.23.4's online intersecter drops words that span a
    chunk boundary. H (every CTC state can end) is exact online.
    """
    return graph_name != "H"


def load_streaming_graph(
    lang_dir: Path,
    graph_name: str,
    device: torch.device,
    hotwords: Optional[HotwordOptions] = None,
    weights: GraphWeights = GraphWeights(),
) -> Tuple[k2.Fsa, Callable[[List[int]], List[str]]]:
    """Loads the decoding graph ``H``, ``HL`` or ``HLG`` and its ids-to-words map.

    Args:
      lang_dir: ``bpe.model`` (H) or ``words.txt`` and ``HL.pt``/``HLG.pt``.
      graph_name: ``H``, ``HL`` or ``HLG``.
      device: where the graph goes.
      hotwords: bias the graph with these phrases (:mod:`asrk2.decode.hotwords`).
      weights: applied to HL or HLG before the bias (:func:`weight_graph`);
        H has neither scores nor words to weight.
    Returns:
      ``(graph, to_words)``; ``to_words`` maps one hypothesis to words.
    """
    lang_dir = Path(lang_dir)
    if graph_name == "H":
        sp = load_bpe(lang_dir / "bpe.model")
        H = build_ctc_topo(sp.get_piece_size() - 1, device=device)
        context = hotword_context(hotwords, lang_dir, word_level=False)
        if context is not None:
            H = bias_graph(H, context)
        return H, lambda ids: sp.decode(ids).split()
    if graph_name not in ("HL", "HLG"):
        raise ValueError(f"graph must be H, HL or HLG, got {graph_name!r}")
    id2word = {i: w for w, i in read_symbol_table(lang_dir / "words.txt").items()}
    graph = weight_graph(load_fsa(lang_dir / f"{graph_name}.pt").to(device), weights)
    context = hotword_context(hotwords, lang_dir, word_level=True)
    if context is not None:
        graph = bias_graph(graph, context)
    return graph, lambda ids: [id2word[i] for i in ids]
