"""Autoregressive beam search over the attention decoder (``attention-beam-search``).

All utterances of a batch and all their beams go through the decoder
together: at step ``u`` every live hypothesis has ``u`` tokens, so the
(utterances x beams) prefixes form one (N * B, u + 1) batch. The decoder is
run on the whole prefix at each step (no incremental cache): quadratic in
the length, which is short for speech, and exactly the teacher-forced
computation, so beam 1 is greedy decoding by construction.

A hypothesis ends with ``<eos>``; its score is the sum of its token
log-probs plus ``length_penalty`` per token (a positive value favours
longer outputs). An utterance's search stops when its best finished score
can no longer be beaten, or after ``max_len_ratio`` x its encoder frames
tokens.
"""

from dataclasses import dataclass
from typing import List

import torch

from asrk2.model.decoder import SOS_EOS_ID, AttentionDecoder

__all__ = ["BeamSearchOptions", "attention_beam_search"]


@dataclass
class BeamSearchOptions:
    """Options of ``attention-beam-search``.

    Attributes:
      beam_size: hypotheses kept per utterance.
      length_penalty: added to a hypothesis's score per token.
      max_len_ratio: most output tokens per encoder frame.
    """

    beam_size: int = 4
    length_penalty: float = 0.0
    max_len_ratio: float = 1.0

    def __post_init__(self) -> None:
        if self.beam_size < 1:
            raise ValueError(f"beam_size must be >= 1, got {self.beam_size}")
        if self.max_len_ratio <= 0:
            raise ValueError(f"max_len_ratio must be > 0, got {self.max_len_ratio}")


@torch.no_grad()
def attention_beam_search(
    decoder: AttentionDecoder,
    memory: torch.Tensor,
    memory_lens: torch.Tensor,
    options: BeamSearchOptions = BeamSearchOptions(),
    sos_id: int = SOS_EOS_ID,
    eos_id: int = SOS_EOS_ID,
) -> List[List[int]]:
    """The best token sequence of each utterance under the attention decoder.

    Args:
      decoder: the model's attention decoder, in eval mode.
      memory: encoder output (N, T, d_model).
      memory_lens: valid frames (N,).
      options: beam size, length penalty, length bound.
      sos_id, eos_id: the decoder's start and end symbols.
    Returns:
      N token id lists (without sos/eos), in batch order.
    """
    n, beam = memory.size(0), options.beam_size
    device = memory.device
    max_lens = (memory_lens.float() * options.max_len_ratio).ceil().long().clamp(min=1)
    rep_memory = memory.repeat_interleave(beam, dim=0)
    rep_lens = memory_lens.repeat_interleave(beam, dim=0)
    prefixes = torch.full((n * beam, 1), sos_id, dtype=torch.long, device=device)
    scores = torch.full((n, beam), float("-inf"), device=device)
    scores[:, 0] = 0.0  # one live hypothesis at the start
    best: List[List[int]] = [[] for _ in range(n)]
    best_score = torch.full((n,), float("-inf"), device=device)
    done = torch.zeros(n, dtype=torch.bool, device=device)
    for step in range(int(max_lens.max())):
        u = prefixes.size(1)
        logits = decoder(
            rep_memory, rep_lens, prefixes, torch.full((n * beam,), u, device=device)
        )
        logp = logits[:, -1].log_softmax(-1).view(n, beam, -1)
        vocab = logp.size(-1)
        total = scores.unsqueeze(-1) + logp + options.length_penalty
        # The best ``beam`` extensions of all live hypotheses, <eos> included
        # (as ESPnet's search): an <eos> among them finishes that hypothesis,
        # the others stay live. With beam 1 this is greedy decoding.
        top = total.view(n, beam * vocab).topk(beam, dim=1)
        source = (top.indices // vocab).tolist()
        token = (top.indices % vocab).tolist()
        values = top.values.tolist()
        rows, tokens = [], []
        new_scores = torch.full((n, beam), float("-inf"), device=device)
        for i in range(n):
            live = 0
            for k in range(beam):
                if values[i][k] == float("-inf"):
                    continue
                row = i * beam + source[i][k]
                if token[i][k] == eos_id:
                    if not done[i] and values[i][k] > float(best_score[i]):
                        best[i] = prefixes[row, 1:].tolist()
                        best_score[i] = values[i][k]
                    continue
                rows.append(row)
                tokens.append(token[i][k])
                new_scores[i, live] = values[i][k]
                live += 1
            while live < beam:  # padding: a dead copy
                rows.append(i * beam)
                tokens.append(eos_id)
                live += 1
        prefixes = torch.cat(
            [prefixes[torch.tensor(rows, device=device)],
             torch.tensor(tokens, device=device).view(-1, 1)], dim=1,
        )  # fmt: skip
        scores = new_scores
        live_best = scores.max(dim=1).values
        # Token log-probs are <= 0: without a positive length penalty no live
        # hypothesis can beat a finished one that scores higher already.
        if options.length_penalty <= 0:
            done |= live_best <= best_score
        last_step = step + 1 >= max_lens
        for i in torch.nonzero(last_step & ~done & torch.isinf(best_score)).view(-1):
            # No <eos> within the length bound: the best hypothesis as it is.
            row = prefixes[int(i) * beam + int(scores[i].argmax())]
            best[int(i)] = row[1:].tolist()
        done |= last_step | torch.isinf(live_best)
        if bool(done.all()):
            break
    return best
