"""Transcript cleaning: what is folded, dropped, or makes an utterance unusable."""

import pytest

from asrk2.data.text import clean_text, normalize_text, unknown_characters


@pytest.mark.parametrize(
    "raw, text, problem",
    [
        ("Turn on the lights, please!", "TURN ON THE LIGHTS PLEASE", None),
        ("Café au lait – it’s naïve", "CAFE AU LAIT IT'S NAIVE", None),
        ("Straße «quoted» ¿qué?", "STRASSE QUOTED QUE", None),
        ("  \t ", "", "empty transcript"),
        (None, "", "empty transcript"),
        ("?!...", "", "empty transcript"),
        ("open the гараж door", "OPEN THE DOOR", "unknown characters"),
        ("你好 hello", "HELLO", "unknown characters"),
        ("bad\x00byte", "BAD BYTE", "unknown characters"),
        ("great 🙂 thanks", "GREAT THANKS", None),  # symbols dropped, as documented
    ],
)
def test_clean_text(raw, text, problem):
    cleaned = clean_text(raw)
    assert (cleaned.text, cleaned.problem) == (text, problem)


def test_unknown_characters_are_listed_once():
    assert unknown_characters("ΑΒΑ ok Β") == "ΑΒ"
    assert unknown_characters("emoji 🙂 and symbols $%&") == ""


def test_normalize_text_is_total():
    assert normalize_text("Ελλάδα is nice") == "IS NICE"
