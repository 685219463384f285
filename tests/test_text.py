import pytest

from asrk2.data.text import normalize_text


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Turn on the lights, please!", "TURN ON THE LIGHTS PLEASE"),
        ("  it's   5 o'clock\t", "IT'S 5 O'CLOCK"),
        ("well-known", "WELL KNOWN"),
        ("?!.", ""),
    ],
)
def test_normalize_text(raw, expected):
    assert normalize_text(raw) == expected
