"""Tests for asrk2.lang.lexicon: tables, disambiguation, BPE and CMUdict lexicons."""

from pathlib import Path
from typing import Dict, List

import pytest

from asrk2.data.sentences import SentenceGenerator
from asrk2.lang.bpe import load_bpe, train_bpe
from asrk2.lang.lexicon import (
    UNK_WORD,
    add_disambig_symbols,
    add_disambig_tokens,
    bpe_lexicon,
    cmudict_lexicon,
    make_word_table,
    read_lexicon,
    read_symbol_table,
    words_to_ids,
    write_lexicon,
    write_symbol_table,
)

# Homophones (READ/REED), a pronunciation that is a prefix of another
# (A is a prefix of ABOUT's), and a plain word (CAT).
TINY = [
    ("A", ["AH"]),
    ("ABOUT", ["AH", "B", "AW", "T"]),
    ("READ", ["R", "IY", "D"]),
    ("REED", ["R", "IY", "D"]),
    ("CAT", ["K", "AE", "T"]),
]


def test_disambig_symbols_like_kaldi() -> None:
    lexicon, max_disambig = add_disambig_symbols(TINY)
    assert lexicon == [
        ("A", ["AH", "#1"]),  # prefix of ABOUT
        ("ABOUT", ["AH", "B", "AW", "T"]),
        ("READ", ["R", "IY", "D", "#1"]),  # homophones get #1, #2
        ("REED", ["R", "IY", "D", "#2"]),
        ("CAT", ["K", "AE", "T"]),
    ]
    assert max_disambig == 2
    table, first = add_disambig_tokens({"<eps>": 0, "AH": 1, "B": 2}, max_disambig)
    assert first == 3
    assert [table[f"#{k}"] for k in range(3)] == [3, 4, 5]


def test_disambiguated_prons_are_unique_and_prefix_free() -> None:
    lexicon, _ = add_disambig_symbols(TINY + [("AH", ["AH"]), ("AB", ["AH", "B"])])
    prons = [tuple(t) for _, t in lexicon]
    assert len(set(prons)) == len(prons)
    for p in prons:
        assert not any(q != p and q[: len(p)] == p for q in prons)


def test_word_table_layout(tmp_path: Path) -> None:
    table = make_word_table(["THE", "A", "THE", "CAT"])
    assert list(table.items()) == [
        ("<eps>", 0),
        ("<unk>", 1),
        ("A", 2),
        ("CAT", 3),
        ("THE", 4),
        ("#0", 5),
        ("<s>", 6),
        ("</s>", 7),
    ]
    write_symbol_table(table, tmp_path / "words.txt")
    assert read_symbol_table(tmp_path / "words.txt") == table
    assert (tmp_path / "words.txt").read_text().splitlines()[0] == "<eps> 0"


def test_words_to_ids_maps_oov_to_unk() -> None:
    table = make_word_table(["TURN", "ON"])
    assert words_to_ids("TURN ON ZORBLAX".split(), table) == [
        table["TURN"],
        table["ON"],
        table[UNK_WORD],
    ]


def test_lexicon_round_trip(tmp_path: Path) -> None:
    write_lexicon(TINY, tmp_path / "lexicon.txt")
    assert read_lexicon(tmp_path / "lexicon.txt") == TINY
    (tmp_path / "bad.txt").write_text("WORD\n")
    with pytest.raises(ValueError, match="no tokens"):
        read_lexicon(tmp_path / "bad.txt")


@pytest.fixture(scope="module")
def sentences() -> list:
    gen = SentenceGenerator(seed=3)
    return [gen.sentence() for _ in range(300)]


def test_bpe_lexicon_matches_sentence_encoding(tmp_path: Path, sentences) -> None:
    sp = load_bpe(train_bpe(sentences, tmp_path, vocab_size=120))
    words = {w for s in sentences for w in s.split()}
    lexicon = bpe_lexicon(words, sp)
    assert lexicon[0] == (UNK_WORD, ["<unk>"])
    pieces = dict(lexicon)
    assert set(pieces) == words | {UNK_WORD}
    for text in sentences:
        # Tokenize -> detokenize gives back the normalised text ...
        assert sp.decode(sp.encode(text)) == text
        # ... and the lexicon's pieces, word by word, are the sentence's pieces.
        by_word = [p for w in text.split() for p in pieces[w]]
        assert by_word == sp.encode(text, out_type=str)
        assert sp.decode_pieces(by_word) == text


def test_bpe_lexicon_rejects_unencodable_word(tmp_path: Path, sentences) -> None:
    sp = load_bpe(train_bpe(sentences, tmp_path, vocab_size=120))
    with pytest.raises(ValueError, match="unknown to the BPE model"):
        bpe_lexicon(["ÉCOLE"], sp)


def test_cmudict_lexicon_strips_stress_and_reports_oovs() -> None:
    lexicon, oovs = cmudict_lexicon(["READ", "O'CLOCK", "ZORBLAX", "TV"])
    assert oovs == ["ZORBLAX"]
    prons: Dict[str, List[List[str]]] = {}
    for word, phones in lexicon:
        prons.setdefault(word, []).append(phones)
    assert prons["!SIL"] == [["SIL"]] and prons["<unk>"] == [["SPN"]]
    assert prons["O'CLOCK"] == [["AH", "K", "L", "AA", "K"]]
    assert sorted(prons["READ"]) == [["R", "EH", "D"], ["R", "IY", "D"]]
    assert len(prons["TV"]) == 2  # every pronunciation is kept
    assert all(not p[-1].isdigit() for _, phones in lexicon for p in phones)
