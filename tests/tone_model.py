"""A scripted acoustic model over real online fbank, and the tone audio it reads.

An output frame is blank when its feature frame holds no tone (all mel
bins at the floor), else the token of the tone's mel band; so a stream of
tones and pauses has known segments, texts and times. Used by the server
tests of both transports.
"""

from types import SimpleNamespace
from typing import List, Tuple

import numpy as np
import torch

from asrk2.frames import chunk_input_frames, subsampled_lengths
from asrk2.model.conformer import StreamingState

SAMPLE_RATE = 16000
V = 5
PIECES = ["<blk>", "\u2581A", "\u2581B", "\u2581C", "\u2581D"]
# A tone's frequency for each token: mel bands 0-19, 20-39, 40-59, 60-79.
FREQ = {"A": 300.0, "B": 1000.0, "C": 2500.0, "D": 6000.0}


class ToneModel:
    """CTC output per frame: blank in silence, else the tone's mel band + 1."""

    num_features = 80
    subsampling_factor = 4
    config = SimpleNamespace(encoder=SimpleNamespace(causal=True))

    @property
    def encoder(self) -> "ToneModel":
        return self

    @staticmethod
    def chunk_input_frames(chunk_size: int, first: bool) -> int:
        return chunk_input_frames(chunk_size, first)

    def init_state(self, batch_size: int, device: torch.device) -> StreamingState:
        empty = torch.zeros(1, batch_size, 0, 4)
        return StreamingState(torch.zeros(batch_size, 0, 80), empty, empty)

    def forward_chunk(
        self, x: torch.Tensor, state: StreamingState, left: object
    ) -> Tuple[torch.Tensor, StreamingState]:
        n = int(subsampled_lengths(torch.tensor(x.size(1))))
        frames = x[:, 0 : 4 * n : 4]  # (B, n, 80)
        band = (frames.argmax(-1) // 20 + 1).clamp(1, V - 1)
        labels = torch.where(frames.max(-1).values > 0.0, band, torch.zeros_like(band))
        probs = torch.full((x.size(0), n, V), 0.01 / (V - 1))
        probs.scatter_(2, labels.unsqueeze(-1), 0.99)
        return probs.log(), state


def words(ids: List[int]) -> List[str]:
    return [PIECES[i][1:] for i in ids]


def tone(letter: str, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * FREQ[letter] * t)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)


# Three utterances separated by 2 s pauses (> 1.2 s + one 0.16 s chunk).
AUDIO = np.concatenate(
    [silence(0.5), tone("A", 0.4), silence(2.0), tone("C", 0.4), tone("B", 0.3),
     silence(2.0), tone("D", 0.4), silence(0.3)]
)  # fmt: skip
EXPECTED = [["A"], ["C", "B"], ["D"]]
# Each word's (start, end) in seconds; fbank frames are 25 ms windows.
WORD_TIMES = [[(0.5, 0.9)], [(2.9, 3.3), (3.3, 3.6)], [(5.6, 6.0)]]
