"""Online (streaming) fbank: the training features, computed as audio arrives.

:class:`OnlineFbankExtractor` wraps ``kaldifeat.OnlineFbank`` with exactly the
options of the offline extractor that :func:`asrk2.features.fbank.compute_fbank`
uses (lhotse's ``KaldifeatFbankConfig``: no dither, ``snip_edges=False``, 25 ms
povey window, 10 ms shift, 80 bins, high_freq -400 Hz, ...), so that a stream
fed in pieces of any size yields the frames of the offline features of the
whole signal.

With ``snip_edges=False`` frame ``m`` is centred on sample ``160 m + 80``
(at 16 kHz) and its 400-sample window reaches sample ``160 m + 280``; a frame
is ready once that sample has arrived, and the last one or two frames (whose
windows run past the end and are reflected) only after :meth:`input_finished`.

Example::

    fbank = OnlineFbankExtractor()
    for piece in audio_pieces:          # 1-D float tensors in [-1, 1]
        fbank.accept_waveform(piece)
        feats = fbank.pop_frames()      # (T, 80), T >= 0
    fbank.input_finished()
    last = fbank.pop_frames()
"""

import functools
from typing import Any, Dict, List, Union

import kaldifeat
import numpy as np
import torch

from asrk2.features.fbank import FbankConfig, make_fbank_extractor

__all__ = ["OnlineFbankExtractor"]

# kaldifeat keeps computed frames in a recycling buffer of this many frames;
# bounded, so that a long-lived stream does not keep every frame it produced.
_KALDIFEAT_KEPT_FRAMES = 1000
# accept_waveform hands kaldifeat at most this many frames' worth of samples
# at a time and collects the new frames in between, so none of them can be
# recycled before it is popped, whatever the size of the caller's piece.
_FRAMES_PER_FEED = _KALDIFEAT_KEPT_FRAMES // 2


@functools.lru_cache(maxsize=None)
def _offline_options(num_mel_bins: int) -> Dict[str, Any]:
    """The kaldifeat options of the offline CPU extractor, as a dict.

    Taken from :func:`make_fbank_extractor` itself rather than restated, so
    the online frames follow any change of the training front end.
    """
    config = FbankConfig(num_mel_bins=num_mel_bins, device="cpu")
    return make_fbank_extractor(config).config.to_dict()


class OnlineFbankExtractor:
    """Fbank frames of one stream, computed incrementally on the CPU.

    Args:
      num_mel_bins: feature dimension; must match the offline features the
        model was trained on.
    """

    def __init__(self, num_mel_bins: int = 80) -> None:
        options = kaldifeat.FbankOptions.from_dict(_offline_options(num_mel_bins))
        options.frame_opts.max_feature_vectors = _KALDIFEAT_KEPT_FRAMES
        self.sample_rate = int(options.frame_opts.samp_freq)
        self.num_mel_bins = num_mel_bins
        self._fbank = kaldifeat.OnlineFbank(options)
        self._samples_per_feed = _FRAMES_PER_FEED * int(
            round(options.frame_opts.frame_shift_ms * self.sample_rate / 1000)
        )
        self._num_popped = 0  # frames handed out or collected in _ready
        self._ready: List[torch.Tensor] = []  # (T_i, num_mel_bins) each
        self._finished = False

    @property
    def finished(self) -> bool:
        """True once :meth:`input_finished` was called."""
        return self._finished

    def accept_waveform(
        self, samples: Union[torch.Tensor, np.ndarray], sample_rate: int = 16000
    ) -> None:
        """Appends audio to the stream and computes every frame it completes.

        Args:
          samples: 1-D float waveform (num_samples,) in [-1, 1], as lhotse
            loads audio; any length, including 0.
          sample_rate: its rate; must be the extractor's (16 kHz).
        Raises:
          ValueError: on another rate, a non-1-D or integer input, or audio
            after :meth:`input_finished`.
        """
        if self._finished:
            raise ValueError("accept_waveform called after input_finished")
        if sample_rate != self.sample_rate:
            raise ValueError(
                f"expected audio at {self.sample_rate} Hz, got {sample_rate} Hz "
                "(resample first)"
            )
        samples = torch.as_tensor(samples)
        if samples.dim() != 1:
            raise ValueError(
                f"expected a 1-D waveform (num_samples,), got shape "
                f"{tuple(samples.shape)}"
            )
        if not samples.is_floating_point():
            raise ValueError(
                f"expected float samples in [-1, 1], got dtype {samples.dtype}"
            )
        samples = samples.to(device="cpu", dtype=torch.float32).contiguous()
        for piece in samples.split(self._samples_per_feed):
            self._fbank.accept_waveform(self.sample_rate, piece)
            self._collect()

    def input_finished(self) -> None:
        """Marks the end of the audio: the last frames become ready."""
        if not self._finished:
            self._finished = True
            self._fbank.input_finished()
            self._collect()

    def pop_frames(self) -> torch.Tensor:
        """The frames that became ready since the last call.

        Returns:
          Float tensor (T, num_mel_bins), T >= 0.
        """
        if not self._ready:
            return torch.zeros(0, self.num_mel_bins)
        frames = torch.cat(self._ready) if len(self._ready) > 1 else self._ready[0]
        self._ready = []
        return frames

    def _collect(self) -> None:
        """Moves kaldifeat's newly ready frames into ``_ready``."""
        num_ready = self._fbank.num_frames_ready
        if num_ready > self._num_popped:
            frames = self._fbank.get_frames(list(range(self._num_popped, num_ready)))
            self._ready.append(torch.cat(frames))
            self._num_popped = num_ready
