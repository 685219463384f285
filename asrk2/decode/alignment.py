"""Frame alignments of best paths: token and word times, arc posteriors.

A best path through a CTC lattice (H, HL or HLG) consumes one encoder frame
per arc, so arc ``t`` of the path is frame ``t``; its ``labels`` are the
frame's CTC label (0 = blank) and its ``aux_labels`` the graph's outputs
(token ids for H, word ids for HL/HLG) emitted there.

Times come from the CTC labels, not from where the graph happens to emit a
word (determinisation may move an output label): a token starts at the
frame where its label first appears and ends after its last repeat; a word
spans its BPE pieces, from the piece that starts with ``▁`` to the last one
before the next such piece.
"""

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import k2
import torch

from asrk2.decode.endpoint import OUTPUT_FRAME_SECONDS

__all__ = [
    "Alignment",
    "WordTime",
    "best_path_alignments",
    "token_spans",
    "word_times",
]

WORD_START = "\u2581"  # sentencepiece's word-boundary marker


@dataclass
class Alignment:
    """The best path of one lattice, frame by frame.

    Attributes:
      ids: the graph's output ids along the path (token or word ids).
      id_frames: the frame that emits each of ``ids``.
      labels: the CTC label of every frame (0 = blank), one per frame.
      id_posteriors: per id, the posterior probability of the lattice arc
        that emits it (a word's confidence); None when not computed.
    """

    ids: List[int]
    id_frames: List[int]
    labels: List[int]
    id_posteriors: Optional[List[float]] = None


@dataclass
class WordTime:
    """One word with its time in seconds from the start of the audio.

    Attributes:
      word: the word.
      start: where its first piece starts.
      end: where its last piece ends (after its last frame).
      confidence: the arc posterior of the word, or None.
    """

    word: str
    start: float
    end: float
    confidence: Optional[float] = None


def best_path_alignments(
    lattice: k2.Fsa, posteriors: bool = False
) -> List[Alignment]:
    """The best path of each lattice of an FsaVec as an :class:`Alignment`.

    Args:
      lattice: an FsaVec of CTC lattices (e.g. from ``get_lattice``).
      posteriors: also compute the arc posteriors of the emitting arcs
        (forward-backward over the whole lattice, log semiring).
    Returns:
      One alignment per FSA; an empty lattice gives empty lists.
    """
    lattice = lattice.clone()
    lattice.arc_index = torch.arange(lattice.num_arcs, dtype=torch.int32).to(
        lattice.device
    )
    post = None
    if posteriors:
        post = lattice.get_arc_post(use_double_scores=True, log_semiring=True)
        post = post.exp().cpu()
    best = k2.shortest_path(lattice, use_double_scores=True)
    row_splits = best.arcs.shape().remove_axis(1).row_splits(1).tolist()
    labels = best.labels.tolist()
    arc_index = best.arc_index.tolist()
    aux = best.aux_labels
    if isinstance(aux, k2.RaggedTensor):
        per_arc = aux.tolist()
    else:
        per_arc = [[a] for a in aux.tolist()]
    out = []
    for fsa in range(len(row_splits) - 1):
        begin, end = row_splits[fsa], row_splits[fsa + 1]
        ids, frames, probs = [], [], []
        for t, arc in enumerate(range(begin, end)):
            for out_id in per_arc[arc]:
                if out_id > 0:
                    ids.append(out_id)
                    frames.append(t)
                    if post is not None:
                        probs.append(float(post[arc_index[arc]]))
        # The last arc of a non-empty path is the final arc (label -1).
        frame_labels = [x for x in labels[begin:end] if x >= 0]
        out.append(
            Alignment(ids, frames, frame_labels, probs if post is not None else None)
        )
    return out


def token_spans(labels: Sequence[int]) -> List[Tuple[int, int, int]]:
    """CTC tokens of a frame labelling with their frame spans.

    Args:
      labels: one CTC label per frame, 0 = blank.
    Returns:
      ``(token, first_frame, last_frame)`` per token: repeats of a label
      without a blank between them are one token.
    """
    spans: List[Tuple[int, int, int]] = []
    previous = 0
    for t, label in enumerate(labels):
        if label != 0 and label == previous:
            token, first, _ = spans[-1]
            spans[-1] = (token, first, t)
        elif label != 0:
            spans.append((label, t, t))
        previous = label
    return spans


def word_times(
    alignment: Alignment,
    words: Sequence[str],
    pieces: Optional[Sequence[str]],
    frame_offset: int = 0,
) -> List[WordTime]:
    """Start and end times of ``words`` from the CTC tokens of ``alignment``.

    Args:
      alignment: the best path.
      words: the recognised words, in order (from its ids).
      pieces: ``pieces[i]`` is the sentencepiece string of token id ``i``;
        None: times from the frames that emit the words.
      frame_offset: frames before the aligned audio (a stream's earlier
        segments), added to every time.
    Returns:
      One :class:`WordTime` per word. When the pieces do not split into as
      many words as ``words`` (e.g. an ``<unk>``), each word spans from the
      frame that emitted it to the next emission.
    """
    groups: List[Tuple[int, int]] = []
    # Per word, the index of each of its tokens (for the confidence of H).
    members: List[List[int]] = []
    spans = token_spans(alignment.labels) if pieces else []
    for t, (token, first, last) in enumerate(spans):
        if not groups or pieces[token].startswith(WORD_START):  # type: ignore[index]
            groups.append((first, last))
            members.append([t])
        else:
            groups[-1] = (groups[-1][0], last)
            members[-1].append(t)
    conf = alignment.id_posteriors
    if conf is not None and len(conf) == len(spans) != len(words):
        # ids are tokens (H): a word is as sure as its least sure piece.
        conf = [min(conf[t] for t in tokens) for tokens in members]
    if len(groups) != len(words) and len(alignment.id_frames) == len(words):
        ends = alignment.id_frames[1:] + [len(alignment.labels)]
        groups = [(f, max(f, e - 1)) for f, e in zip(alignment.id_frames, ends)]
    elif len(groups) != len(words):
        groups = [(0, max(len(alignment.labels) - 1, 0))] * len(words)
    times = []
    for i, (word, (first, last)) in enumerate(zip(words, groups)):
        times.append(
            WordTime(
                word,
                round((frame_offset + first) * OUTPUT_FRAME_SECONDS, 3),
                round((frame_offset + last + 1) * OUTPUT_FRAME_SECONDS, 3),
                None if conf is None or len(conf) != len(words) else round(conf[i], 4),
            )
        )
    return times
