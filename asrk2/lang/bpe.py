"""sentencepiece BPE (unigram) models and the ``tokens.txt`` of a lang dir."""

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, List

import sentencepiece as spm

from asrk2.utils import atomic_path, atomic_write_text

__all__ = ["BLANK", "UNK", "train_bpe", "load_bpe", "write_tokens"]

log = logging.getLogger(__name__)

# Token 0 is the CTC blank, as k2's CTC topology assumes; 1 marks sentence
# start/end for an attention decoder; 2 is <unk>.
BLANK = "<blk>"
SOS_EOS = "<sos/eos>"
UNK = "<unk>"


def train_bpe(
    transcripts: Iterable[str],
    lang_dir: Path,
    vocab_size: int = 500,
    model_type: str = "unigram",
) -> Path:
    """Trains a sentencepiece model on normalised transcripts.

    Writes ``bpe.model`` and ``tokens.txt`` into ``lang_dir``. Byte fallback is
    off and every character seen is covered, so all training words encode.

    Args:
      transcripts: one normalised sentence per item.
      lang_dir: output directory.
      vocab_size: number of pieces, including ``<blk>``, ``<sos/eos>``, ``<unk>``.
      model_type: ``unigram`` (default) or ``bpe``.
    Returns:
      Path of ``bpe.model``.
    """
    lang_dir = Path(lang_dir)
    lang_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        text_path = Path(tmp) / "transcripts.txt"
        num_lines = 0
        with open(text_path, "w") as f:
            for line in transcripts:
                if line.strip():
                    f.write(line.strip() + "\n")
                    num_lines += 1
        if num_lines == 0:
            raise ValueError("cannot train a BPE model: no non-empty transcripts")
        prefix = Path(tmp) / "bpe"
        spm.SentencePieceTrainer.train(
            input=str(text_path),
            model_prefix=str(prefix),
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=1.0,
            input_sentence_size=100_000_000,
            user_defined_symbols=[BLANK, SOS_EOS],
            unk_id=2,
            bos_id=-1,
            eos_id=-1,
            byte_fallback=False,
            minloglevel=2,
        )
        model_path = lang_dir / "bpe.model"
        with atomic_path(model_path) as tmp_model:
            shutil.copyfile(f"{prefix}.model", tmp_model)
    write_tokens(load_bpe(model_path), lang_dir / "tokens.txt")
    log.info(
        "Trained %s BPE with %d pieces on %d lines", model_type, vocab_size, num_lines
    )
    return model_path


def load_bpe(model_path: Path) -> spm.SentencePieceProcessor:
    """Loads a sentencepiece model and checks the blank/unk convention."""
    sp = spm.SentencePieceProcessor()
    sp.load(str(model_path))
    if sp.id_to_piece(0) != BLANK or sp.unk_id() != 2:
        raise ValueError(f"{model_path}: expected {BLANK} = 0 and {UNK} = 2")
    return sp


def write_tokens(sp: spm.SentencePieceProcessor, path: Path) -> None:
    """Writes ``tokens.txt`` (``piece id`` per line), the symbol table of k2 graphs."""
    lines: List[str] = [f"{sp.id_to_piece(i)} {i}" for i in range(sp.get_piece_size())]
    atomic_write_text(path, "\n".join(lines) + "\n")
