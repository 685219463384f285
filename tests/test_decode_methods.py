"""Tests for the offline decoding methods on a 3-word inline lexicon."""

import ast
import math
from pathlib import Path
from typing import Dict, List, Tuple

import k2
import pytest
import torch

from asrk2.beams import SearchBeams
from asrk2.checkpoint import load_model, save_checkpoint
from asrk2.config import from_dict, to_dict
from asrk2.data.kaldi_dir import import_kaldi_dir
from asrk2.decode.ctc_decode import get_lattice, one_best_token_ids
from asrk2.decode.methods import (
    METHODS,
    DecodingGraphs,
    MethodOptions,
    check_methods,
    decode_batch,
)
from asrk2.decode.offline import decode_and_score
from asrk2.decode.rescore import (
    add_lm_scores,
    rescore_whole_lattice,
    sample_nbest,
    word_seq_lm_scores,
)
from asrk2.decode.stream_eval import stream_decode_and_score
from asrk2.decode.streaming import StreamingOptions
from asrk2.experiment import ExperimentConfig
from asrk2.features.fbank import FbankConfig, compute_fbank
from asrk2.lang.bpe import load_bpe
from asrk2.lang.graphs import (
    G_for_rescoring,
    build_H,
    compile_LG,
    compose_H,
    fst_text_to_G,
    lexicon_to_fst,
)
from asrk2.lang.lexicon import (
    add_disambig_symbols,
    add_disambig_tokens,
    make_word_table,
)
from asrk2.lang.prepare import (
    compile_graphs,
    prepare_bpe_lang,
    prepare_lms,
    write_transcripts,
)
from asrk2.model.ctc_model import CtcModel

TOKENS = {"<blk>": 0, "a": 1, "b": 2, "c": 3}
# "A" is a prefix of "AC", so L_disambig needs "#1" on it.
LEXICON = [("A", ["a"]), ("AC", ["a", "c"]), ("B", ["b"])]
WORDS = make_word_table([w for w, _ in LEXICON], specials=())
ID2WORD = {i: w for w, i in WORDS.items()}
# -ln p of each word in a unigram word loop; "" is the final weight.
UNIGRAM = {"A": 0.6, "AC": 0.1, "B": 0.3}

WIDE_BEAMS = SearchBeams(search_beam=30, output_beam=30)


def word_loop_G(probs: Dict[str, float]) -> k2.Fsa:
    """A one-state word loop G with -ln p costs (p = 1 everywhere: uniform)."""
    lines = [f"0 0 {WORDS[w]} {WORDS[w]} {-math.log(p)}" for w, p in probs.items()]
    return fst_text_to_G("\n".join(lines + ["0 0.0"]))


def make_graphs(G_probs: Dict[str, float]) -> Tuple[k2.Fsa, k2.Fsa, k2.Fsa]:
    """``(HL, HLG, G rescoring acceptor)`` from the inline lexicon."""
    lex_d, max_d = add_disambig_symbols(LEXICON)
    tok_d, first_tok = add_disambig_tokens(TOKENS, max_d)
    L = lexicon_to_fst(lex_d, tok_d, WORDS, need_self_loops=True)
    G = word_loop_G(G_probs)
    H = build_H(max(TOKENS.values()))
    HL = compose_H(H, compile_LG(L.clone(), None, first_tok, WORDS["#0"]))
    HLG = compose_H(H, compile_LG(L.clone(), G, first_tok, WORDS["#0"]))
    G_resc = G_for_rescoring(G, WORDS["#0"])
    return add_lm_scores(HL), add_lm_scores(HLG), G_resc


def peaky(frames: List[int], peak: float = 8.0) -> torch.Tensor:
    """Log-probs (T, 4) with ``frames[t]`` far ahead on frame t."""
    logits = torch.zeros(len(frames), len(TOKENS))
    logits[torch.arange(len(frames)), torch.tensor(frames)] = peak
    return logits.log_softmax(-1)


def random_batch(seed: int, lens: List[int]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Random log-probs (N, T, 4) and their lengths (N,), unsorted."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lens), max(lens), len(TOKENS), generator=g) * 2
    return x.log_softmax(-1), torch.tensor(lens)


def words(hyps: List[List[int]]) -> List[List[str]]:
    return [[ID2WORD[i] for i in h] for h in hyps]


WIDE = MethodOptions(beams=WIDE_BEAMS, num_paths=20)


def test_hl_and_hlg_1best_peaky() -> None:
    HL, HLG, _ = make_graphs(UNIGRAM)
    lp = peaky([1, 0, 2, 0, 1, 3, 0]).unsqueeze(0)
    graphs = DecodingGraphs(HL=HL, HLG=HLG)
    out = decode_batch(["hl-1best", "hlg-1best"], lp, torch.tensor([7]), graphs, WIDE)
    assert words(out["hl-1best"]) == [["A", "B", "AC"]]
    assert words(out["hlg-1best"]) == [["A", "B", "AC"]]


@pytest.mark.parametrize("seed", [0, 1])
def test_uniform_G_hlg_equals_hl(seed: int) -> None:
    HL, HLG, _ = make_graphs({w: 1.0 for w in UNIGRAM})
    lp, lens = random_batch(seed, [9, 12, 5])
    graphs = DecodingGraphs(HL=HL, HLG=HLG)
    out = decode_batch(["hl-1best", "hlg-1best"], lp, lens, graphs, WIDE)
    assert out["hl-1best"] == out["hlg-1best"]
    assert any(out["hl-1best"])


def test_results_follow_batch_order() -> None:
    HL, HLG, G = make_graphs(UNIGRAM)
    lp, lens = random_batch(3, [4, 11, 7, 11])
    graphs = DecodingGraphs(HL=HL, HLG=HLG, G=G)
    methods = ["hl-1best", "hlg-1best", "whole-lattice-rescoring"]
    batch = decode_batch(methods, lp, lens, graphs, WIDE)
    for i, n in enumerate(lens.tolist()):
        single = decode_batch(methods, lp[i : i + 1, :n], lens[i : i + 1], graphs, WIDE)
        for key, hyps in single.items():
            assert batch[key][i] == hyps[0], key


def test_word_seq_lm_scores_sum_unigrams() -> None:
    _, _, G = make_graphs(UNIGRAM)
    seqs = [["A", "B"], [], ["AC", "AC", "A"]]
    got = word_seq_lm_scores(G, [[WORDS[w] for w in s] for s in seqs])
    expected = [sum(math.log(UNIGRAM[w]) for w in s) for s in seqs]
    assert got.tolist() == pytest.approx(expected, abs=1e-5)


def test_nbest_one_path_on_peaky_input_is_the_1best() -> None:
    _, HLG, _ = make_graphs(UNIGRAM)
    lp = torch.stack([peaky([1, 0, 2, 1, 3], 20.0), peaky([2, 2, 0, 1, 0], 20.0)])
    lattice = get_lattice(lp, torch.tensor([5, 5]), HLG, WIDE_BEAMS)
    nbest = sample_nbest(lattice, num_paths=1, nbest_scale=1.0)
    assert nbest.words == [[h] for h in one_best_token_ids(lattice)]
    best = k2.shortest_path(lattice, use_double_scores=True)
    tot = best.get_tot_scores(use_double_scores=True, log_semiring=False)
    assert nbest.scores.tolist() == pytest.approx(tot.tolist(), abs=1e-4)


def test_nbest_scores_are_path_scores() -> None:
    _, HLG, G = make_graphs(UNIGRAM)
    lp, lens = random_batch(5, [8, 6])
    lattice = get_lattice(lp, lens, HLG, WIDE_BEAMS)
    nbest = sample_nbest(lattice, num_paths=30)
    best = k2.shortest_path(lattice, use_double_scores=True)
    tot = best.get_tot_scores(use_double_scores=True, log_semiring=False)
    for i, hyps in enumerate(nbest.words):
        assert len(set(map(tuple, hyps))) == len(hyps)  # unique
        assert (nbest.scores[nbest.utt == i] <= tot[i] + 1e-4).all()
    # The LM part of an HLG path is exactly its unigram G score.
    lm = word_seq_lm_scores(G, nbest.flat_words())
    assert nbest.lm_scores.tolist() == pytest.approx(lm.tolist(), abs=1e-4)


def test_nbest_methods_pick_argmax() -> None:
    HL, HLG, G = make_graphs(UNIGRAM)
    lp, lens = random_batch(7, [10, 6, 8])
    graphs = DecodingGraphs(HLG=HLG, G=G)
    opts = MethodOptions(
        WIDE_BEAMS, num_paths=30, lm_scales=[0.0], attention_scales=[50.0]
    )
    torch.manual_seed(0)

    def fewest_tokens(tokens: List[List[int]], utt: torch.Tensor) -> torch.Tensor:
        return -torch.tensor([float(len(t)) for t in tokens])

    methods = ["hlg-nbest", "nbest-rescoring", "attention-rescoring"]
    out = decode_batch(methods, lp, lens, graphs, opts, scorer=fewest_tokens)
    torch.manual_seed(0)
    nbest = sample_nbest(get_lattice(lp, lens, HLG, WIDE_BEAMS), 30, 0.5)
    for i, hyps in enumerate(nbest.words):
        s, am = nbest.scores[nbest.utt == i], nbest.am_scores[nbest.utt == i]
        assert out["hlg-nbest"][i] == hyps[int(s.argmax())]
        assert out["nbest-rescoring-lm_scale_0.0"][i] == hyps[int(am.argmax())]
        shortest = min(len(t) for t in nbest.tokens[i])
        picked = out["attention-rescoring-scale_50.0"][i]
        assert len(nbest.tokens[i][hyps.index(picked)]) == shortest


@pytest.mark.parametrize("seed", [0, 1])
def test_whole_lattice_rescoring(seed: int) -> None:
    HL, HLG, G = make_graphs(UNIGRAM)
    lp, lens = random_batch(seed, [9, 12, 5])
    hl_lattice = get_lattice(lp, lens, HL, WIDE_BEAMS)
    resc = rescore_whole_lattice(hl_lattice, G, [0.0, 1.0])
    # Scale 0: only acoustic scores, the HL 1-best.
    assert resc[0.0] == one_best_token_ids(hl_lattice)
    # Scale 1 with G on a wide HL lattice: the HLG 1-best.
    assert resc[1.0] == one_best_token_ids(get_lattice(lp, lens, HLG, WIDE_BEAMS))


def test_check_methods() -> None:
    check_methods(["ctc-greedy", "hlg-1best"])
    for bad in ([], ["hlg-2best"], ["hl-1best", "hl-1best"]):
        with pytest.raises(ValueError):
            check_methods(bad)


TINY_MODEL = {
    "data": {
        "max_duration": 20.0,
        "num_buckets": 1,
        "spec_augment": {"enabled": False},
    },
    "model": {
        "encoder": {
            "d_model": 16,
            "num_heads": 2,
            "ffn_dim": 32,
            "num_layers": 1,
            "conv_kernel_size": 3,
            "dropout": 0.0,
            "subsampling_channels": 4,
            "causal": True,
        },
        "decoder": {"num_layers": 1},
    },
}


def test_offline_and_streaming_end_to_end(tmp_path: Path, tiny_kaldi_dir: Path) -> None:
    """Every method end to end: random tiny model, real lang dir and cuts."""
    raw = import_kaldi_dir(tiny_kaldi_dir, tmp_path / "manifests", "test")
    cuts = compute_fbank(
        raw, tmp_path / "fbank", tmp_path / "cuts.jsonl.gz", FbankConfig(device="cpu")
    )
    lang = tmp_path / "lang"
    texts = ["TURN ON THE LIGHTS", "WHAT TIME IS IT", "CALL MOM AT FIVE"] * 3
    write_transcripts(texts, lang)
    prepare_bpe_lang(lang, vocab_size=24)
    prepare_lms(lang, orders=(3, 4))
    compile_graphs(lang, lm_order=3, with_hl=True)
    config = from_dict(ExperimentConfig, TINY_MODEL)
    config.model.vocab_size = load_bpe(lang / "bpe.model").get_piece_size()
    torch.manual_seed(0)
    model = CtcModel(config.model)
    exp = tmp_path / "exp"
    save_checkpoint(
        exp / "epoch-1.pt", {"model": model.state_dict(), "config": to_dict(config)}
    )
    opts = MethodOptions(num_paths=5, lm_scales=[0.5, 1.0], attention_scales=[1.0])
    loaded, loaded_config = load_model(exp)
    summary = decode_and_score(
        loaded, loaded_config, cuts, lang, tmp_path / "out", "t", METHODS, opts, True
    )
    # CTM files of the 1-best methods: the recognised words, timed in the cut.
    for method in ("ctc-greedy", "hl-1best", "hlg-1best"):
        recogs = (tmp_path / "out" / f"recogs-t-{method}.txt").read_text()
        hyps = {
            line.split(":")[0]: ast.literal_eval(line.split("hyp=", 1)[1])
            for line in recogs.splitlines()
            if "\thyp=" in line
        }
        ctm_rows = [
            line.split()
            for line in (tmp_path / "out" / f"ctm-t-{method}.ctm")
            .read_text()
            .splitlines()
        ]
        durations = {cut.id: cut.duration for cut in cuts}
        for cut_id, words in hyps.items():
            mine = [r for r in ctm_rows if r[0] == cut_id]
            assert [r[4] for r in mine] == words
            starts = [float(r[2]) for r in mine]
            assert starts == sorted(starts)
            for r in mine:
                assert (
                    float(r[3]) > 0
                    and float(r[2]) + float(r[3]) <= durations[cut_id] + 0.05
                )
                assert 0.0 < float(r[5]) <= 1.0
    scaled = {"nbest-rescoring", "whole-lattice-rescoring", "attention-rescoring"}
    assert {k for k in summary if k in METHODS} == set(METHODS) - scaled
    assert "whole-lattice-rescoring-lm_scale_1.0" in summary
    assert "attention-rescoring-scale_1.0" in summary
    assert len(summary) == 5 + 2 + 2 + 1  # 5 methods without scales
    for key in summary:
        recogs = (tmp_path / "out" / f"recogs-t-{key}.txt").read_text()
        assert recogs.count("hyp=") == len(cuts)
    table = (tmp_path / "out" / "wer-summary-t.txt").read_text().splitlines()
    assert len(table) == 1 + len(summary)

    # Streaming over the same set: plumbing, files and timings.
    streaming = StreamingOptions(**loaded_config.decode.kwargs())
    rows = stream_decode_and_score(
        loaded, cuts, lang, tmp_path / "out", streaming, "HLG", "t", (2, 100)
    )
    assert set(rows) == {"streaming-HLG-chunk2", "streaming-HLG-chunk100"}
    for key, row in rows.items():
        assert row["rtf"] > 0 and row["latency_p95_ms"] > 0
        recogs = (tmp_path / "out" / f"recogs-t-{key}.txt").read_text()
        assert recogs.count("hyp=") == len(cuts)
    assert (tmp_path / "out" / "wer-summary-t-streaming.txt").exists()
    # A chunk that covers each whole utterance gives offline hlg-1best's hypotheses.
    offline = (tmp_path / "out" / "recogs-t-hlg-1best.txt").read_text()
    assert (tmp_path / "out" / "recogs-t-streaming-HLG-chunk100.txt").read_text() == (
        offline
    )
