"""A seeded generator of everyday English sentences for synthetic corpora.

Sentences come from templates with slots (rooms, devices, people, cities,
numbers, times, dates, ...), and from a small phrase-structure grammar of
general English (:mod:`asrk2.data.grammar`), so that the corpus is not a
handful of command templates. Every word the generator can emit is listed by
:func:`vocabulary` and is in CMUdict, so a lexicon for the corpus can be built
without a G2P model. The output is already normalised: upper-case words,
apostrophes allowed, single spaces, no punctuation.

Example::

    >>> gen = SentenceGenerator(seed=0)
    >>> gen.sentence()  # e.g. 'SET AN ALARM FOR A QUARTER PAST SEVEN'
"""
import random
import re
from typing import Callable, Dict, FrozenSet, List, Tuple

from asrk2.data.grammar import (
    GRAMMAR_FIXED_WORDS,
    GRAMMAR_WORDS,
    PERSON_NAMES,
    general_sentence,
)

__all__ = [
    "GENERAL_FRACTION",
    "MAX_WORDS",
    "MIN_WORDS",
    "SentenceGenerator",
    "number_to_words",
    "ordinal_to_words",
    "vocabulary",
]

# Bounds on sentence length in words; with synthetic speech at 140-190 words
# per minute this keeps utterances at roughly 1-4 seconds.
MIN_WORDS = 3
MAX_WORDS = 12
_MAX_TRIES = 100
# Share of sentences from the general-English grammar; the rest come from the
# everyday templates (commands, times, dates, prices, ...).
GENERAL_FRACTION = 0.5

_ONES = (
    "ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE TEN ELEVEN TWELVE "
    "THIRTEEN FOURTEEN FIFTEEN SIXTEEN SEVENTEEN EIGHTEEN NINETEEN"
).split()
_TENS = "_ _ TWENTY THIRTY FORTY FIFTY SIXTY SEVENTY EIGHTY NINETY".split()
_ORDINAL_ONES = (
    "_ FIRST SECOND THIRD FOURTH FIFTH SIXTH SEVENTH EIGHTH NINTH TENTH "
    "ELEVENTH TWELFTH THIRTEENTH FOURTEENTH FIFTEENTH SIXTEENTH SEVENTEENTH "
    "EIGHTEENTH NINETEENTH"
).split()
_ORDINAL_TENS = {20: "TWENTIETH", 30: "THIRTIETH"}

_MONTHS = (
    ("JANUARY", 31), ("FEBRUARY", 29), ("MARCH", 31), ("APRIL", 30), ("MAY", 31),
    ("JUNE", 30), ("JULY", 31), ("AUGUST", 31), ("SEPTEMBER", 30),
    ("OCTOBER", 31), ("NOVEMBER", 30), ("DECEMBER", 31),
)  # fmt: skip
_WEEKDAYS = "MONDAY TUESDAY WEDNESDAY THURSDAY FRIDAY SATURDAY SUNDAY".split()

# Fixed words of the time and date phrases; kept next to the code that uses
# them so that vocabulary() cannot drift from what the generator emits.
_TIME_WORDS = (
    "OH O'CLOCK A QUARTER HALF PAST TO AM PM NOON MIDNIGHT IN THE MORNING "
    "AFTERNOON EVENING AT NIGHT"
).split()
_DATE_WORDS = "THE OF NEXT THIS".split()


def number_to_words(n: int) -> str:
    """Spells a number the American way, without "AND".

    Args:
      n: an integer in ``[0, 9999]``.
    Returns:
      Upper-case words, e.g. ``1234 -> "ONE THOUSAND TWO HUNDRED THIRTY FOUR"``.
    Raises:
      ValueError: if ``n`` is not an int in range.
    """
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 9999:
        raise ValueError(f"number_to_words supports integers 0..9999, got {n!r}")
    if n < 20:
        return _ONES[n]
    words: List[str] = []
    thousands, rest = divmod(n, 1000)
    hundreds, rest = divmod(rest, 100)
    if thousands:
        words += [_ONES[thousands], "THOUSAND"]
    if hundreds:
        words += [_ONES[hundreds], "HUNDRED"]
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        words.append(_TENS[tens])
        if ones:
            words.append(_ONES[ones])
    elif rest:
        words.append(_ONES[rest])
    return " ".join(words)


def ordinal_to_words(n: int) -> str:
    """Spells an ordinal day of the month, e.g. ``23 -> "TWENTY THIRD"``.

    Args:
      n: an integer in ``[1, 31]``.
    Returns:
      Upper-case words.
    Raises:
      ValueError: if ``n`` is out of range.
    """
    if not 1 <= n <= 31:
        raise ValueError(f"ordinal_to_words supports 1..31, got {n!r}")
    if n < 20:
        return _ORDINAL_ONES[n]
    tens, ones = divmod(n, 10)
    if ones == 0:
        return _ORDINAL_TENS[n]
    return f"{_TENS[tens]} {_ORDINAL_ONES[ones]}"


def _words(text: str) -> Tuple[str, ...]:
    """Splits a ``|``-separated list of phrases."""
    return tuple(p.strip() for p in text.split("|"))


_LIST_SLOTS: Dict[str, Tuple[str, ...]] = {
    "room": _words(
        "KITCHEN | LIVING ROOM | BEDROOM | BATHROOM | OFFICE | GARAGE | HALLWAY"
        " | BASEMENT | DINING ROOM | GUEST ROOM | BACKYARD | PORCH"
    ),
    "switchable": _words(
        "LIGHTS | LAMP | FAN | HEATER | TV | RADIO | AIR CONDITIONER | SPEAKERS"
        " | COMPUTER | PRINTER | SPRINKLERS"
    ),
    "appliance": _words(
        "DISHWASHER | WASHING MACHINE | DRYER | OVEN | COFFEE MAKER | VACUUM"
        " | MICROWAVE | KETTLE | TOASTER"
    ),
    "covering": _words("WINDOWS | BLINDS | CURTAINS | SHUTTERS"),
    "door": _words("GARAGE DOOR | FRONT DOOR | BACK DOOR | GATE"),
    "lockable": _words("FRONT DOOR | BACK DOOR | GARAGE DOOR | GATE | CAR"),
    "genre": _words(
        "JAZZ | ROCK | CLASSICAL | COUNTRY | POP | BLUES | RELAXING | FOLK"
        " | PIANO | DANCE"
    ),
    "name": PERSON_NAMES,
    "relation": _words(
        "MOM | DAD | GRANDMA | GRANDPA | MY SISTER | MY BROTHER | MY WIFE"
        " | MY HUSBAND | THE DOCTOR | MY BOSS | THE KIDS | MY NEIGHBOR"
    ),
    "city": _words(
        "BOSTON | CHICAGO | DENVER | SEATTLE | DALLAS | HOUSTON | ATLANTA"
        " | MIAMI | PHOENIX | PORTLAND | AUSTIN | DETROIT | LONDON | PARIS"
        " | BERLIN | MADRID | ROME | TOKYO | SYDNEY | TORONTO | DUBLIN"
        " | NEW YORK | LOS ANGELES | SAN FRANCISCO | SAN DIEGO | LAS VEGAS"
        " | WASHINGTON | PHILADELPHIA | ORLANDO | NASHVILLE"
    ),
    "place": _words(
        "THE AIRPORT | THE TRAIN STATION | THE OFFICE | THE GYM | THE LIBRARY"
        " | THE HOSPITAL | THE PHARMACY | THE BANK | THE POST OFFICE"
        " | THE SUPERMARKET | THE MALL | THE PARK | THE BEACH | THE MUSEUM"
        " | THE STADIUM | SCHOOL | WORK | HOME | DOWNTOWN | THE HOTEL"
    ),
    "business": _words(
        "RESTAURANT | COFFEE SHOP | GAS STATION | PHARMACY | BAKERY"
        " | HARDWARE STORE | BOOKSTORE | PIZZA PLACE | GROCERY STORE | HOTEL"
    ),
    "items": _words(
        "APPLES | BANANAS | ORANGES | EGGS | TOMATOES | POTATOES | ONIONS"
        " | CARROTS | LEMONS | COOKIES | BATTERIES | NAPKINS | CANDLES"
        " | LIGHT BULBS | PAPER TOWELS"
    ),
    "stuff": _words(
        "MILK | BREAD | BUTTER | CHEESE | RICE | COFFEE | TEA | SUGAR | FLOUR"
        " | JUICE | YOGURT | CEREAL | PASTA | CHICKEN | SOAP"
        " | TOOTHPASTE | TOILET PAPER | DOG FOOD | ORANGE JUICE | OLIVE OIL"
        " | PEANUT BUTTER"
    ),
    "weather": _words(
        "SUNNY | CLOUDY | RAINY | WINDY | FOGGY | SNOWY | COLD | WARM | HOT"
        " | CHILLY | HUMID | DRY | STORMY | CLEAR"
    ),
    "day": _words(
        "TODAY | TOMORROW | TONIGHT | THIS WEEKEND | NEXT WEEK | THIS MORNING"
        " | THIS AFTERNOON | THIS EVENING | ON MONDAY | ON TUESDAY"
        " | ON WEDNESDAY | ON THURSDAY | ON FRIDAY | ON SATURDAY | ON SUNDAY"
    ),
    "event": _words(
        "MEETING | APPOINTMENT | DENTIST APPOINTMENT | LUNCH | DINNER | PARTY"
        " | INTERVIEW | CLASS | PRACTICE | HAIRCUT | CONFERENCE CALL"
        " | PIANO LESSON | SOCCER GAME | DOCTOR'S APPOINTMENT | BIRTHDAY PARTY"
    ),
    "transport": _words("TRAIN | BUS | FLIGHT | FERRY | SHUTTLE"),
    "unit": _words("MINUTES | SECONDS | HOURS"),
    "updown": _words("UP | DOWN"),
    "precip": _words("RAIN | SNOW"),
    "feeling": _words("TIRED | HUNGRY | LATE | BUSY | READY | HOME | OUTSIDE"),
}

# Commands may get a polite prefix or suffix; other sentences are used as is.
_COMMANDS = (
    "TURN ON THE {room} {switchable}",
    "TURN OFF THE {room} {switchable}",
    "SWITCH OFF THE {switchable} IN THE {room}",
    "DIM THE {room} LIGHTS TO {percent} PERCENT",
    "SET THE THERMOSTAT TO {temp} DEGREES AT {time}",
    "SET THE {room} TEMPERATURE TO {temp} DEGREES",
    "START THE {appliance} IN {small} MINUTES",
    "STOP THE {appliance} AT {time}",
    "OPEN THE {door} WHEN {name} ARRIVES",
    "OPEN THE {covering} IN THE {room}",
    "CLOSE THE {room} {covering} AT {time}",
    "LOCK THE {lockable} AT {time}",
    "UNLOCK THE {lockable} FOR {name}",
    "PLAY SOME {genre} MUSIC IN THE {room}",
    "TURN THE VOLUME {updown} TO {small} IN THE {room}",
    "SET THE VOLUME TO {small}",
    "CALL {name} BACK {day}",
    "CALL {relation} AT {time}",
    "SEND A MESSAGE TO {name} SAYING I'M {feeling}",
    "TEXT {relation} THAT I'LL BE THERE AT {time}",
    "REMIND ME TO CALL {name} AT {time}",
    "REMIND ME TO BUY {stuff} {day}",
    "WAKE ME UP AT {time}",
    "SET AN ALARM FOR {time}",
    "SET A TIMER FOR {small} {unit}",
    "ADD {count} {items} TO MY SHOPPING LIST",
    "ADD {stuff} AND {stuff} TO THE LIST",
    "ORDER {count} BOXES OF {items}",
    "NAVIGATE TO {place} IN {city}",
    "FIND A {business} NEAR {place}",
    "BOOK A FLIGHT TO {city} ON {date}",
    "BOOK A TABLE FOR {count} AT {time}",
    "SCHEDULE MY {event} WITH {name} ON {date}",
    "CANCEL MY {event} {day}",
    "MOVE MY {event} TO {weekday}",
    "SHOW ME THE WEATHER IN {city} FOR {date}",
    "READ MY LAST {count} MESSAGES FROM {name}",
)

_STATEMENTS = (
    "WHAT'S THE WEATHER LIKE IN {city} {day}",
    "WILL IT BE {weather} IN {city} {day}",
    "IS IT GOING TO {precip} IN {city} {day}",
    "IT WILL BE {weather} AND {weather} {day}",
    "THE TEMPERATURE IN {city} IS {temp} DEGREES",
    "THE HIGH {day} IS {temp} DEGREES",
    "WHAT'S ON MY CALENDAR FOR {date}",
    "WHEN IS MY NEXT {event} WITH {name}",
    "MY {event} IS AT {time}",
    "THE {event} STARTS AT {time} {day}",
    "{name}'S BIRTHDAY IS ON {date}",
    "MY BIRTHDAY IS {date}",
    "WE ARE MEETING {name} AT {place} AT {time}",
    "HOW FAR IS IT FROM {city} TO {city}",
    "HOW LONG IS THE DRIVE FROM {place} TO {place}",
    "WHEN DOES THE NEXT {transport} TO {city} LEAVE",
    "THE {transport} TO {city} LEAVES AT {time}",
    "IS THE {transport} FROM {city} ON TIME",
    "MY FLIGHT TO {city} IS ON {date}",
    "THE TOTAL IS {price}",
    "IT COSTS {price}",
    "MY ROOM NUMBER IS {number}",
    "THE FLIGHT NUMBER IS {number}",
    "THE CODE IS {digits}",
    "WE NEED {count} {items} AND SOME {stuff}",
    "DO WE HAVE ANY {stuff} OR {items} LEFT",
    "A POUND OF {stuff} COSTS {price}",
    "I'LL BE HOME IN {small} MINUTES",
    "I'LL BE AT {place} UNTIL {time}",
    "CAN YOU PICK UP {relation} AT {time}",
    "{name} IS COMING TO DINNER {day}",
    "{relation} CALLED ABOUT THE {event}",
    "I LEFT THE {room} {switchable} ON {day}",
    "{name} LEFT THE {door} OPEN {day}",
    "DID {name} LOCK THE {lockable} {day}",
    "IT'S {time} IN {city}",
    "WHAT TIME IS IT IN {city} WHEN IT'S {time} HERE",
    "THE PACKAGE WILL ARRIVE ON {date}",
    "THE PARTY IS ON {date} AT {time}",
    "LET'S MEET IN {city} ON {weekday}",
    "THERE ARE {number} PEOPLE IN THE STADIUM",
    "I WALKED {number} STEPS TODAY",
    "THERE'S HEAVY TRAFFIC ON THE WAY TO {place} {day}",
)

_PREFIXES = ("", "", "", "PLEASE ", "CAN YOU ", "COULD YOU ", "HEY ")
_SUFFIXES = ("", "", "", "", " PLEASE", " FOR ME", " NOW")


def _time_phrase(rng: random.Random) -> str:
    """A clock time as people say it, e.g. ``"SEVEN FORTY FIVE PM"``."""
    hour = _ONES[rng.randint(1, 12)]
    style = rng.randrange(6)
    if style == 0:
        minute = rng.randint(1, 59)
        mins = f"OH {_ONES[minute]}" if minute < 10 else number_to_words(minute)
        return f"{hour} {mins} {rng.choice(['AM', 'PM'])}"
    if style == 1:
        return f"{hour} O'CLOCK"
    if style == 2:
        part = rng.choice(
            ["IN THE MORNING", "IN THE AFTERNOON", "IN THE EVENING", "AT NIGHT"]
        )
        return f"{hour} {part}"
    if style == 3:
        return f"{rng.choice(['A QUARTER PAST', 'A QUARTER TO', 'HALF PAST'])} {hour}"
    if style == 4:
        minutes = number_to_words(rng.choice([5, 10, 20, 25]))
        return f"{minutes} {rng.choice(['PAST', 'TO'])} {hour}"
    return rng.choice(["NOON", "MIDNIGHT", f"{hour} {rng.choice(['AM', 'PM'])}"])


def _date_phrase(rng: random.Random) -> str:
    """A date such as ``"MARCH THIRD"`` or ``"THE FIFTH OF JUNE"``."""
    month, days = rng.choice(_MONTHS)
    day = ordinal_to_words(rng.randint(1, days))
    style = rng.randrange(4)
    if style == 0:
        return f"THE {day} OF {month}"
    if style == 1:
        return f"{rng.choice(_WEEKDAYS)} {month} {day}"
    if style == 2:
        return f"{rng.choice(['THIS', 'NEXT'])} {rng.choice(_WEEKDAYS)}"
    return f"{month} {day}"


def _price_phrase(rng: random.Random) -> str:
    """An amount of money, e.g. ``"TWELVE DOLLARS AND FIFTY CENTS"``."""
    dollars = number_to_words(rng.choice([rng.randint(2, 99), rng.randint(100, 9999)]))
    if rng.random() < 0.5:
        return f"{dollars} DOLLARS"
    return f"{dollars} DOLLARS AND {number_to_words(rng.randint(2, 99))} CENTS"


# Slots filled by code; each maps a random generator to a phrase.
_GENERATED_SLOTS: Dict[str, Callable[[random.Random], str]] = {
    "time": _time_phrase,
    "date": _date_phrase,
    "price": _price_phrase,
    "weekday": lambda rng: rng.choice(_WEEKDAYS),
    "count": lambda rng: _ONES[rng.randint(2, 12)],
    "small": lambda rng: number_to_words(rng.randint(2, 90)),
    "number": lambda rng: number_to_words(rng.randint(0, 9999)),
    "percent": lambda rng: number_to_words(rng.randrange(10, 101, 10)),
    "temp": lambda rng: number_to_words(rng.randint(40, 95)),
    "digits": lambda rng: " ".join(_ONES[rng.randint(0, 9)] for _ in range(4)),
}
_GENERATED_WORDS = (
    _ONES + _TENS[2:] + ["HUNDRED", "THOUSAND"] + _ORDINAL_ONES[1:]
    + list(_ORDINAL_TENS.values()) + [m for m, _ in _MONTHS] + _WEEKDAYS
    + _TIME_WORDS + _DATE_WORDS + "DOLLARS AND CENTS".split()
)  # fmt: skip

_SLOT = re.compile(r"\{(\w+)\}")


def vocabulary() -> List[str]:
    """Every word :class:`SentenceGenerator` can emit, sorted.

    Returns:
      Upper-case words, each in CMUdict.
    """
    words = set(_GENERATED_WORDS) | set(GRAMMAR_FIXED_WORDS)
    for entries in GRAMMAR_WORDS.values():
        for entry in entries:
            words.update(entry.split())
    for template in _COMMANDS + _STATEMENTS + _PREFIXES + _SUFFIXES:
        # A possessive slot such as "{name}'S" yields "JOHN'S" etc.
        for name in re.findall(r"\{(\w+)\}'S", template):
            words.update(f"{p.split()[-1]}'S" for p in _LIST_SLOTS[name])
        words.update(w for w in _SLOT.sub(" ", template).split() if w != "'S")
    for phrases in _LIST_SLOTS.values():
        for phrase in phrases:
            words.update(phrase.split())
    return sorted(words)


def _template_slots() -> FrozenSet[str]:
    return frozenset(n for t in _COMMANDS + _STATEMENTS for n in _SLOT.findall(t))


class SentenceGenerator:
    """Draws normalised everyday sentences from a seeded random generator.

    Two generators with the same seed produce the same sequence of sentences.

    Args:
      seed: the random seed.
    """

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def _fill(self, template: str) -> str:
        def slot(match: "re.Match[str]") -> str:
            name = match.group(1)
            if name in _LIST_SLOTS:
                return self._rng.choice(_LIST_SLOTS[name])
            return _GENERATED_SLOTS[name](self._rng)

        return _SLOT.sub(slot, template)

    def _draw(self) -> str:
        if self._rng.random() < GENERAL_FRACTION:
            return general_sentence(self._rng)
        if self._rng.random() < len(_COMMANDS) / (len(_COMMANDS) + len(_STATEMENTS)):
            body = self._fill(self._rng.choice(_COMMANDS))
            return self._rng.choice(_PREFIXES) + body + self._rng.choice(_SUFFIXES)
        return self._fill(self._rng.choice(_STATEMENTS))

    def sentence(self) -> str:
        """Returns the next sentence, ``MIN_WORDS`` to ``MAX_WORDS`` words long.

        Returns:
          e.g. ``"TURN ON THE KITCHEN LIGHTS"``.
        """
        for _ in range(_MAX_TRIES):
            text = self._draw()
            if MIN_WORDS <= len(text.split()) <= MAX_WORDS:
                return text
        # Only reachable if the templates were edited to be always too long.
        raise RuntimeError(
            f"no sentence of {MIN_WORDS}-{MAX_WORDS} words in {_MAX_TRIES} tries"
        )


# Fail at import, not mid-corpus, if a template names an undefined slot.
_UNDEFINED = _template_slots() - set(_LIST_SLOTS) - set(_GENERATED_SLOTS)
if _UNDEFINED:
    raise AssertionError(f"templates use undefined slots: {sorted(_UNDEFINED)}")
