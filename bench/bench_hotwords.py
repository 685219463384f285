"""Hotwords on the demo test set: recall of the hotwords with and without biasing.

The hotwords are the first names of the corpus's sentence grammar (the
``{name}`` slot and the grammar's subjects, ``asrk2.data.grammar``): real,
rare words of the held-out test utterances. The demo model decodes the test
set with ``hlg-1best`` and ``ctc-greedy`` on the plain and on the biased
graphs (:mod:`asrk2.decode.hotwords`). The boost of each method (per word
for HLG, per BPE token for H) is chosen on the dev set (other held-out
voices): the best recall among ``CANDIDATE_BOOSTS`` whose WER on dev
utterances without hotwords is at most 0.3 worse than without biasing.
Recall: the share of hotword occurrences in the references that the
hypothesis has at the aligned position. The rest: the WER of the test
utterances that hold no hotword, which biasing must not make worse (by more
than 0.3 absolute).

Usage:
    python bench/run.py --only hotwords
"""

from pathlib import Path
from typing import List, Sequence, Tuple

import kaldialign
import torch
from lhotse import load_manifest

from asrk2.checkpoint import load_model
from asrk2.data.grammar import PERSON_NAMES
from asrk2.decode.hotwords import HotwordOptions
from asrk2.decode.methods import MethodOptions
from asrk2.decode.offline import decode_methods
from asrk2.decode.scoring import Result, compute_wer
from bench.common import Row, cwd, demo_model

METHODS = ("hlg-1best", "ctc-greedy")
CANDIDATE_BOOSTS = (0.5, 1.0, 2.0, 3.0)
MAX_REST_WORSE = 0.3


def hotword_scores(
    results: Sequence[Result], hotwords: set
) -> Tuple[float, float, int]:
    """``(recall %, WER % of utterances without hotwords, occurrences)``."""
    found = total = 0
    rest = []
    for cut_id, ref, hyp in results:
        if not hotwords & set(ref):
            rest.append((cut_id, ref, hyp))
            continue
        for r, h in kaldialign.align(ref, hyp, "*"):
            if r in hotwords:
                total += 1
                found += r == h
    return 100.0 * found / max(total, 1), compute_wer(rest).wer, total


def _decode(demo, model, config, cuts, method: str, hotwords: HotwordOptions):
    opts = MethodOptions(beams=config.decode.beams(), hotwords=hotwords)
    return decode_methods(
        model, cuts, demo.lang_dir, config, torch.device("cpu"), [method], opts
    )[method]


def run(workdir: Path) -> List[Row]:
    demo = demo_model()
    if demo is None:
        raise RuntimeError("no demo model: run `make demo` first (`make bench` does)")
    names = set(PERSON_NAMES)
    hotword_file = workdir / "names.txt"
    hotword_file.write_text("".join(f"{n}\n" for n in sorted(names)))
    model, config = load_model(demo.exp_dir, demo.epoch, demo.avg)
    dev_path = demo.test_cuts.parent / demo.test_cuts.name.replace("_test", "_dev")
    rows: List[Row] = []
    with cwd(demo.recipe):
        sets = {
            "dev": load_manifest(dev_path).to_eager(),
            "test": load_manifest(demo.test_cuts).to_eager(),
        }
        for method in METHODS:
            plain = {
                name: hotword_scores(
                    _decode(demo, model, config, cuts, method, HotwordOptions()),
                    names,
                )
                for name, cuts in sets.items()
            }
            tried = []
            for boost in CANDIDATE_BOOSTS:
                hot = HotwordOptions(str(hotword_file), boost)
                recall, rest, _ = hotword_scores(
                    _decode(demo, model, config, sets["dev"], method, hot), names
                )
                if rest <= plain["dev"][1] + MAX_REST_WORSE:
                    tried.append((recall, -boost, boost))
            boost = max(tried)[2] if tried else min(CANDIDATE_BOOSTS)
            hot = HotwordOptions(str(hotword_file), boost)
            recall, rest, n = hotword_scores(
                _decode(demo, model, config, sets["test"], method, hot), names
            )
            plain_recall, plain_rest, _ = plain["test"]
            what = (
                f"test set: {n} name occurrences, {len(names)} hotwords; boost "
                f"{boost:g} chosen on dev from {list(CANDIDATE_BOOSTS)}"
            )
            rows += [
                Row(f"hotword recall, {method}", recall, "%", "no biasing",
                    plain_recall, what),
                Row(f"WER of utterances without hotwords, {method}, biased", rest,
                    "% WER", "no biasing", plain_rest,
                    f"goal: at most {MAX_REST_WORSE} worse"),
            ]  # fmt: skip
    return rows
