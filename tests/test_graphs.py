"""Tests for asrk2.lang.graphs: L, H, G, HL and HLG on tiny lexicons and a corpus."""

import itertools
import math
import runpy
import sys
from pathlib import Path
from typing import Dict, List, Sequence

import k2
import pytest
import torch

from asrk2.data.sentences import SentenceGenerator
from asrk2.decode.ctc_decode import get_lattice, one_best_token_ids
from asrk2.lang import graphs
from asrk2.lang.lexicon import (
    UNK_WORD,
    add_disambig_symbols,
    add_disambig_tokens,
    read_lexicon,
    read_symbol_table,
    words_to_ids,
)
from asrk2.lang.ngram import read_arpa
from asrk2.lang.prepare import (
    compile_graphs,
    prepare_bpe_lang,
    prepare_lms,
    prepare_phone_lang,
    write_transcripts,
)

ROOT = Path(__file__).resolve().parent.parent
NUM_SENTENCES = 300
NBPE = 100


@pytest.fixture(scope="module")
def texts() -> List[str]:
    gen = SentenceGenerator(seed=7)
    return [gen.sentence() for _ in range(NUM_SENTENCES)]


@pytest.fixture(scope="module")
def lang_dir(tmp_path_factory, texts) -> Path:
    lang = tmp_path_factory.mktemp("lang_bpe")
    write_transcripts(texts, lang)
    prepare_bpe_lang(lang, vocab_size=NBPE)
    prepare_lms(lang, orders=(3,))
    compile_graphs(lang)
    compile_graphs(lang, modified=True, with_hl=False)
    return lang


def best_outputs(
    graph: k2.Fsa, sequences: List[List[int]], eps_special: bool
) -> List[List[int]]:
    """Best-path aux_labels of ``graph`` intersected with each linear label sequence."""
    linear = k2.linear_fsa(sequences)
    lattice = k2.intersect(
        k2.arc_sort(graph), linear, treat_epsilons_specially=eps_special
    )
    return one_best_token_ids(k2.connect(lattice))


def best_scores(
    graph: k2.Fsa, sequences: List[List[int]], eps_special: bool
) -> List[float]:
    linear = k2.linear_fsa(sequences)
    lattice = k2.connect(
        k2.intersect(k2.arc_sort(graph), linear, treat_epsilons_specially=eps_special)
    )
    return lattice.get_tot_scores(use_double_scores=True, log_semiring=False).tolist()


def ctc_frames(token_ids: Sequence[int]) -> List[int]:
    """A CTC alignment: blank, t1, blank, t2, ..., blank."""
    return [0] + [x for t in token_ids for x in (t, 0)]


def token_ids(
    text: str, lexicon: Dict[str, List[str]], token2id: Dict[str, int]
) -> List[int]:
    return [
        token2id[p] for w in text.split() for p in lexicon.get(w, lexicon[UNK_WORD])
    ]


# --- L from tiny inline lexicons ----------------------------------------------------

TINY = [("A", ["a"]), ("AB", ["a", "b"]), ("BA", ["b", "a"]), ("BE", ["b", "a"])]
TOKENS = {"<blk>": 0, "a": 1, "b": 2}
WORDS = {"<eps>": 0, "A": 1, "AB": 2, "BA": 3, "BE": 4, "#0": 5}


def test_lexicon_fst_structure() -> None:
    L = graphs.lexicon_to_fst(TINY, TOKENS, WORDS)
    # One loop state, one state inside each 2-token word, the final state.
    assert graphs.graph_size(L) == (5, 8)
    assert torch.all(L.scores == 0)
    aab, baa = best_outputs(L, [[1, 1, 2], [2, 1, 1]], eps_special=True)
    assert aab == [1, 2]  # A AB
    assert baa in ([3, 1], [4, 1])  # BA A or BE A: homophones


def test_disambiguated_lexicon_determinises() -> None:
    lexicon, max_disambig = add_disambig_symbols(TINY)
    tokens, first = add_disambig_tokens(TOKENS, max_disambig)
    L = graphs.lexicon_to_fst(lexicon, tokens, WORDS, need_self_loops=True)
    det = k2.arc_sort(k2.determinize(k2.arc_sort(L)))
    assert det.properties & k2.fsa_properties.ARC_SORTED_AND_DETERMINISTIC
    LG = graphs.compile_LG(L, None, first, WORDS["#0"])
    assert int(LG.labels.max()) < first  # disambiguation symbols are gone
    outputs = best_outputs(LG, [[1], [1, 2], [2, 1], [1, 2, 2, 1]], eps_special=True)
    assert outputs[:2] == [[1], [2]]
    # Without G, homophones end in the same state, and k2's remove_epsilon
    # keeps one epsilon path per state pair: "b a" is BA or BE, not both.
    assert outputs[2] in ([3], [4]) and outputs[3] == [2] + outputs[2]


def test_phone_lexicon_optional_silence() -> None:
    tokens = {"<eps>": 0, "SIL": 1, "a": 2, "b": 3}
    lexicon = [("A", ["a"]), ("B", ["b"])]
    words = {"<eps>": 0, "A": 1, "B": 2}
    L = graphs.lexicon_to_fst(lexicon, tokens, words, sil_token="SIL", sil_prob=0.25)
    sil, no_sil = math.log(0.25), math.log(0.75)
    sequences = [[2, 3], [1, 2, 1, 3], [2, 3, 1], [2, 1, 1, 3]]
    scores = best_scores(L, sequences, eps_special=True)
    expected = [3 * no_sil, 2 * sil + no_sil, 2 * no_sil + sil, float("-inf")]
    assert scores == pytest.approx(expected, abs=1e-5)
    assert best_outputs(L, sequences[1:2], eps_special=True) == [[1, 2]]


# --- H -------------------------------------------------------------------------------


def collapse(frames: Sequence[int]) -> List[int]:
    merged = [x for i, x in enumerate(frames) if i == 0 or x != frames[i - 1]]
    return [x for x in merged if x != 0]


def test_standard_H_outputs_the_ctc_collapse() -> None:
    H = graphs.build_H(max_token_id=2)
    frames = [
        list(f) for n in (1, 2, 3, 4) for f in itertools.product(range(3), repeat=n)
    ]
    assert best_outputs(H, frames, eps_special=False) == [collapse(f) for f in frames]


def test_modified_H_is_linear_in_the_vocabulary() -> None:
    for v in (10, 20, 499):
        # Standard: from each of V + 1 states to all V + 1 labels, plus final arcs.
        assert graphs.graph_size(graphs.build_H(v)) == (v + 2, (v + 1) * (v + 2))
        assert graphs.graph_size(graphs.build_H(v, modified=True)) == (v + 2, 4 * v + 2)
    # No blank is needed between repeated tokens: "1 1" can output [1, 1].
    H = graphs.build_H(2, modified=True)
    assert best_scores(H, [[1, 1]], eps_special=False)[0] > float("-inf")


# --- G, HLG and HL on the seeded corpus ---------------------------------------------


def test_lang_dir_layout(lang_dir: Path) -> None:
    names = {p.name for p in lang_dir.iterdir()}
    for name in (
        "bpe.model",
        "tokens.txt",
        "words.txt",
        "lexicon.txt",
        "lexicon_disambig.txt",
        "L.pt",
        "L_disambig.pt",
        "lm_3.arpa",
        "G_3_gram.fst.txt",
        "G_3_gram.pt",
        "HLG.pt",
        "HL.pt",
        "HLG_modified.pt",
    ):
        assert name in names
    words = (lang_dir / "words.txt").read_text().splitlines()
    assert words[:2] == ["<eps> 0", "<unk> 1"]
    assert [w.split()[0] for w in words[-3:]] == ["#0", "<s>", "</s>"]
    assert len((lang_dir / "tokens.txt").read_text().splitlines()) == NBPE


def test_G_scores_equal_the_arpa_lm(lang_dir: Path, texts) -> None:
    word2id = read_symbol_table(lang_dir / "words.txt")
    lm = read_arpa(lang_dir / "lm_3.arpa")
    G = graphs.G_for_rescoring(graphs.load_fsa(lang_dir / "G_3_gram.pt"), word2id["#0"])
    assert not hasattr(G, "aux_labels") and int(G.labels.max()) < word2id["#0"]
    sample = texts[:40] + ["TURN ON THE ZORBLAX"]
    scores = best_scores(
        G, [words_to_ids(t.split(), word2id) for t in sample], eps_special=True
    )
    expected = [math.log(10) * lm.sentence_log10_prob(t.split()) for t in sample]
    assert scores == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize("name", ["L.pt", "HL.pt", "HLG.pt", "HLG_modified.pt"])
def test_every_training_transcript_is_accepted(
    lang_dir: Path, texts, name: str
) -> None:
    word2id = read_symbol_table(lang_dir / "words.txt")
    token2id = read_symbol_table(lang_dir / "tokens.txt")
    lexicon = dict(read_lexicon(lang_dir / "lexicon.txt"))
    graph = graphs.load_fsa(lang_dir / name)
    tokens = [token_ids(t, lexicon, token2id) for t in texts]
    sequences = tokens if name == "L.pt" else [ctc_frames(t) for t in tokens]
    outputs = best_outputs(graph, sequences, eps_special=name == "L.pt")
    assert outputs == [words_to_ids(t.split(), word2id) for t in texts]
    if name == "HLG.pt":  # H and L add no score: the best path scores as G does
        lm = read_arpa(lang_dir / "lm_3.arpa")
        expected = [
            math.log(10) * lm.sentence_log10_prob(t.split()) for t in texts[:50]
        ]
        assert best_scores(graph, sequences[:50], False) == pytest.approx(
            expected, abs=1e-3
        )


def test_hlg_decoding_with_oov_gives_unk(lang_dir: Path) -> None:
    """HLG plugs into asrk2.decode: peaked CTC posteriors decode to word ids."""
    word2id = read_symbol_table(lang_dir / "words.txt")
    token2id = read_symbol_table(lang_dir / "tokens.txt")
    lexicon = dict(read_lexicon(lang_dir / "lexicon.txt"))
    HLG = graphs.load_fsa(lang_dir / "HLG.pt")
    batch = ["TURN ON THE ZORBLAX", "CALL MOM AT NOON", "WAKE ME UP AT SEVEN O'CLOCK"]
    frames = [ctc_frames(token_ids(t, lexicon, token2id)) for t in batch]
    T = max(len(f) for f in frames)
    log_probs = torch.full((len(batch), T, len(token2id)), -20.0)
    for i, f in enumerate(frames):
        log_probs[i, torch.arange(len(f)), torch.tensor(f)] = 0.0
    lens = torch.tensor([len(f) for f in frames])
    hyps = one_best_token_ids(get_lattice(log_probs.log_softmax(-1), lens, HLG))
    expected = [words_to_ids(t.split(), word2id) for t in batch]
    assert expected[0][-1] == word2id[UNK_WORD]
    assert hyps == expected


def test_graph_sizes_stay_bounded(lang_dir: Path, monkeypatch, capsys) -> None:
    """Guards against a blow-up (e.g. lost minimisation or disambiguation)."""
    size = {
        n: graphs.graph_size(graphs.load_fsa(lang_dir / n))
        for n in ("L_disambig.pt", "G_3_gram.pt", "HLG.pt", "HLG_modified.pt", "HL.pt")
    }
    hlg_states, hlg_arcs = size["HLG.pt"]
    # This seeded corpus gives HLG 15,053 states and 64,846 arcs; without LG
    # minimisation 16,849 and 70,388, which these bounds reject.
    assert hlg_states <= 15_900 and hlg_arcs <= 67_500
    assert size["HLG_modified.pt"][0] == hlg_states
    assert size["HLG_modified.pt"][1] < 0.8 * hlg_arcs
    assert size["HL.pt"][1] < hlg_arcs / 3
    monkeypatch.setattr(sys, "argv", ["show_graph_sizes.py", str(lang_dir)])
    runpy.run_path(str(ROOT / "local/show_graph_sizes.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert f"{hlg_arcs:,}" in out and "HLG.pt" in out


def test_minimisation_shrinks_lg(lang_dir: Path) -> None:
    L = graphs.load_fsa(lang_dir / "L_disambig.pt")
    G = graphs.load_fsa(lang_dir / "G_3_gram.pt")
    first_token = len(read_symbol_table(lang_dir / "tokens.txt"))
    first_word = read_symbol_table(lang_dir / "words.txt")["#0"]
    plain = graphs.compile_LG(L, G, first_token, first_word, minimize=False)
    small = graphs.compile_LG(L, G, first_token, first_word, minimize=True)
    assert graphs.graph_size(small)[0] < 0.9 * graphs.graph_size(plain)[0]


def test_phone_lang_dir(tmp_path: Path, texts) -> None:
    write_transcripts(texts[:50] + ["CALL ZORBLAX NOW"], tmp_path)
    assert prepare_phone_lang(tmp_path) == ["ZORBLAX"]
    tokens = read_symbol_table(tmp_path / "tokens.txt")
    assert (
        tokens["<eps>"] == 0 and "SIL" in tokens and "SPN" in tokens and "AH" in tokens
    )
    assert "AH0" not in tokens and "#0" not in tokens
    assert "#0" in read_symbol_table(tmp_path / "tokens_disambig.txt")
    words = read_symbol_table(tmp_path / "words.txt")
    assert "ZORBLAX" not in words and words["!SIL"] == 1 and words[UNK_WORD] == 2
    L = graphs.load_fsa(tmp_path / "L.pt")
    lexicon = dict(read_lexicon(tmp_path / "lexicon.txt"))
    text = texts[0]
    sequence = [tokens["SIL"]] + token_ids(text, lexicon, tokens)
    assert best_outputs(L, [sequence], eps_special=True) == [
        words_to_ids(text.split(), words)
    ]
