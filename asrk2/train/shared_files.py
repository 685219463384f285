"""Files that rank 0 computes once from the training data and every rank reads.

Each function is called by every rank: rank 0 writes the file (atomically),
all ranks meet at a barrier, then every rank loads the same file, so all of
them train with identical statistics.
"""

import logging
from pathlib import Path

from lhotse import CutSet

from asrk2.features.cmvn import GlobalCmvn, compute_global_cmvn
from asrk2.lang.graph_compiler import CtcTrainingGraphCompiler
from asrk2.lang.mmi_graphs import TokenBigram, estimate_token_bigram
from asrk2.train.distributed import barrier

__all__ = ["shared_global_cmvn", "shared_token_bigram"]

log = logging.getLogger(__name__)


def shared_global_cmvn(
    path: Path, train_cuts: CutSet, max_cuts: int, is_main: bool
) -> GlobalCmvn:
    """Global CMVN statistics of the training cuts, from ``path``.

    Rank 0 computes them from the first ``max_cuts`` cuts unless ``path``
    exists (a resumed or restarted job reuses the file). ``is_main``: this
    process is rank 0.
    """
    if is_main and not path.is_file():
        compute_global_cmvn(train_cuts, max_cuts=max_cuts).save(path)
    barrier()
    stats = GlobalCmvn.load(path)
    if is_main:
        log.info("Global CMVN from %s (%d cuts)", path, stats.num_cuts)
    return stats


def shared_token_bigram(
    path: Path,
    compiler: CtcTrainingGraphCompiler,
    cuts: CutSet,
    smoothing: float,
    is_main: bool,
) -> TokenBigram:
    """The LF-MMI token bigram "P", estimated by rank 0 from the training texts.

    Args:
      path: where it is written (re-estimated on every start: cheap).
      compiler: maps texts to token ids.
      cuts: the training cuts (one supervision each).
      smoothing: add-k smoothing (``loss.mmi.bigram_smoothing``).
      is_main: this process is rank 0.
    """
    if is_main:
        texts = [c.supervisions[0].text for c in cuts]
        estimate_token_bigram(compiler.texts_to_ids(texts), smoothing).save(path)
    barrier()
    return TokenBigram.load(path)
