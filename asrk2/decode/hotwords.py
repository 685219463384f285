"""Hotwords for CTC decoding: a context graph composed with H, HL or HLG.

A user lists phrases (``HELLO WORLD`` or ``HELLO WORLD :2.5`` with its own
boost per word), one per line. They are compiled into a context graph over
the decoding graph's output units (words for HL/HLG, BPE tokens for H): a
trie whose arcs add the boost for each unit of a phrase, with the bonus of a
phrase left incomplete taken back when the path leaves it (or ends), as
WeNet's context graph does. Composing it with the decoding graph puts the
bonus into the search itself (offline and streaming alike), so a hotword
can win even where it would have been pruned, unlike lattice rescoring.

The context graph is explicit (k2 compositions have no failure arcs): every
state has an arc for every unit, so it has ``(trie nodes + 1) x units``
arcs: fine for tens of phrases over a vocabulary of thousands of words;
over a very large vocabulary prefer token-level phrases on H.

Example::

    hotwords = read_hotwords(Path("names.txt"), 1.5, word_ids, report)
    HLG = bias_graph(HLG, context_graph(hotwords, num_units=max(word_ids.values())))
"""

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import k2
import torch

__all__ = [
    "HotwordOptions",
    "Hotword",
    "HotwordReport",
    "HotwordUnits",
    "hotword_units",
    "parse_hotwords",
    "read_hotwords",
    "context_graph",
    "bias_graph",
    "hotword_context",
]


@dataclass
class HotwordOptions:
    """Contextual biasing of a decoding graph (``--hotwords``, ``--hotwords-score``).

    Attributes:
      hotwords: a file of phrases, one per line, each optionally with
        `` :BOOST``; None: no biasing.
      hotwords_score: the boost per word (HL/HLG) or per BPE token (H) of
        phrases without their own.
    """

    hotwords: Optional[str] = None
    hotwords_score: float = 1.5

    def __post_init__(self) -> None:
        if not self.hotwords_score > 0:
            raise ValueError(f"hotwords_score must be > 0, got {self.hotwords_score}")


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hotword:
    """One phrase: its units (word or token ids) and its boost per unit."""

    text: str
    ids: Tuple[int, ...]
    boost: float


@dataclass
class HotwordReport:
    """What :func:`read_hotwords` did with each line of the file.

    Attributes:
      kept: phrases compiled.
      skipped: ``(line number, text, why)`` of phrases left out.
    """

    kept: int = 0
    skipped: List[Tuple[int, str, str]] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the log."""
        text = f"{self.kept} hotword phrases"
        if self.skipped:
            shown = "; ".join(
                f"line {n} {t!r}: {why}" for n, t, why in self.skipped[:5]
            )
            more = f" (+{len(self.skipped) - 5} more)" if len(self.skipped) > 5 else ""
            text += f", {len(self.skipped)} skipped: {shown}{more}"
        return text


def parse_hotwords(
    lines: Sequence[str],
    default_boost: float,
    to_ids: Callable[[List[str]], Optional[List[int]]],
    report: Optional[HotwordReport] = None,
    where: str = "hotwords",
) -> List[Hotword]:
    """Hotwords from lines: one phrase each, optionally `` :BOOST`` at its end.

    Words are upper-cased (as the lexicon). Blank lines and ``#`` comments
    are ignored; no lines give no hotwords (decoding is unchanged).

    Args:
      lines: the phrases (a file's lines, or a stream's list).
      default_boost: boost per unit of phrases without their own; > 0.
      to_ids: maps a phrase's words to the graph's units, or None when it
        cannot (a word outside the vocabulary of HL/HLG): then the phrase is
        skipped and counted in ``report``.
      report: collects what was kept and skipped.
      where: names the source in errors (``where:LINE``).
    Raises:
      ValueError: a boost that is not a positive number, naming the line.
    """
    if not default_boost > 0:
        raise ValueError(f"the hotword boost must be > 0, got {default_boost}")
    report = report if report is not None else HotwordReport()
    hotwords = []
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        boost = default_boost
        if " :" in f" {text}":
            text, _, raw = f" {text}".rpartition(" :")
            text = text.strip()
            try:
                boost = float(raw)
            except ValueError:
                raise ValueError(f"{where}:{number}: boost {raw!r} is not a number")
            if not (boost > 0 and math.isfinite(boost)):
                raise ValueError(f"{where}:{number}: boost must be > 0, got {raw}")
        words = text.upper().split()
        if not words:
            report.skipped.append((number, line, "no words"))
            continue
        ids = to_ids(words)
        if not ids:
            report.skipped.append((number, text, "a word outside the vocabulary"))
            continue
        hotwords.append(Hotword(" ".join(words), tuple(ids), boost))
        report.kept += 1
    return hotwords


def read_hotwords(
    path: Path,
    default_boost: float,
    to_ids: Callable[[List[str]], Optional[List[int]]],
    report: Optional[HotwordReport] = None,
) -> List[Hotword]:
    """:func:`parse_hotwords` of a file (UTF-8), errors naming ``path:LINE``."""
    lines = Path(path).read_text().splitlines()
    return parse_hotwords(lines, default_boost, to_ids, report, str(path))


@dataclass
class _Node:
    depth: int
    acc: float  # bonus summed from the root
    banked: float  # bonus of the deepest completed phrase on the way (kept)
    children: Dict[int, int] = field(default_factory=dict)


def context_graph(hotwords: Sequence[Hotword], num_units: int) -> k2.Fsa:
    """The context graph of ``hotwords`` over units ``1..num_units``.

    An acceptor (labels = units) whose every path's score is the sum of the
    boosts of the phrase units it matches in completed phrases: a unit that
    continues a phrase earns its boost; one that breaks it takes back the
    phrase's unbanked bonus and starts again (a new phrase may start at that
    very unit); the end of the input takes back an unfinished phrase's.
    Phrases that share a prefix share its arcs (the first phrase's boosts).

    Args:
      hotwords: the phrases.
      num_units: the largest unit id (word or token).
    Returns:
      An arc-sorted k2 acceptor; with no hotwords, one state with a loop of
      score 0 for every unit (composition changes nothing).
    """
    nodes = [_Node(0, 0.0, 0.0)]
    ends = set()
    for hotword in hotwords:
        n = 0
        for unit in hotword.ids:
            if unit not in nodes[n].children:
                parent = nodes[n]
                nodes.append(_Node(parent.depth + 1, parent.acc + hotword.boost, 0.0))
                parent.children[unit] = len(nodes) - 1
            n = nodes[n].children[unit]
        ends.add(n)
    # Banked bonus: that of the deepest completed phrase on the path from the
    # root (children come after their parent in ``nodes``).
    for i, node in enumerate(nodes):
        if i in ends:
            node.banked = node.acc
        for child in node.children.values():
            nodes[child].banked = node.banked
    root = nodes[0]
    final = len(nodes)
    arcs = []
    for i, node in enumerate(nodes):
        leave = node.banked - node.acc  # <= 0: takes back the unbanked bonus
        for unit in range(1, num_units + 1):
            next_node = node.children.get(unit)
            if next_node is not None:
                arcs.append((i, next_node, unit, nodes[next_node].acc - node.acc))
            elif unit in root.children:
                start = root.children[unit]
                arcs.append((i, start, unit, leave + nodes[start].acc))
            else:
                arcs.append((i, 0, unit, leave))
        arcs.append((i, final, -1, leave))
    arcs.sort(key=lambda a: (a[0], a[2]))
    text = "\n".join(f"{s} {d} {u} {w}" for s, d, u, w in arcs) + f"\n{final}"
    return k2.arc_sort(k2.Fsa.from_str(text))


def bias_graph(graph: k2.Fsa, context: k2.Fsa) -> k2.Fsa:
    """``graph`` with the context graph's bonuses on its output units.

    Args:
      graph: H (token outputs) or HL/HLG (word outputs, ragged aux_labels).
      context: from :func:`context_graph` over the same output units.
    Returns:
      The biased graph, arc-sorted, on ``graph``'s device; other tensor
      attributes are not kept.
    """
    device = graph.device
    graph = graph.to("cpu")
    context = context.to("cpu")
    if isinstance(graph.aux_labels, torch.Tensor):
        biased = k2.compose(graph, context, treat_epsilons_specially=True)
    else:
        # k2 composes on the left graph's aux_labels only when they are a
        # tensor: put the words on the labels side, compose, swap back.
        inverted = k2.arc_sort(k2.invert(graph))
        context = context.clone()
        context.aux_labels = context.labels.clone()
        biased = k2.invert(k2.compose(context, inverted, treat_epsilons_specially=True))
    return k2.arc_sort(k2.connect(biased)).to(device)


@dataclass
class HotwordUnits:
    """How phrases become units of a lang dir's graphs.

    Attributes:
      to_ids: words to unit ids, or None (a word outside ``words.txt``).
      num_units: the largest unit id.
    """

    to_ids: Callable[[List[str]], Optional[List[int]]]
    num_units: int


def hotword_units(lang_dir: Path, word_level: bool) -> HotwordUnits:
    """Units of phrases for HL/HLG (``word_level``: ``words.txt``) or H (BPE).

    At the word level a phrase with a word outside ``words.txt`` cannot be
    biased (its ``to_ids`` is None); at the token level every phrase is
    spelled in BPE pieces.
    """
    if word_level:
        from asrk2.lang.lexicon import read_symbol_table

        table = read_symbol_table(Path(lang_dir) / "words.txt")

        def words_to_ids(words: List[str]) -> Optional[List[int]]:
            if any(w not in table for w in words):
                return None
            return [table[w] for w in words]

        units = max(v for k, v in table.items() if not k.startswith("#"))
        return HotwordUnits(words_to_ids, units)
    from asrk2.lang.bpe import load_bpe

    sp = load_bpe(Path(lang_dir) / "bpe.model")

    def pieces_of(words: List[str]) -> Optional[List[int]]:
        return list(sp.encode(" ".join(words)))

    return HotwordUnits(pieces_of, sp.get_piece_size() - 1)


def hotword_context(
    options: Optional[HotwordOptions], lang_dir: Path, word_level: bool
) -> Optional[k2.Fsa]:
    """The context graph of ``options.hotwords`` for a lang dir's graphs.

    Args:
      options: the hotword file and boost; None or no file: None.
      lang_dir: ``words.txt`` (word level) or ``bpe.model`` (token level).
      word_level: units are words (HL/HLG), else BPE tokens (H); see
        :func:`hotword_units`. Skipped phrases are named in the log.
    """
    if options is None or options.hotwords is None:
        return None
    report = HotwordReport()
    units = hotword_units(lang_dir, word_level)
    hotwords = read_hotwords(
        Path(options.hotwords), options.hotwords_score, units.to_ids, report
    )
    log.info("%s: %s", options.hotwords, report.summary())
    return context_graph(hotwords, units.num_units)
