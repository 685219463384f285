import pytest

from asrk2.lang.bpe import BLANK, UNK, load_bpe, train_bpe

SENTENCES = [
    "TURN ON THE KITCHEN LIGHTS",
    "WHAT TIME IS IT IN LONDON",
    "CALL MOM AT FIVE THIRTY",
    "SET AN ALARM FOR SEVEN FORTY FIVE",
    "PLAY SOME MUSIC IN THE LIVING ROOM",
    "IT'S TWENTY DEGREES IN PARIS TODAY",
] * 5


def test_train_bpe_conventions_and_round_trip(tmp_path):
    model = train_bpe(SENTENCES, tmp_path, vocab_size=40)
    sp = load_bpe(model)
    assert sp.get_piece_size() == 40
    assert sp.id_to_piece(0) == BLANK and sp.id_to_piece(2) == UNK
    for text in set(SENTENCES):
        ids = sp.encode(text)
        assert 0 not in ids and 2 not in ids  # no blank, no unknown pieces
        assert sp.decode(ids) == text
    tokens = (tmp_path / "tokens.txt").read_text().splitlines()
    assert len(tokens) == 40
    assert tokens[0] == f"{BLANK} 0" and tokens[2] == f"{UNK} 2"
    assert [int(t.split()[1]) for t in tokens] == list(range(40))


def test_train_bpe_rejects_empty_input(tmp_path):
    with pytest.raises(ValueError, match="no non-empty transcripts"):
        train_bpe(["", "  "], tmp_path, vocab_size=10)
