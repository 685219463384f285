"""Kneser-Ney LM training at GigaSpeech XL size (about 100M words of text), and
the HLG of its pruned 3-gram.

Text: synthetic sentences of 4-20 words over the 200,000-word vocabulary of
the hlg benchmark (its lexicon and L are reused), Zipf-distributed words of
which half follow one of 4 fixed successors of the previous word, so that
n-grams repeat as in real text. It is written to a file and read back from
it, as ``local/prepare_lang.py`` reads ``transcripts.txt``.

Each training runs :func:`asrk2.lang.kneser_ney.train_arpa` (count,
estimate, prune, write the ARPA file) in a fresh process, so that
``ru_maxrss`` is its own peak. Then the 100M-word 3-gram is pruned to
``XL_MAX_NGRAMS`` (count thresholds chosen by size) and compiled to HLG as the
recipe does (hlg benchmark's worker, fresh process).

Before asrk2.lang.kneser_ney the dicts-of-tuples trainer needed 110 s and
5.4 GB peak for 8M words of such text (about 0.6 GB per million words).

Usage:
    python bench/run.py --only lm          # LM_BENCH_WORDS=20000000 for a quick run
"""

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
from tqdm import tqdm

from bench.bench_hlg import _compile, _synthetic_lexicon, large_lang_dir
from bench.common import Row

ROOT = Path(__file__).resolve().parent.parent
XL_WORDS = int(os.environ.get("LM_BENCH_WORDS", "100000000"))
SMALL_WORDS = 8_000_000
# n-grams per order of the pruned XL 3-gram for HLG (unigrams: all 200k).
XL_MAX_NGRAMS = (0, 2_000_000, 3_000_000)
_CHUNK_WORDS = 2_000_000


def write_synthetic_text(
    path: Path, words: Sequence[str], num_words: int, seed: int
) -> int:
    """Writes about ``num_words`` words of sentences; returns the exact count."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, len(words) + 1)
    p /= p.sum()
    successors = rng.choice(len(words), size=(len(words), 4), p=p)
    vocab = np.array(words, dtype=object)
    written = 0
    bar = tqdm(total=num_words, unit="word", desc=path.name)
    with open(path, "w") as f, bar:
        while written < num_words:
            lens = rng.integers(4, 21, size=_CHUNK_WORDS // 12)
            flat = rng.choice(len(words), size=int(lens.sum()), p=p)
            # Half the words follow the previous one (as drawn) by a fixed pair.
            follow = np.flatnonzero(rng.random(flat.size) < 0.5)
            follow = follow[follow > 0]
            flat[follow] = successors[flat[follow - 1], rng.integers(0, 4, follow.size)]
            tokens = vocab[flat]
            ends = np.cumsum(lens)
            f.write("\n".join(" ".join(tokens[e - n : e]) for n, e in zip(lens, ends)))
            f.write("\n")
            written += flat.size
            bar.update(flat.size)
    return written


def _train(
    text: Path,
    arpa: Path,
    order: int,
    words_txt: Path,
    max_ngrams: Optional[Sequence[int]] = None,
) -> Dict[str, float]:
    """train_arpa in a fresh process: seconds, peak RSS (GiB), n-grams."""
    code = (
        "import json, resource, sys, time\n"
        "from asrk2.lang import kneser_ney\n"
        "from asrk2.utils import setup_logging\n"
        "setup_logging()\n"
        "vocab = [w for w in open(sys.argv[3]).read().split()[::2]"
        " if w[0] not in '<#']\n"
        "start = time.perf_counter()\n"
        "lm = kneser_ney.train_arpa(sys.argv[1], sys.argv[2], int(sys.argv[4]),"
        " vocab, max_ngrams=json.loads(sys.argv[5]))\n"
        "use = resource.getrusage(resource.RUSAGE_SELF)\n"
        "print(json.dumps({'seconds': time.perf_counter() - start,"
        " 'cpu_seconds': use.ru_utime + use.ru_stime,"
        " 'peak_gib': use.ru_maxrss / 2**20,"
        " 'ngrams': [len(x) for x in lm.orders], 'words': lm.stats.words}))\n"
    )
    limits = json.dumps(list(max_ngrams) if max_ngrams else None)
    cmd = [sys.executable, "-c", code, str(text), str(arpa), str(words_txt),
           str(order), limits]  # fmt: skip
    proc = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=5400
    )
    if proc.returncode != 0:
        raise RuntimeError(f"LM training failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _note(result: Dict) -> str:
    ngrams = ", ".join(f"{n / 1e6:.1f}M" for n in result["ngrams"])
    return (
        f"{result['words']:,} words; n-grams per order {ngrams}; "
        f"{result['cpu_seconds']:.0f} s of CPU"
    )


def run(workdir: Path) -> List[Row]:
    """Trains the LMs and compiles the pruned HLG; see the module docstring."""
    lang, words = large_lang_dir(workdir, _synthetic_lexicon(random.Random(0)))
    words_txt = lang / "words.txt"
    small_text, xl_text = workdir / "text_8M.txt", workdir / "text_xl.txt"
    write_synthetic_text(small_text, words, SMALL_WORDS, seed=1)
    xl_words = write_synthetic_text(xl_text, words, XL_WORDS, seed=2)
    small = _train(small_text, workdir / "small_3.arpa", 3, words_txt)
    small_text.unlink()
    xl3 = _train(xl_text, workdir / "xl_3.arpa", 3, words_txt)
    (workdir / "xl_3.arpa").unlink()
    xl4 = _train(xl_text, workdir / "xl_4.arpa", 4, words_txt)
    (workdir / "xl_4.arpa").unlink()
    pruned = _train(xl_text, lang / "lm_3.arpa", 3, words_txt, XL_MAX_NGRAMS)
    xl_text.unlink()
    from asrk2.lang import graphs

    graphs.save_fsa(
        graphs.fst_text_to_G(graphs.arpa_to_fst_text(lang / "lm_3.arpa", words_txt)),
        lang / "G_3_gram.pt",
    )
    hlg = _compile(lang, True)
    xl = f"{xl_words / 1e6:.0f}M words"
    rows = [
        Row(f"KN 3-gram training time, {xl}", xl3["seconds"], "s",
            "same, 8M words", small["seconds"], _note(xl3)),
        Row(f"KN 3-gram training peak RSS, {xl}", xl3["peak_gib"], "GiB",
            "same, 8M words", small["peak_gib"],
            "fresh process; target < 8 GiB on a 24 GiB machine"),
        Row(f"KN 4-gram training time, {xl}", xl4["seconds"], "s",
            f"KN 3-gram, {xl}", xl3["seconds"], _note(xl4)),
        Row(f"KN 4-gram training peak RSS, {xl}", xl4["peak_gib"], "GiB",
            f"KN 3-gram, {xl}", xl3["peak_gib"], "fresh process"),
        Row("KN 3-gram training time, 8M words", small["seconds"], "s",
            note=_note(small) + "; dicts of tuples (before): 110 s, 5.4 GB"),
    ]  # fmt: skip
    g_states, g_arcs = hlg["G"]
    rows += [
        Row(f"HLG compile time, pruned {xl} 3-gram", hlg["lg_s"] + hlg["HLG_s"], "s",
            note=f"3-gram pruned by size: {_note(pruned)}; G {g_arcs:,} arcs, LG "
            f"{hlg['LG'][1]:,} arcs, HLG {hlg['HLG'][1]:,} arcs"),
        Row(f"HLG compile peak RSS, pruned {xl} 3-gram", hlg["peak_gib"], "GiB",
            "RSS after imports and loading L, G", hlg["base_gib"],
            f"200k-word lexicon; LM pruning {pruned['seconds']:.0f} s, "
            f"{pruned['peak_gib']:.1f} GiB"),
    ]  # fmt: skip
    return rows
