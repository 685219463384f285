"""A seeded generator of everyday English sentences for synthetic corpora.

Sentences come from templates with slots (rooms, devices, people, cities,
numbers, times, dates, ...), and from a small phrase-structure grammar of
general English (noun phrases with determiners and adjectives, transitive
verbs in several tenses, prepositional phrases, questions and subordinate
clauses over about a thousand common words), so that the corpus is not a
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
    "name": _words(
        "JOHN | MARY | DAVID | SARAH | MICHAEL | EMMA | JAMES | OLIVIA | ROBERT"
        " | LINDA | PETER | ANNA | DANIEL | LAURA | THOMAS | KATE | PAUL | LISA"
        " | MARK | SUSAN | KEVIN | RACHEL | BRIAN | JESSICA | STEVEN | NANCY"
        " | GEORGE | HELEN | FRANK | GRACE | ALEX | SAM"
    ),
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

# The general-English grammar: templates whose slots are phrases built by
# _noun_phrase and friends from the word lists below. Verbs are listed as
# "BASE PAST PARTICIPLE" so that every tense agrees without a morphology.
_GRAMMAR_WORDS: Dict[str, Tuple[str, ...]] = {
    "noun": tuple(
        """
        BOOK LETTER PHONE CAMERA BOTTLE BOX BAG KEY TICKET MAP PICTURE PAINTING
        WINDOW DOOR TABLE CHAIR BED DESK SHELF LAMP CLOCK MIRROR BLANKET PILLOW
        CAR BIKE BOAT TRUCK PLANE HORSE DOG CAT BIRD FISH RABBIT COW SHEEP
        CHICKEN GARDEN FLOWER TREE RIVER LAKE MOUNTAIN HILL ROAD STREET BRIDGE
        HOUSE SCHOOL CHURCH MARKET VILLAGE TOWN CITY COUNTRY ISLAND FOREST FIELD
        FARM SHOP STORE KITCHEN ROOM HALL TEACHER DOCTOR NURSE FARMER DRIVER
        PILOT SINGER WRITER PAINTER STUDENT CHILD BABY GIRL BOY WOMAN MAN FRIEND
        NEIGHBOR STRANGER KING QUEEN SOLDIER SAILOR POLICEMAN WAITER MANAGER
        PLAYER COACH LAWYER BANKER BAKER COOK ARTIST JUDGE DANCER SCIENTIST
        ENGINEER PRESIDENT CAPTAIN GUARD APPLE ORANGE CAKE PIE SANDWICH SOUP
        SALAD PIZZA BREAD CHEESE COFFEE WINE WATER MILK GLASS CUP PLATE BOWL
        SPOON KNIFE FORK PEN PENCIL PAPER NEWSPAPER MAGAZINE STORY SONG POEM
        MOVIE GAME BALL TOY GIFT PRESENT CARD MESSAGE QUESTION ANSWER PROBLEM
        IDEA PLAN PROJECT REPORT LIST NUMBER NAME WORD LESSON CLASS TEST EXAM
        JOB MEETING PARTY WEDDING CONCERT SHOW TRIP JOURNEY HOLIDAY WEEKEND
        MORNING EVENING NIGHT SUMMER WINTER SPRING AUTUMN RAIN SNOW WIND STORM
        SUN MOON STAR SKY CLOUD SEA BEACH SAND STONE ROCK WALL ROOF FLOOR FENCE
        GATE POCKET COAT SHIRT DRESS HAT SHOE BOOT JACKET SCARF GLOVE WATCH
        RING NECKLACE COMPUTER RADIO TELEVISION PIANO GUITAR VIOLIN DRUM ENGINE
        MACHINE TOOL HAMMER ROPE WHEEL BASKET BUCKET CANDLE MATCH FIRE LIGHT
        SHADOW VOICE NOISE SOUND SMELL COLOR SHAPE CORNER EDGE MIDDLE SIDE TOP
        BOTTOM OFFICE FACTORY HOSPITAL LIBRARY MUSEUM THEATER PRISON CASTLE
        TOWER PALACE STATION AIRPORT HARBOR PARK ZOO POOL GYM BANK HOTEL
        RESTAURANT CAFE BAKERY PHARMACY MAILBOX ENVELOPE PACKAGE WALLET PURSE
        UMBRELLA SUITCASE BLUEPRINT LADDER BRUSH BROOM
        """.split()
    ),
    "adjective": tuple(
        """
        OLD NEW YOUNG BIG SMALL LITTLE LARGE TALL SHORT LONG HEAVY LIGHT DARK
        BRIGHT HOT COLD WARM COOL WET DRY CLEAN DIRTY EMPTY FULL OPEN CLOSED
        QUIET LOUD SOFT HARD SMOOTH ROUGH SHARP BROKEN STRANGE FAMOUS FRIENDLY
        ANGRY HAPPY SAD TIRED HUNGRY BUSY LAZY CLEVER BRAVE GENTLE KIND POLITE
        RICH POOR CHEAP EXPENSIVE BEAUTIFUL UGLY PRETTY HANDSOME LOVELY
        WONDERFUL TERRIBLE AWFUL STRONG WEAK FAST SLOW EARLY LATE SIMPLE
        DIFFERENT SPECIAL SECRET PRIVATE PUBLIC LOCAL FOREIGN NATIONAL MODERN
        ANCIENT WOODEN GOLDEN SILVER RED BLUE GREEN YELLOW WHITE BLACK BROWN
        GRAY PINK PURPLE ORANGE FRESH SWEET SOUR BITTER SALTY SPICY DELICIOUS
        IMPORTANT USEFUL CAREFUL NERVOUS CURIOUS SERIOUS FUNNY SILLY PERFECT
        FAVORITE ENTIRE HUGE TINY NARROW WIDE DEEP SHALLOW ROUND SQUARE
        """.split()
    ),
    "verb": tuple(
        p.strip()
        for p in """
        FIND FOUND FOUND | TAKE TOOK TAKEN | BRING BROUGHT BROUGHT |
        BUY BOUGHT BOUGHT | SELL SOLD SOLD | SEE SAW SEEN | MEET MET MET |
        KEEP KEPT KEPT | LEAVE LEFT LEFT | LOSE LOST LOST | SEND SENT SENT |
        BUILD BUILT BUILT | HOLD HELD HELD | READ READ READ | WRITE WROTE WRITTEN |
        DRAW DREW DRAWN | BREAK BROKE BROKEN | CHOOSE CHOSE CHOSEN |
        DRIVE DROVE DRIVEN | EAT ATE EATEN | GIVE GAVE GIVEN | HIDE HID HIDDEN |
        STEAL STOLE STOLEN | WEAR WORE WORN | FORGET FORGOT FORGOTTEN |
        CATCH CAUGHT CAUGHT | TEACH TAUGHT TAUGHT | THROW THREW THROWN |
        SHOW SHOWED SHOWN | CARRY CARRIED CARRIED | CLEAN CLEANED CLEANED |
        OPEN OPENED OPENED | CLOSE CLOSED CLOSED | PAINT PAINTED PAINTED |
        FIX FIXED FIXED | WASH WASHED WASHED |
        VISIT VISITED VISITED | WATCH WATCHED WATCHED | MOVE MOVED MOVED |
        PUSH PUSHED PUSHED | PULL PULLED PULLED | DROP DROPPED DROPPED |
        ORDER ORDERED ORDERED | CHECK CHECKED CHECKED | NEED NEEDED NEEDED |
        WANT WANTED WANTED | LIKE LIKED LIKED | LOVE LOVED LOVED |
        HATE HATED HATED | REMEMBER REMEMBERED REMEMBERED |
        DESCRIBE DESCRIBED DESCRIBED | PREPARE PREPARED PREPARED |
        DELIVER DELIVERED DELIVERED | RETURN RETURNED RETURNED |
        FOLLOW FOLLOWED FOLLOWED | HELP HELPED HELPED | CALL CALLED CALLED |
        ASK ASKED ASKED | ANSWER ANSWERED ANSWERED | COUNT COUNTED COUNTED |
        COOK COOKED COOKED | FILL FILLED FILLED | JOIN JOINED JOINED |
        KICK KICKED KICKED | LIFT LIFTED LIFTED | MISS MISSED MISSED |
        NOTICE NOTICED NOTICED | PICK PICKED PICKED | PLANT PLANTED PLANTED |
        PROTECT PROTECTED PROTECTED | REPAIR REPAIRED REPAIRED |
        SEARCH SEARCHED SEARCHED | SHARE SHARED SHARED | STUDY STUDIED STUDIED |
        TOUCH TOUCHED TOUCHED | TRUST TRUSTED TRUSTED
        """.split("|")
    ),
    "preposition": tuple(
        """
        IN ON UNDER NEAR BEHIND BESIDE INSIDE OUTSIDE ACROSS AROUND THROUGH
        BETWEEN AT FROM INTO ALONG ABOVE BELOW
        """.split()
    ),
    "determiner": tuple(
        "THE THE THE THIS THAT MY YOUR HIS HER OUR THEIR EVERY ONE".split()
    ),
    "pronoun": tuple("I YOU HE SHE WE THEY".split()),
    "adverb": tuple(
        """
        QUICKLY SLOWLY CAREFULLY QUIETLY SUDDENLY FINALLY AGAIN TOGETHER
        TODAY OFTEN SOMETIMES NEVER ALWAYS EARLY
        """.split()
    ),
}


# Words the grammar's code writes itself (the lists above hold the rest).
_GRAMMAR_FIXED_WORDS = (
    "A AN THE OUR MY WILL CAN SHOULD MIGHT MUST HAD WANTED TRIED TO WHY WHERE "
    "WHEN HOW DOES DID YOU WE THEY SHE HE WAS IS I THINK THAT BECAUSE BEFORE "
    "AFTER BUT AND THERE"
).split()


def _article(word: str) -> str:
    """``A`` or ``AN`` before ``word`` (by its first letter: good enough here)."""
    return "AN" if word[0] in "AEIOU" else "A"


def _noun_phrase(rng: random.Random) -> str:
    """``THE OLD TEACHER``, ``MY BOX``, ``SARAH`` and the like."""
    style = rng.randrange(10)
    if style < 2:
        return rng.choice(_LIST_SLOTS["name"])
    det = rng.choice(_GRAMMAR_WORDS["determiner"])
    noun = rng.choice(_GRAMMAR_WORDS["noun"])
    if style < 7:
        return f"{det} {rng.choice(_GRAMMAR_WORDS['adjective'])} {noun}"
    return f"{det} {noun}"


def _object_phrase(rng: random.Random) -> str:
    """A noun phrase, sometimes with a prepositional phrase after it."""
    np = _noun_phrase(rng)
    if rng.random() < 0.3:
        np += f" {_prep_phrase(rng)}"
    return np


def _prep_phrase(rng: random.Random) -> str:
    det = rng.choice(("THE", "THE", "A", "OUR", "MY"))
    noun = rng.choice(_GRAMMAR_WORDS["noun"])
    if det == "A":
        det = _article(noun)
    return f"{rng.choice(_GRAMMAR_WORDS['preposition'])} {det} {noun}"


def _verbs(rng: random.Random) -> Tuple[str, str, str]:
    base, past, participle = rng.choice(_GRAMMAR_WORDS["verb"]).split()
    return base, past, participle


def _adverb(rng: random.Random) -> str:
    # Only adverbs that fit every tense below ("TODAY" does: "WILL ... TODAY").
    return rng.choice(_GRAMMAR_WORDS["adverb"])


def _clause(rng: random.Random) -> str:
    """Subject, verb in one of several tenses, object, optional extras."""
    subject = _noun_phrase(rng) if rng.random() < 0.6 else rng.choice(
        _GRAMMAR_WORDS["pronoun"]
    )
    base, past, participle = _verbs(rng)
    tense = rng.randrange(5)
    if tense == 0:
        verb = past
    elif tense == 1:
        verb = f"WILL {base}"
    elif tense == 2:
        modal = rng.choice(("CAN", "SHOULD", "MIGHT", "MUST"))
        verb = f"{modal} {base}"
    elif tense == 3:
        verb = f"HAD {participle}"
    else:
        wanted = rng.choice(("WANTED", "TRIED", "HAD"))
        verb = f"{wanted} TO {base}"
    text = f"{subject} {verb} {_object_phrase(rng)}"
    if rng.random() < 0.4:
        text += f" {_adverb(rng)}"
    return text


def _general_sentence(rng: random.Random) -> str:
    """One sentence of the general-English grammar."""
    style = rng.randrange(8)
    if style == 0:
        base, _, _ = _verbs(rng)
        subject = rng.choice(("YOU", "WE", "THEY", "SHE", "HE"))
        aux = "DOES" if subject in ("SHE", "HE") else "DID"
        wh = rng.choice(("WHY", "WHERE", "WHEN", "HOW"))
        return f"{wh} {aux} {subject} {base} {_object_phrase(rng)}"
    if style == 1:
        adjective = rng.choice(_GRAMMAR_WORDS["adjective"])
        return f"{_noun_phrase(rng)} WAS {adjective} {_prep_phrase(rng)}"
    if style == 2:
        return f"I THINK THAT {_clause(rng)}"
    if style == 3:
        conjunction = rng.choice(("BECAUSE", "WHEN", "BEFORE", "AFTER", "BUT", "AND"))
        return f"{_clause(rng)} {conjunction} {_clause(rng)}"
    if style == 4:
        adjective = rng.choice(_GRAMMAR_WORDS["adjective"])
        noun = rng.choice(_GRAMMAR_WORDS["noun"])
        verb = rng.choice(("IS", "WAS"))
        place = _prep_phrase(rng)
        return f"THERE {verb} {_article(adjective)} {adjective} {noun} {place}"
    return _clause(rng)


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
        minute = number_to_words(rng.choice([5, 10, 20, 25]))
        return f"{minute} {rng.choice(['PAST', 'TO'])} {hour}"
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
    words = set(_GENERATED_WORDS) | set(_GRAMMAR_FIXED_WORDS)
    for entries in _GRAMMAR_WORDS.values():
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
            return _general_sentence(self._rng)
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
