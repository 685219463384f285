"""Fixtures for asrk2's tests and benchmarks; not part of the library's API.

- :mod:`asrk2.testing.corpus_layouts`: tiny GigaSpeech- and VoxPopuli-layout
  corpora (espeak-ng audio in each corpus's native files), for the loaders.
- :mod:`asrk2.testing.toy_data`: a toy corpus of cuts with features and a BPE
  lang dir, for trainer and decoding tests that need no audio.

They live in the package (not under ``tests/``) because the benchmarks use
them too; nothing in ``asrk2`` outside this package imports them.
"""
