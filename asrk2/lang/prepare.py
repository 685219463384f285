"""The lang stage: from training transcripts to a Kaldi/icefall-style lang dir.

Layout of ``data/lang_bpe_500`` (BPE) and ``data/lang_phone`` (CMUdict phones)::

    transcripts.txt        normalised training text (rewritten only on change)
    bpe.model tokens.txt   sentencepiece model and its pieces (BPE dir only)
    words.txt              <eps> 0, <unk>, [!SIL,] sorted words, #0 <s> </s>
    lexicon.txt            WORD tok1 tok2 ...; lexicon_disambig.txt adds #k
    tokens_disambig.txt    tokens.txt plus #0, #1, ... (ids of L_disambig)
    oov.txt                words CMUdict lacks (phone dir only)
    L.pt L_disambig.pt     lexicon transducers (k2, ``torch.save(fsa.as_dict())``)
    lm_3.arpa lm_4.arpa    Kneser-Ney LMs on transcripts.txt
    G_3_gram.fst.txt G_3_gram.pt, G_4_gram.fst.txt G_4_gram.pt
    HLG.pt HL.pt           decoding graphs (:func:`compile_graphs`)

``tokens.txt`` lists exactly the network's output units (id 0 = CTC blank),
so its size is the model's vocabulary; disambiguation tokens ``#k`` have ids
from ``len(tokens.txt)`` on and are listed in ``tokens_disambig.txt``.

Every file is written atomically. A step runs only when one of its outputs is
missing or older than one of its inputs, or when its parameters changed (each
step keeps its parameters in a hidden ``.<step>.params`` file), so rerunning
skips what is up to date, as ``make`` would.
"""

import json
import logging
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from asrk2.lang import graphs, kneser_ney, ngram
from asrk2.lang.bpe import load_bpe, train_bpe
from asrk2.lang.lexicon import (
    EPS,
    SIL_PHONE,
    SIL_WORD,
    UNK_WORD,
    add_disambig_symbols,
    add_disambig_tokens,
    bpe_lexicon,
    cmudict_lexicon,
    make_word_table,
    read_lexicon,
    read_symbol_table,
    write_lexicon,
    write_symbol_table,
)
from asrk2.utils import atomic_write_text

__all__ = [
    "is_up_to_date",
    "write_transcripts",
    "prepare_bpe_lang",
    "prepare_phone_lang",
    "prepare_lms",
    "compile_graphs",
    "graph_sizes",
]

log = logging.getLogger(__name__)

_NOT_LM_WORDS = {EPS, SIL_WORD, "#0", ngram.BOS, ngram.EOS}


def is_up_to_date(targets: Sequence[Path], sources: Sequence[Path]) -> bool:
    """Whether every target exists and none is older than any source.

    Args:
      targets: the outputs of a step.
      sources: its inputs; each must exist.
    Returns:
      True if the step can be skipped.
    """
    if not all(Path(t).exists() for t in targets):
        return False
    oldest = min(Path(t).stat().st_mtime_ns for t in targets)
    return all(Path(s).stat().st_mtime_ns <= oldest for s in sources)


def _write_if_changed(path: Path, text: str) -> bool:
    """Writes ``text`` atomically unless the file already holds it; True if written."""
    if path.exists() and path.read_text() == text:
        return False
    atomic_write_text(path, text)
    return True


def _params(lang_dir: Path, step: str, params: Dict[str, object]) -> Path:
    """The parameter stamp of a step; rewritten (so newer) only when they change."""
    path = lang_dir / f".{step}.params"
    _write_if_changed(path, json.dumps(params, sort_keys=True) + "\n")
    return path


def _skip(step: str, targets: Sequence[Path], sources: Sequence[Path]) -> bool:
    if is_up_to_date(targets, sources):
        log.info("%s: up to date, skipping", step)
        return True
    log.info("%s: building %s", step, ", ".join(t.name for t in targets))
    return False


def write_transcripts(texts: Iterable[str], lang_dir: Path) -> Path:
    """Writes the non-empty normalised transcripts to ``transcripts.txt``.

    The file is only rewritten when its content changes, so every later step
    can compare its outputs' times with it.

    Args:
      texts: normalised sentences (see :func:`asrk2.data.text.normalize_text`).
      lang_dir: the lang dir, created if needed.
    Returns:
      The path of ``transcripts.txt``.
    Raises:
      ValueError: if no text is left.
    """
    lines = [" ".join(t.split()) for t in texts if t.strip()]
    if not lines:
        raise ValueError("no non-empty transcripts")
    path = Path(lang_dir) / "transcripts.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_if_changed(path, "\n".join(lines) + "\n")
    return path


def _transcript_words(lang_dir: Path, extra_words: Iterable[str]) -> List[str]:
    text = (lang_dir / "transcripts.txt").read_text()
    return sorted(set(text.split()) | set(extra_words))


def _build_L(lang_dir: Path, sil_token: Optional[str] = None) -> None:
    """Builds lexicon_disambig.txt, tokens_disambig.txt, L and L_disambig."""
    sources = [lang_dir / n for n in ("tokens.txt", "words.txt", "lexicon.txt")]
    targets = [
        lang_dir / n
        for n in (
            "lexicon_disambig.txt",
            "tokens_disambig.txt",
            "L.pt",
            "L_disambig.pt",
        )
    ]
    if _skip("L", targets, sources):
        return
    token2id, word2id = read_symbol_table(sources[0]), read_symbol_table(sources[1])
    lexicon = read_lexicon(sources[2])
    lexicon_disambig, max_disambig = add_disambig_symbols(lexicon)
    # Optional silence needs one more: #(max+1) after SIL keeps L determinisable.
    sil_disambig = f"#{max_disambig + 1}" if sil_token else None
    tokens_disambig, _ = add_disambig_tokens(
        token2id, max_disambig + (1 if sil_token else 0)
    )
    L = graphs.lexicon_to_fst(lexicon, token2id, word2id, sil_token=sil_token)
    L_disambig = graphs.lexicon_to_fst(
        lexicon_disambig,
        tokens_disambig,
        word2id,
        need_self_loops=True,
        sil_token=sil_token,
        sil_disambig=sil_disambig,
    )
    write_lexicon(lexicon_disambig, targets[0])
    write_symbol_table(tokens_disambig, targets[1])
    graphs.save_fsa(L, targets[2])
    graphs.save_fsa(L_disambig, targets[3])
    log.info(
        "L: %s (states, arcs), L_disambig: %s",
        graphs.graph_size(L),
        graphs.graph_size(L_disambig),
    )


def prepare_bpe_lang(
    lang_dir: Path,
    vocab_size: int = 500,
    model_type: str = "unigram",
    extra_words: Sequence[str] = (),
) -> None:
    """BPE model, ``words.txt``, BPE lexicons and L for ``lang_dir``.

    Args:
      lang_dir: holds ``transcripts.txt`` (:func:`write_transcripts`).
      vocab_size: number of BPE pieces, e.g. 500.
      model_type: ``unigram`` or ``bpe``.
      extra_words: words to add to the vocabulary beyond the transcripts'.
    """
    lang_dir = Path(lang_dir)
    text = lang_dir / "transcripts.txt"
    bpe_params = _params(
        lang_dir, "bpe", {"vocab_size": vocab_size, "model_type": model_type}
    )
    model, tokens = lang_dir / "bpe.model", lang_dir / "tokens.txt"
    if not _skip("bpe", [model, tokens], [text, bpe_params]):
        train_bpe(text.read_text().splitlines(), lang_dir, vocab_size, model_type)
    words_params = _params(lang_dir, "words", {"extra_words": sorted(extra_words)})
    words_txt, lexicon_txt = lang_dir / "words.txt", lang_dir / "lexicon.txt"
    if not _skip("words", [words_txt], [text, words_params]):
        words = _transcript_words(lang_dir, extra_words)
        write_symbol_table(make_word_table(words, specials=(UNK_WORD,)), words_txt)
    if not _skip("BPE lexicon", [lexicon_txt], [model, words_txt]):
        lm_words = (w for w in read_symbol_table(words_txt) if w not in _NOT_LM_WORDS)
        write_lexicon(bpe_lexicon(lm_words, load_bpe(model)), lexicon_txt)
    _build_L(lang_dir)


def prepare_phone_lang(lang_dir: Path, extra_words: Sequence[str] = ()) -> List[str]:
    """CMUdict phone lexicon (stress stripped), tokens, words and L for ``lang_dir``.

    Phones are ``<eps>`` (0, also the CTC blank), then the sorted phones with
    ``SIL`` (optional silence, ``!SIL``) and ``SPN`` (``<unk>``). Words that
    CMUdict lacks are listed in ``oov.txt`` and left out, so they map to ``<unk>``.

    Args:
      lang_dir: holds ``transcripts.txt`` (:func:`write_transcripts`).
      extra_words: words to add beyond the transcripts'.
    Returns:
      The OOV words.
    """
    lang_dir = Path(lang_dir)
    text = lang_dir / "transcripts.txt"
    params = _params(lang_dir, "phone", {"extra_words": sorted(extra_words)})
    targets = [
        lang_dir / n for n in ("tokens.txt", "words.txt", "oov.txt", "lexicon.txt")
    ]
    if not _skip("phone lexicon", targets, [text, params]):
        lexicon, oovs = cmudict_lexicon(_transcript_words(lang_dir, extra_words))
        phones = sorted({p for _, prons in lexicon for p in prons})
        write_symbol_table(
            {EPS: 0, **{p: i for i, p in enumerate(phones, 1)}}, targets[0]
        )
        word_table = make_word_table(
            (w for w, _ in lexicon), specials=(SIL_WORD, UNK_WORD)
        )
        write_symbol_table(word_table, targets[1])
        atomic_write_text(targets[2], "".join(f"{w}\n" for w in oovs))
        write_lexicon(lexicon, targets[3])
    _build_L(lang_dir, sil_token=SIL_PHONE)
    return targets[2].read_text().split()


def prepare_lms(
    lang_dir: Path,
    orders: Sequence[int] = (3, 4),
    min_counts: Optional[Mapping[int, Sequence[int]]] = None,
    max_ngrams: Optional[Mapping[int, Sequence[int]]] = None,
) -> None:
    """Kneser-Ney ARPA LMs on ``transcripts.txt`` and their G FSTs.

    The LM vocabulary is that of ``words.txt``; other words count as ``<unk>``.

    Args:
      lang_dir: holds ``transcripts.txt`` and ``words.txt``.
      orders: n-gram orders; writes ``lm_{n}.arpa``, ``G_{n}_gram.fst.txt``
        and ``G_{n}_gram.pt`` for each.
      min_counts: optional count pruning per order, e.g. ``{3: [1, 1, 2]}``.
      max_ngrams: optional size limits per order, e.g. ``{3: [0, 5e6, 1e7]}``
        (:func:`asrk2.lang.kneser_ney.thresholds_for_size`): what keeps an
        XL-size HLG within memory (bench/RESULTS.md, "hlg" and "lm").
    """
    lang_dir = Path(lang_dir)
    text, words_txt = lang_dir / "transcripts.txt", lang_dir / "words.txt"
    for n in orders:
        prune = list((min_counts or {}).get(n, [])) or None
        size = [int(x) for x in (max_ngrams or {}).get(n, [])] or None
        settings: Dict[str, object] = {"order": n, "min_counts": prune}
        if size:
            settings["max_ngrams"] = size
        params = _params(lang_dir, f"lm{n}", settings)
        arpa = lang_dir / f"lm_{n}.arpa"
        if not _skip(f"{n}-gram LM", [arpa], [text, words_txt, params]):
            vocab = [w for w in read_symbol_table(words_txt) if w not in _NOT_LM_WORDS]
            kneser_ney.train_arpa(text, arpa, n, vocab, prune, size)
        fst_txt, pt = lang_dir / f"G_{n}_gram.fst.txt", lang_dir / f"G_{n}_gram.pt"
        if not _skip(f"G {n}-gram", [fst_txt, pt], [arpa, words_txt]):
            fst = graphs.arpa_to_fst_text(arpa, words_txt)
            atomic_write_text(fst_txt, fst)
            graphs.save_fsa(graphs.fst_text_to_G(fst), pt)


def _disambig_ids(lang_dir: Path) -> Tuple[int, int, int]:
    """``(max_token_id, first_token_disambig_id, first_word_disambig_id)``."""
    max_token_id = max(read_symbol_table(lang_dir / "tokens.txt").values())
    return (
        max_token_id,
        max_token_id + 1,
        read_symbol_table(lang_dir / "words.txt")["#0"],
    )


def compile_graphs(
    lang_dir: Path,
    modified: bool = False,
    minimize: bool = True,
    lm_order: int = 3,
    with_hl: bool = True,
) -> Dict[str, Tuple[int, int]]:
    """Compiles ``HLG.pt`` (and ``HL.pt``) from L_disambig, G and H.

    Args:
      lang_dir: a lang dir prepared by :func:`prepare_bpe_lang` or
        :func:`prepare_phone_lang` and :func:`prepare_lms`.
      modified: use the modified CTC topology; outputs get a ``_modified``
        suffix (``HLG_modified.pt``).
      minimize: minimise LG after determinisation.
      lm_order: which ``G_{n}_gram.pt`` to compose with.
      with_hl: also write ``HL`` (no LM).
    Returns:
      ``{file name: (states, arcs)}`` of the graphs built in this call.
    """
    lang_dir = Path(lang_dir)
    suffix = "_modified" if modified else ""
    params = _params(
        lang_dir, f"graphs{suffix}", {"minimize": minimize, "lm_order": lm_order}
    )
    L_path, G_path = lang_dir / "L_disambig.pt", lang_dir / f"G_{lm_order}_gram.pt"
    base = [L_path, lang_dir / "tokens.txt", lang_dir / "words.txt", params]
    jobs = [(f"HLG{suffix}.pt", G_path)] + (
        [(f"HL{suffix}.pt", None)] if with_hl else []
    )
    sizes: Dict[str, Tuple[int, int]] = {}
    max_token_id, first_token, first_word = _disambig_ids(lang_dir)
    for name, G_source in jobs:
        target = lang_dir / name
        if _skip(name, [target], base + ([G_source] if G_source else [])):
            continue
        G = graphs.load_fsa(G_source) if G_source else None
        LG = graphs.compile_LG(
            graphs.load_fsa(L_path), G, first_token, first_word, minimize
        )
        graph = graphs.compose_H(graphs.build_H(max_token_id, modified), LG)
        graphs.save_fsa(graph, target)
        sizes[name] = graphs.graph_size(graph)
    return sizes


def graph_sizes(lang_dir: Path) -> Dict[str, Tuple[int, int, int]]:
    """``{file name: (states, arcs, bytes)}`` of every FSA ``*.pt`` in ``lang_dir``."""
    sizes: Dict[str, Tuple[int, int, int]] = {}
    for path in sorted(Path(lang_dir).glob("*.pt")):
        states, arcs = graphs.graph_size(graphs.load_fsa(path))
        sizes[path.name] = (states, arcs, path.stat().st_size)
    return sizes
