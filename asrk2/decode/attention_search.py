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

With ``ctc_weight`` > 0 the score is joint, as in ESPnet and WeNet:
``(1 - w) * attention + w * CTC prefix score``, where the CTC prefix score
of a hypothesis is the log-probability that the CTC output starts with it
(:class:`CtcPrefixScorer`, Watanabe et al. 2017); with ``<eos>`` it is the
CTC log-likelihood of the whole hypothesis. Only the ``ctc_pre_beam`` best
tokens by attention are scored by CTC at each step.
"""

from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch

from asrk2.model.decoder import SOS_EOS_ID, AttentionDecoder

# The CTC blank's id, which the decoder's vocabulary shares but never emits.
BLANK_ID = 0

__all__ = ["BeamSearchOptions", "attention_beam_search"]


@dataclass
class BeamSearchOptions:
    """Options of ``attention-beam-search``.

    Attributes:
      beam_size: hypotheses kept per utterance.
      length_penalty: added to a hypothesis's score per token.
      max_len_ratio: most output tokens per encoder frame.
      ctc_weight: weight of the CTC prefix score in the joint score (needs
        the CTC log-probs); 0: attention alone.
      ctc_pre_beam: tokens per hypothesis scored by CTC at each step.
    """

    beam_size: int = 4
    length_penalty: float = 0.0
    max_len_ratio: float = 1.0
    ctc_weight: float = 0.0
    ctc_pre_beam: int = 16

    def __post_init__(self) -> None:
        if self.beam_size < 1:
            raise ValueError(f"beam_size must be >= 1, got {self.beam_size}")
        if self.max_len_ratio <= 0:
            raise ValueError(f"max_len_ratio must be > 0, got {self.max_len_ratio}")
        if not 0.0 <= self.ctc_weight <= 1.0:
            raise ValueError(f"ctc_weight must be in [0, 1], got {self.ctc_weight}")
        if self.ctc_pre_beam < 1:
            raise ValueError(f"ctc_pre_beam must be >= 1, got {self.ctc_pre_beam}")


class CtcPrefixScorer:
    """CTC prefix scores of hypotheses extended one token at a time.

    For a prefix ``g`` it keeps ``r_n[t]``/``r_b[t]``: the log-probability
    that the first ``t`` frames emit ``g`` and end in a non-blank / blank
    frame. Extending ``g`` by ``c`` gives the prefix score ``psi(g + c)``
    (any continuation after ``c``) and the new ``r``; ``<eos>`` gives the
    probability of exactly ``g``. Frames past an utterance's length are
    blank with probability 1, so padding changes nothing.

    Args:
      log_probs: CTC log-probs (H, T, V) of the H hypotheses' utterances.
      lens: valid frames (H,).
      eos_id: the end symbol (not a CTC output).
      blank_id: the CTC blank.
    """

    def __init__(
        self,
        log_probs: torch.Tensor,
        lens: torch.Tensor,
        eos_id: int,
        blank_id: int = 0,
    ) -> None:
        h, t, _ = log_probs.shape
        padded = torch.arange(t, device=log_probs.device) >= lens.unsqueeze(1)
        x = log_probs.clone().float()
        x[padded] = float("-inf")
        x[..., blank_id] = x[..., blank_id].masked_fill(padded, 0.0)
        self.x, self.eos_id, self.blank_id = x, eos_id, blank_id
        ninf = torch.full((h, 1), float("-inf"), device=x.device)
        # Column 0 is "no frame yet": the empty prefix has probability 1 there.
        self.r_n = torch.cat(
            [ninf, torch.full((h, t), float("-inf"), device=x.device)], 1
        )
        self.r_b = torch.cat(
            [torch.zeros(h, 1, device=x.device), x[..., blank_id].cumsum(1)], 1
        )
        self.psi = torch.zeros(h, device=x.device)
        self.last = torch.full((h,), -1, dtype=torch.long, device=x.device)

    def extend(
        self, tokens: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Scores of each hypothesis extended by each of its ``tokens`` (H, K).

        Returns:
          ``(psi (H, K), r_n (H, K, T + 1), r_b (H, K, T + 1))``.
        """
        h, k = tokens.shape
        t = self.x.size(1)
        x_c = self.x.gather(2, tokens.clamp(min=0).unsqueeze(1).expand(h, t, k))
        x_c = x_c.permute(0, 2, 1)  # (H, K, T)
        x_blank = self.x[..., self.blank_id].unsqueeze(1)  # (H, 1, T)
        same = (tokens == self.last.unsqueeze(1)).unsqueeze(-1)
        r_n_g = self.r_n.unsqueeze(1)
        r_b_g = self.r_b.unsqueeze(1)
        prev_n = torch.where(same, torch.full_like(r_n_g, float("-inf")), r_n_g)
        phi = torch.logaddexp(r_b_g, prev_n)[..., :-1]  # (H, K, T): before frame t
        r_n = torch.full((h, k, t + 1), float("-inf"), device=self.x.device)
        r_b = torch.full((h, k, t + 1), float("-inf"), device=self.x.device)
        for i in range(1, t + 1):
            r_n[..., i] = (
                torch.logaddexp(r_n[..., i - 1], phi[..., i - 1]) + x_c[..., i - 1]
            )
            r_b[..., i] = (
                torch.logaddexp(r_b[..., i - 1], r_n[..., i - 1]) + x_blank[..., i - 1]
            )
        psi = torch.logsumexp(phi + x_c, dim=-1)
        end = torch.logaddexp(self.r_n[:, -1], self.r_b[:, -1]).unsqueeze(1)
        psi = torch.where(tokens == self.eos_id, end.expand(h, k), psi)
        return psi, r_n, r_b

    def select(
        self,
        tokens: torch.Tensor,
        psi: torch.Tensor,
        r_n: torch.Tensor,
        r_b: torch.Tensor,
    ) -> None:
        """Keeps the chosen extensions as the new hypotheses.

        Args:
          tokens: (H,) the last token of each new hypothesis.
          psi, r_n, r_b: :meth:`extend`'s outputs at the chosen
            (hypothesis, candidate) of each, (H,) and (H, T + 1).
        """
        self.r_n, self.r_b, self.psi, self.last = r_n, r_b, psi, tokens


@torch.no_grad()
def attention_beam_search(
    decoder: AttentionDecoder,
    memory: torch.Tensor,
    memory_lens: torch.Tensor,
    options: BeamSearchOptions = BeamSearchOptions(),
    ctc_log_probs: Optional[torch.Tensor] = None,
    sos_id: int = SOS_EOS_ID,
    eos_id: int = SOS_EOS_ID,
) -> List[List[int]]:
    """The best token sequence of each utterance under the attention decoder.

    Args:
      decoder: the model's attention decoder, in eval mode.
      memory: encoder output (N, T, d_model).
      memory_lens: valid frames (N,).
      options: beam size, length penalty, length bound, CTC weight.
      ctc_log_probs: (N, T, V) CTC log-probs of the same frames, needed when
        ``options.ctc_weight > 0``.
      sos_id, eos_id: the decoder's start and end symbols.
    Returns:
      N token id lists (without sos/eos), in batch order.
    """
    n, beam = memory.size(0), options.beam_size
    device = memory.device
    weight = options.ctc_weight
    if weight > 0 and ctc_log_probs is None:
        raise ValueError("ctc_weight > 0 needs the CTC log-probs")
    max_lens = (memory_lens.float() * options.max_len_ratio).ceil().long().clamp(min=1)
    rep_memory = memory.repeat_interleave(beam, dim=0)
    rep_lens = memory_lens.repeat_interleave(beam, dim=0)
    ctc = None
    if weight > 0:
        assert ctc_log_probs is not None
        ctc = CtcPrefixScorer(
            ctc_log_probs.repeat_interleave(beam, dim=0), rep_lens, eos_id
        )
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
        att = logits[:, -1].log_softmax(-1)  # (H, V)
        att[:, BLANK_ID] = float("-inf")  # the CTC blank is never an output token
        vocab = att.size(-1)
        # Candidate tokens per hypothesis: all of them, or with CTC the
        # ``ctc_pre_beam`` best by attention (CTC prefix scores are costly).
        k = vocab if ctc is None else min(vocab, options.ctc_pre_beam)
        att_k, cand = att.topk(k, dim=-1)  # (H, K)
        gain = att_k
        if ctc is not None:
            psi, r_n, r_b = ctc.extend(cand)
            joint = (1 - weight) * att_k + weight * (psi - ctc.psi.unsqueeze(1))
            # A token attention rules out stays out (0 x -inf is nan).
            gain = torch.where(torch.isinf(att_k), att_k, joint)
        total = scores.unsqueeze(-1) + gain.view(n, beam, k) + options.length_penalty
        # The best ``beam`` extensions of all live hypotheses, <eos> included
        # (as ESPnet's search): an <eos> among them finishes that hypothesis,
        # the others stay live. With beam 1 this is greedy decoding.
        top = total.view(n, beam * k).topk(beam, dim=1)
        picks = (top.indices // k).tolist(), (top.indices % k).tolist()
        values = top.values.tolist()
        rows, slots = [], []
        new_scores = torch.full((n, beam), float("-inf"), device=device)
        for i in range(n):
            live = 0
            for j in range(beam):
                row, slot = i * beam + picks[0][i][j], picks[1][i][j]
                if values[i][j] == float("-inf"):
                    continue
                if int(cand[row, slot]) == eos_id:
                    if not done[i] and values[i][j] > float(best_score[i]):
                        best[i] = prefixes[row, 1:].tolist()
                        best_score[i] = values[i][j]
                    continue
                rows.append(row)
                slots.append(slot)
                new_scores[i, live] = values[i][j]
                live += 1
            while live < beam:  # padding: a dead copy of the first row
                rows.append(i * beam)
                slots.append(0)
                live += 1
        row_index = torch.tensor(rows, device=device)
        slot_index = torch.tensor(slots, device=device)
        tokens = cand[row_index, slot_index]
        prefixes = torch.cat([prefixes[row_index], tokens.view(-1, 1)], dim=1)
        if ctc is not None:
            ctc.select(
                tokens,
                psi[row_index, slot_index],
                r_n[row_index, slot_index],
                r_b[row_index, slot_index],
            )
        scores = new_scores
        live_best = scores.max(dim=1).values
        # Token log-probs are <= 0 (the CTC prefix score never grows either):
        # without a positive length penalty no live hypothesis can beat a
        # finished one that scores higher already.
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
