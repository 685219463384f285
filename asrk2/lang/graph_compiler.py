"""Per-utterance CTC training graphs for BPE token sequences."""
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Union

import k2
import torch

__all__ = ["CtcTrainingGraphCompiler"]

TextToIds = Callable[[str], List[int]]


class CtcTrainingGraphCompiler:
    """Turns transcripts into CTC training graphs (``k2.ctc_graph``).

    Each graph accepts exactly the frame-level label sequences that collapse
    (merge repeats, then drop blanks) to the transcript's tokens; blank is 0
    and a blank is required between two equal tokens (``modified=False``).

    Args:
      tokenizer: path of a sentencepiece model (e.g. ``lang_dir/bpe.model``),
        or a callable mapping one text to its token ids.
      allow_unk: when False, a text that encodes to ``unk_id`` is an error.
      unk_id: the unknown-token id; taken from the sentencepiece model by default.
    """

    def __init__(
        self,
        tokenizer: Union[str, Path, TextToIds],
        allow_unk: bool = True,
        unk_id: Optional[int] = None,
    ) -> None:
        if callable(tokenizer):
            self._encode: TextToIds = tokenizer
            self.vocab_size: Optional[int] = None
        else:
            import sentencepiece as spm

            sp = spm.SentencePieceProcessor()
            sp.load(str(tokenizer))
            self._encode = lambda text: sp.encode(text, out_type=int)
            self.vocab_size = sp.get_piece_size()
            unk_id = sp.unk_id() if unk_id is None else unk_id
        self.allow_unk = allow_unk
        self.unk_id = unk_id

    def _check(self, index: int, text: str, ids: Sequence[int]) -> None:
        """Raises ValueError for token sequences no CTC graph should be built from."""
        if not ids:
            raise ValueError(
                f"text {index} ({text!r}) is an empty transcript: no tokens"
            )
        bad = [
            i
            for i in ids
            if i <= 0 or (self.vocab_size is not None and i >= self.vocab_size)
        ]
        if bad:
            # Id 0 is the blank: inside a transcript it would make a wrong graph.
            raise ValueError(f"text {index} ({text!r}) has invalid token ids {bad}")
        if not self.allow_unk and self.unk_id is not None and self.unk_id in ids:
            raise ValueError(
                f"text {index} ({text!r}) has unknown tokens (id {self.unk_id})"
            )

    def texts_to_ids(self, texts: Sequence[str]) -> List[List[int]]:
        """Encodes transcripts into token ids.

        Args:
          texts: N normalised transcripts.
        Returns:
          N lists of token ids, each non-empty and free of the blank (0).
        Raises:
          ValueError: naming the index and text of an empty transcript, of one
            with ids out of range, or (unless ``allow_unk``) of one with ``<unk>``.
        """
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings, not one string")
        result = []
        for index, text in enumerate(texts):
            ids = [int(i) for i in self._encode(text)] if text.strip() else []
            self._check(index, text, ids)
            result.append(ids)
        return result

    def compile(
        self, texts: Sequence[str], device: Union[str, torch.device] = "cpu"
    ) -> k2.Fsa:
        """Builds the CTC training graphs of a batch.

        Args:
          texts: N normalised transcripts, in batch order.
          device: where to put the graphs (that of the log-probs).
        Returns:
          An FsaVec of N graphs in batch order, with ``aux_labels`` (token ids on
          the first frame of each token, 0 elsewhere) and zero scores.
        """
        return k2.ctc_graph(self.texts_to_ids(texts), modified=False, device=device)
