"""asrk2.lang: tokens, lexicons, n-gram LMs and decoding graphs (the lang stage).

- :mod:`asrk2.lang.bpe`: sentencepiece models and ``tokens.txt``.
- :mod:`asrk2.lang.lexicon`: ``words.txt``, BPE and CMUdict lexicons,
  disambiguation symbols.
- :mod:`asrk2.lang.ngram`: interpolated modified Kneser-Ney LMs, ARPA I/O.
- :mod:`asrk2.lang.graphs`: L, H, G, LG, HL and HLG with k2;
  :mod:`asrk2.lang.fsa_minimize` adds the minimisation k2 lacks.
- :mod:`asrk2.lang.prepare`: the lang-dir steps, skipping what is up to date.
- :mod:`asrk2.lang.graph_compiler`, :mod:`asrk2.lang.mmi_graphs`: training graphs.
"""
