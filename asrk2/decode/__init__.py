"""asrk2.decode: decoding CTC outputs with k2 graphs, and scoring the results."""
from asrk2.decode.ctc_decode import (
    build_ctc_topo,
    ctc_greedy_decode,
    get_lattice,
    one_best_token_ids,
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
    "ErrorStats",
    "Result",
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
