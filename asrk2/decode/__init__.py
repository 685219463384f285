"""asrk2.decode: decoding CTC outputs with k2 graphs, and scoring the results."""
from asrk2.decode.ctc_decode import (
    build_ctc_topo,
    ctc_greedy_decode,
    get_lattice,
    one_best_token_ids,
)
from asrk2.decode.methods import (
    METHODS,
    DecodingGraphs,
    MethodOptions,
    decode_batch,
    load_graphs,
)
from asrk2.decode.rescore import (
    Nbest,
    add_lm_scores,
    rescore_whole_lattice,
    sample_nbest,
    word_seq_lm_scores,
)
from asrk2.decode.scoring import (
    ErrorStats,
    Result,
    compute_wer,
    read_text_results,
    score_text_files,
    write_errs,
    write_recogs,
    write_wer_summary,
)

__all__ = [
    "METHODS",
    "DecodingGraphs",
    "ErrorStats",
    "MethodOptions",
    "Nbest",
    "Result",
    "add_lm_scores",
    "decode_batch",
    "load_graphs",
    "rescore_whole_lattice",
    "sample_nbest",
    "word_seq_lm_scores",
    "build_ctc_topo",
    "compute_wer",
    "ctc_greedy_decode",
    "get_lattice",
    "one_best_token_ids",
    "read_text_results",
    "score_text_files",
    "write_errs",
    "write_recogs",
    "write_wer_summary",
]
