"""A small phrase-structure grammar of general English, for synthetic sentences.

Noun phrases with determiners and adjectives, transitive verbs in several
tenses, prepositional phrases, questions and subordinate clauses over about a
thousand common CMUdict words. :mod:`asrk2.data.sentences` mixes its
sentences with everyday templates; :data:`GRAMMAR_WORDS` and
:data:`GRAMMAR_FIXED_WORDS` list every word it can emit.
"""

import random
from typing import Dict, Tuple

__all__ = ["GRAMMAR_WORDS", "GRAMMAR_FIXED_WORDS", "PERSON_NAMES", "general_sentence"]

# First names: subjects and objects here, the {name} slot of the templates.
PERSON_NAMES: Tuple[str, ...] = tuple(
    """
    JOHN MARY DAVID SARAH MICHAEL EMMA JAMES OLIVIA ROBERT LINDA PETER ANNA
    DANIEL LAURA THOMAS KATE PAUL LISA MARK SUSAN KEVIN RACHEL BRIAN JESSICA
    STEVEN NANCY GEORGE HELEN FRANK GRACE ALEX SAM
    """.split()
)

# The general-English grammar: templates whose slots are phrases built by
# _noun_phrase and friends from the word lists below. Verbs are listed as
# "BASE PAST PARTICIPLE" so that every tense agrees without a morphology.
GRAMMAR_WORDS: Dict[str, Tuple[str, ...]] = {
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
        """.split(
            "|"
        )
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
GRAMMAR_FIXED_WORDS = (
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
        return rng.choice(PERSON_NAMES)
    det = rng.choice(GRAMMAR_WORDS["determiner"])
    noun = rng.choice(GRAMMAR_WORDS["noun"])
    if style < 7:
        return f"{det} {rng.choice(GRAMMAR_WORDS['adjective'])} {noun}"
    return f"{det} {noun}"


def _object_phrase(rng: random.Random) -> str:
    """A noun phrase, sometimes with a prepositional phrase after it."""
    np = _noun_phrase(rng)
    if rng.random() < 0.3:
        np += f" {_prep_phrase(rng)}"
    return np


def _prep_phrase(rng: random.Random) -> str:
    det = rng.choice(("THE", "THE", "A", "OUR", "MY"))
    noun = rng.choice(GRAMMAR_WORDS["noun"])
    if det == "A":
        det = _article(noun)
    return f"{rng.choice(GRAMMAR_WORDS['preposition'])} {det} {noun}"


def _verbs(rng: random.Random) -> Tuple[str, str, str]:
    base, past, participle = rng.choice(GRAMMAR_WORDS["verb"]).split()
    return base, past, participle


def _adverb(rng: random.Random) -> str:
    # Only adverbs that fit every tense below ("TODAY" does: "WILL ... TODAY").
    return rng.choice(GRAMMAR_WORDS["adverb"])


def _clause(rng: random.Random) -> str:
    """Subject, verb in one of several tenses, object, optional extras."""
    subject = (
        _noun_phrase(rng)
        if rng.random() < 0.6
        else rng.choice(GRAMMAR_WORDS["pronoun"])
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


def general_sentence(rng: random.Random) -> str:
    """One sentence of the general-English grammar."""
    style = rng.randrange(8)
    if style == 0:
        base, _, _ = _verbs(rng)
        subject = rng.choice(("YOU", "WE", "THEY", "SHE", "HE"))
        aux = "DOES" if subject in ("SHE", "HE") else "DID"
        wh = rng.choice(("WHY", "WHERE", "WHEN", "HOW"))
        return f"{wh} {aux} {subject} {base} {_object_phrase(rng)}"
    if style == 1:
        adjective = rng.choice(GRAMMAR_WORDS["adjective"])
        return f"{_noun_phrase(rng)} WAS {adjective} {_prep_phrase(rng)}"
    if style == 2:
        return f"I THINK THAT {_clause(rng)}"
    if style == 3:
        conjunction = rng.choice(("BECAUSE", "WHEN", "BEFORE", "AFTER", "BUT", "AND"))
        return f"{_clause(rng)} {conjunction} {_clause(rng)}"
    if style == 4:
        adjective = rng.choice(GRAMMAR_WORDS["adjective"])
        noun = rng.choice(GRAMMAR_WORDS["noun"])
        verb = rng.choice(("IS", "WAS"))
        place = _prep_phrase(rng)
        return f"THERE {verb} {_article(adjective)} {adjective} {noun} {place}"
    return _clause(rng)
