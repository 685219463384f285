"""A toy training corpus for tests and benchmarks: real sentences, random features.

Like ``lhotse.testing.dummies`` it needs no audio: transcripts come from
:class:`asrk2.data.sentences.SentenceGenerator`, a small BPE model is trained
on them, and each cut gets seeded Gaussian "fbank" features, long enough for
CTC to align its tokens, written losslessly with lhotse's NumpyFilesWriter.
"""

from pathlib import Path
from typing import Iterable, Tuple

import numpy as np
from lhotse import CutSet, Features, MonoCut, SupervisionSegment
from lhotse.features.io import NumpyFilesWriter

from asrk2.data.sentences import SentenceGenerator
from asrk2.frames import FRAME_SHIFT
from asrk2.lang.bpe import load_bpe, train_bpe

__all__ = ["make_toy_corpus"]


def make_toy_corpus(
    out_dir: Path,
    num_cuts: int = 16,
    nbpe: int = 40,
    num_features: int = 80,
    frames_per_token: int = 12,
    seed: int = 0,
    nan_cuts: Iterable[int] = (),
) -> Tuple[CutSet, Path]:
    """Writes a toy corpus: cuts with features and text, and a BPE lang dir.

    Args:
      out_dir: where features (``feats/``) and the lang dir (``lang/``) go.
      num_cuts: number of cuts (one supervision each).
      nbpe: BPE vocabulary size.
      num_features: feature dimension.
      frames_per_token: feature frames per BPE token (>= 8 keeps CTC feasible
        after the x4 subsampling, repeats included).
      seed: seeds the sentences and the features.
      nan_cuts: indexes of cuts whose features are all NaN, to test the
        trainer's handling of non-finite losses.
    Returns:
      ``(cuts, lang_dir)``, the cuts eager and in index order
      (ids ``toy-0000``, ``toy-0001``, ...).
    """
    out_dir = Path(out_dir)
    gen = SentenceGenerator(seed)
    texts = [gen.sentence() for _ in range(num_cuts)]
    lang_dir = out_dir / "lang"
    if not (lang_dir / "bpe.model").is_file():
        # BPE needs more text than a handful of cuts to reach nbpe pieces.
        extra = SentenceGenerator(seed + 1)
        train_bpe(texts + [extra.sentence() for _ in range(200)], lang_dir, nbpe)
    sp = load_bpe(lang_dir / "bpe.model")
    rng = np.random.default_rng(seed)
    writer = NumpyFilesWriter(out_dir / "feats")
    nan = set(nan_cuts)
    cuts = []
    with writer:
        for i, text in enumerate(texts):
            cut_id = f"toy-{i:04d}"
            num_frames = frames_per_token * (len(sp.encode(text)) + 2)
            feats = rng.standard_normal((num_frames, num_features)).astype(np.float32)
            if i in nan:
                feats[:] = np.nan
            cuts.append(_cut(cut_id, text, writer, feats))
    return CutSet.from_cuts(cuts), lang_dir


def _cut(
    cut_id: str, text: str, writer: NumpyFilesWriter, feats: np.ndarray
) -> MonoCut:
    """A MonoCut whose features are ``feats`` (T, C), stored by ``writer``."""
    duration = round(feats.shape[0] * FRAME_SHIFT, 4)
    features = Features(
        type="fbank",
        num_frames=feats.shape[0],
        num_features=feats.shape[1],
        frame_shift=FRAME_SHIFT,
        sampling_rate=16000,
        start=0.0,
        duration=duration,
        storage_type=writer.name,
        storage_path=str(writer.storage_path),
        storage_key=writer.write(cut_id, feats),
        recording_id=cut_id,
        channels=0,
    )
    sup = SupervisionSegment(
        id=cut_id, recording_id=cut_id, start=0.0, duration=duration, text=text
    )
    return MonoCut(
        id=cut_id, start=0.0, duration=duration, channel=0,
        features=features, supervisions=[sup],
    )  # fmt: skip
