"""Streaming decoding (chunked encoder + online k2 search) against offline decoding."""

from typing import Iterator, List

import k2
import pytest
import torch

from asrk2.decode.ctc_decode import get_lattice, one_best_token_ids
from asrk2.decode.streaming import StreamingDecoder, StreamingOptions, stream_decode
from asrk2.lang.graphs import build_H, compile_LG, compose_H, lexicon_to_fst
from asrk2.lang.lexicon import (
    add_disambig_symbols,
    add_disambig_tokens,
    make_word_table,
)
from asrk2.model import ConformerConfig, CtcModel, CtcModelConfig

ENC = ConformerConfig(
    num_features=10, d_model=16, num_heads=2, ffn_dim=32, num_layers=2,
    conv_kernel_size=3, dropout=0.0, causal=True,
)  # fmt: skip
TOKENS = {"<blk>": 0, "a": 1, "b": 2, "c": 3}
LEXICON = [("A", ["a"]), ("AC", ["a", "c"]), ("B", ["b"])]


def make_HL() -> k2.Fsa:
    """HL of a 3-word lexicon over the model's 3 tokens."""
    words = make_word_table([w for w, _ in LEXICON], specials=())
    lex_d, max_d = add_disambig_symbols(LEXICON)
    tok_d, first_tok = add_disambig_tokens(TOKENS, max_d)
    L = lexicon_to_fst(lex_d, tok_d, words, need_self_loops=True)
    return compose_H(build_H(3), compile_LG(L, None, first_tok, words["#0"]))


def make_model(seed: int) -> CtcModel:
    torch.manual_seed(seed)
    model = CtcModel(CtcModelConfig(encoder=ENC, vocab_size=len(TOKENS))).eval()
    # Sharper outputs, so that hypotheses are not empty.
    with torch.no_grad():
        model.ctc_output.weight.mul_(4.0)
    return model


def offline(
    model: CtcModel, graph: k2.Fsa, x: torch.Tensor, chunk: int, opts: StreamingOptions
) -> List[List[int]]:
    """Offline chunked encoder + pruned intersection, one utterance per row."""
    lens = torch.full((x.size(0),), x.size(1))
    with torch.no_grad():
        log_probs, out_lens = model(x, lens, chunk, opts.left_context_frames)
    lattice = get_lattice(
        log_probs, out_lens, graph, opts.search_beam, opts.output_beam,
        opts.min_active_states, opts.max_active_states,
    )  # fmt: skip
    return one_best_token_ids(lattice)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny per-chunk ops: extra intra-op threads only contend (100x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


GRAPHS = {"H": lambda: build_H(3), "HL": make_HL}


@pytest.mark.parametrize("graph_name", ["H", "HL"])
@pytest.mark.parametrize("seed", [0, 1])
def test_one_chunk_equals_offline(graph_name: str, seed: int) -> None:
    model, graph = make_model(seed), GRAPHS[graph_name]()
    x = torch.randn(2, 67, ENC.num_features)
    opts = StreamingOptions(chunk_size=100, left_context_frames=-1)
    decoder = StreamingDecoder(model, graph, opts, num_streams=2)
    final = decoder.accept(x)  # the whole utterance in one call
    assert decoder.num_frames == 16  # (67 - 3) // 4
    assert final == offline(model, graph, x, 100, opts)
    assert any(final)


@pytest.mark.parametrize("graph_name", ["H", "HL"])
@pytest.mark.parametrize("chunk", [2, 5])
def test_small_chunks_final_equals_offline_chunked(graph_name: str, chunk: int) -> None:
    model, graph = make_model(2), GRAPHS[graph_name]()
    x = torch.randn(2, 83, ENC.num_features)
    opts = StreamingOptions(chunk_size=chunk, left_context_frames=4)
    partials = stream_decode(model, graph, x, opts)
    assert len(partials) > 3
    assert partials[-1] == offline(model, graph, x, chunk, opts)


def test_H_partials_only_grow() -> None:
    """With H the partial result is greedy CTC so far: a prefix of the next."""
    model = make_model(3)
    x = torch.randn(1, 120, ENC.num_features)
    partials = stream_decode(model, build_H(3), x, StreamingOptions(chunk_size=2))
    for before, after in zip(partials, partials[1:]):
        assert after[0][: len(before[0])] == before[0]
    assert len(partials[-1][0]) > 0
