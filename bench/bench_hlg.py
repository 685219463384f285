"""Time and peak memory of HLG compilation: the demo lang dir and a 200k-word one.

Cases, each compiled in a fresh subprocess so that ``ru_maxrss`` is its own:

- demo: 3,000 seeded everyday sentences (the recipe's default NUM_TRAIN),
  BPE-500, ~490 words, unpruned Kneser-Ney 3-gram, through
  :func:`asrk2.lang.prepare` as the recipe runs it.
- 200k: a synthetic 200,000-word vocabulary spelled with 497 BPE-like pieces
  (mean ~2.9 pieces per word), Zipfian sentences with word-pair structure,
  count-pruned 3-grams (``min_counts``) of growing size. Peak RSS against
  G's arcs is fitted with a line to say where 24 GiB would be reached.

icefall users hit out-of-memory in ``k2.compose``/``k2.determinize`` of L o G
on large LMs; the last row gives the G size at which that happens here. One
run outside this bench (too slow for it) checked the fit: 1M sentences, 8.0M
words, unpruned 3-gram (2.6M bigrams, 4.9M trigrams), G 10.4M arcs, gave LG
16.2M arcs, HLG 50.7M arcs, 296 s for LG + 130 s for H o LG, and a peak RSS
of 5.6 GiB, below the line fitted here (about 7.5 GiB at that size).

Usage:
    python bench/run.py --only hlg
"""

import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from asrk2.data.sentences import SentenceGenerator
from asrk2.lang import graphs, kneser_ney
from asrk2.lang.lexicon import (
    add_disambig_symbols,
    add_disambig_tokens,
    make_word_table,
    write_lexicon,
    write_symbol_table,
)
from bench.common import Row

ROOT = Path(__file__).resolve().parent.parent
DEMO_SENTENCES = 3000
NUM_WORDS = 200_000
NUM_SENTENCES = 100_000
# Raw-count thresholds per order: each gives a bigger pruned 3-gram.
PRUNINGS: Tuple[Tuple[int, int, int], ...] = ((1, 3, 3), (1, 2, 2), (1, 1, 1))
LIMIT_GIB = 24.0


def _compile_worker(lang_dir: Path, minimize: bool) -> Dict[str, object]:
    """Compiles LG, HLG and HLG (modified H) once; returns times, sizes, peak RSS."""
    words = (lang_dir / "words.txt").read_text().split()
    first_word = int(words[words.index("#0") + 1])
    max_token = len((lang_dir / "tokens.txt").read_text().splitlines()) - 1
    L = graphs.load_fsa(lang_dir / "L_disambig.pt")
    G = graphs.load_fsa(lang_dir / "G_3_gram.pt")
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    LG = graphs.compile_LG(L, G, max_token + 1, first_word, minimize)
    lg_s = time.perf_counter() - start
    out: Dict[str, object] = {
        "lg_s": lg_s,
        "LG": graphs.graph_size(LG),
        "G": graphs.graph_size(G),
    }
    for name, modified in (("HLG", False), ("HLG_modified", True)):
        start = time.perf_counter()
        out[name] = graphs.graph_size(
            graphs.compose_H(graphs.build_H(max_token, modified), LG)
        )
        out[f"{name}_s"] = time.perf_counter() - start
    out["base_gib"] = base / 2**20
    out["peak_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return out


def _compile(lang_dir: Path, minimize: bool = True) -> Dict[str, Any]:
    """Runs :func:`_compile_worker` in a fresh Python process."""
    code = (
        "import json, sys; from pathlib import Path; "
        "from bench.bench_hlg import _compile_worker; "
        f"print(json.dumps(_compile_worker(Path(sys.argv[1]), {minimize})))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(lang_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"HLG compilation failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _demo_lang(workdir: Path) -> Path:
    from asrk2.lang.prepare import prepare_bpe_lang, prepare_lms, write_transcripts

    gen = SentenceGenerator(seed=0)
    lang = workdir / "lang_bpe_500"
    write_transcripts((gen.sentence() for _ in range(DEMO_SENTENCES)), lang)
    prepare_bpe_lang(lang, vocab_size=500)
    prepare_lms(lang, orders=(3,))
    return lang


def _synthetic_lexicon(
    rng: random.Random,
) -> Tuple[List[str], List[Tuple[str, List[str]]]]:
    """497 pieces (200 word-initial ``▁X``) and 200k words spelled with them."""
    letters = "ABCDEFGHIJKLMNOPRSTUVWYZ"
    pairs = [a + b for a in letters for b in letters]
    rng.shuffle(pairs)
    initial = ["▁" + p for p in pairs[:200]]
    inner = pairs[200:497]
    lexicon: Dict[str, List[str]] = {}
    while len(lexicon) < NUM_WORDS:
        n_inner = rng.choices(range(5), weights=(10, 30, 30, 20, 10))[0]
        pieces = [rng.choice(initial)] + [rng.choice(inner) for _ in range(n_inner)]
        lexicon.setdefault("".join(pieces)[1:], pieces)
    return initial + inner, sorted(lexicon.items())


def _synthetic_text(words: Sequence[str], seed: int) -> List[str]:
    """Zipfian sentences; half the words are one of 4 successors of the previous."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, len(words) + 1)
    p /= p.sum()
    lens = rng.integers(4, 13, size=NUM_SENTENCES)
    flat = rng.choice(len(words), size=int(lens.sum()), p=p)
    successors = rng.choice(len(words), size=(len(words), 4), p=p)
    follow = np.nonzero(rng.random(flat.size) < 0.5)[0]
    pick = rng.integers(0, 4, size=flat.size)
    for i in follow[follow > 0].tolist():
        flat[i] = successors[flat[i - 1], pick[i]]
    ends = np.cumsum(lens)
    return [
        " ".join(words[j] for j in flat[e - n : e])
        for n, e in zip(lens.tolist(), ends.tolist())
    ]


def _large_lang(workdir: Path) -> Tuple[Path, List[str]]:
    """Writes tokens, words, lexicon, L_disambig of the 200k case; returns text."""
    lang, words = large_lang_dir(workdir, _synthetic_lexicon(random.Random(0)))
    return lang, _synthetic_text(words, seed=1)


def large_lang_dir(
    workdir: Path, spelled: Tuple[List[str], List[Tuple[str, List[str]]]]
) -> Tuple[Path, List[str]]:
    """Writes tokens, words, lexicon and L_disambig of a synthetic lexicon
    (pieces, (word, pieces) pairs); returns the lang dir and the words."""
    lang = workdir / "lang_200k"
    lang.mkdir(parents=True, exist_ok=True)
    pieces, lexicon = spelled
    tokens = {t: i for i, t in enumerate(["<blk>", "<sos/eos>", "<unk>"] + pieces)}
    lexicon = [("<unk>", ["<unk>"])] + lexicon
    word2id = make_word_table(w for w, _ in lexicon)
    write_symbol_table(tokens, lang / "tokens.txt")
    write_symbol_table(word2id, lang / "words.txt")
    write_lexicon(lexicon, lang / "lexicon.txt")
    lexicon_disambig, max_disambig = add_disambig_symbols(lexicon)
    tokens_disambig, _ = add_disambig_tokens(tokens, max_disambig)
    L = graphs.lexicon_to_fst(
        lexicon_disambig, tokens_disambig, word2id, need_self_loops=True
    )
    graphs.save_fsa(L, lang / "L_disambig.pt")
    return lang, [w for w, _ in lexicon[1:]]


def _write_G(lang: Path, text: List[str], min_counts: Sequence[int]) -> float:
    """Trains the pruned 3-gram, writes G_3_gram.pt; returns the seconds of
    training and writing the ARPA file."""
    vocab = [
        w for w in (lang / "words.txt").read_text().split()[::2] if w[0] not in "<#"
    ]
    start = time.perf_counter()
    kneser_ney.train_arpa(text, lang / "lm_3.arpa", 3, vocab, list(min_counts))
    seconds = time.perf_counter() - start
    graphs.save_fsa(
        graphs.fst_text_to_G(
            graphs.arpa_to_fst_text(lang / "lm_3.arpa", lang / "words.txt")
        ),
        lang / "G_3_gram.pt",
    )
    return seconds


def _graph_rows(case: str, on: Dict, off: Dict) -> List[Row]:
    """Rows comparing a compilation with and without LG minimisation."""
    g_states, g_arcs = on["G"]
    lg_states, lg_arcs = on["LG"]
    note = f"G {g_states:,} states / {g_arcs:,} arcs; LG {lg_states:,} / {lg_arcs:,}"
    total_on = on["lg_s"] + on["HLG_s"]
    total_off = off["lg_s"] + off["HLG_s"]
    return [
        Row(
            f"HLG compile time, {case}",
            total_on,
            "s",
            "same without LG minimisation",
            total_off,
            note + " (L o G, det, min, rm disambig/eps, H o LG)",
        ),
        Row(
            f"HLG arcs, {case}",
            on["HLG"][1],
            "arcs",
            "same without LG minimisation",
            off["HLG"][1],
            f"states {on['HLG'][0]:,} vs {off['HLG'][0]:,}",
        ),
        Row(
            f"HLG arcs with modified H, {case}",
            on["HLG_modified"][1],
            "arcs",
            "standard H",
            on["HLG"][1],
            "k2 #746 topology: no blank between repeats",
        ),
        Row(
            f"compile peak RSS, {case}",
            on["peak_gib"],
            "GiB",
            "RSS after imports and loading L, G",
            on["base_gib"],
            "ru_maxrss of a fresh process",
        ),
    ]


def _limit_row(points: List[Tuple[int, float]]) -> Row:
    """Fits peak RSS = a + b * G arcs and solves for LIMIT_GIB."""
    x = np.array([p[0] for p in points], dtype=float)
    y = np.array([p[1] for p in points], dtype=float)
    b, a = np.polyfit(x, y, 1)
    at_limit = (LIMIT_GIB - a) / b if b > 0 else float("inf")
    return Row(
        f"G arcs at which HLG compilation reaches {LIMIT_GIB:.0f} GiB (200k words)",
        at_limit / 1e6,
        "M arcs",
        "largest G measured",
        x.max() / 1e6,
        f"linear fit over {len(points)} pruned 3-grams: "
        f"{a:.2f} GiB + {b * 1e6:.2f} GiB per M G arcs;"
        " an extrapolation, determinisation can grow faster than linearly",
    )


def run(workdir: Path) -> List[Row]:
    """Benchmarks HLG compilation; see the module docstring."""
    demo = _demo_lang(workdir)
    rows = _graph_rows(
        f"demo ({DEMO_SENTENCES} sentences, BPE-500, 3-gram)",
        _compile(demo, True),
        _compile(demo, False),
    )
    lang, text = _large_lang(workdir)
    points: List[Tuple[int, float]] = []
    for i, min_counts in enumerate(PRUNINGS):
        lm_s = _write_G(lang, text, min_counts)
        on = _compile(lang, True)
        points.append((on["G"][1], on["peak_gib"]))
        case = f"200k words, 3-gram min_counts {list(min_counts)}"
        if i == 0:
            rows += _graph_rows(case, on, _compile(lang, False))
            words = sum(len(t.split()) for t in text)
            rows.append(
                Row(
                    f"KN 3-gram training, {words:,} words of text",
                    lm_s,
                    "s",
                    note="asrk2.lang.kneser_ney (numpy), counting, pruning and "
                    "writing the ARPA file",
                )
            )
        else:
            rows += [r for r in _graph_rows(case, on, on) if "RSS" in r.benchmark]
    rows.append(_limit_row(points))
    return rows
