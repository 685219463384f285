"""Streaming decoding (chunked encoder + online k2 search) against offline decoding."""

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, cast

import k2
import pytest
import torch
from conftest import write_tone
from lhotse import CutSet, NumpyFilesWriter, Recording, SupervisionSegment
from lockstep_decoder import StreamingDecoder, stream_decode

from asrk2.decode.ctc_decode import get_lattice, one_best_token_ids
from asrk2.decode.stream_eval import stream_decode_cuts
from asrk2.decode.streaming import MultiStreamDecoder, StreamingOptions
from asrk2.features.fbank import FbankConfig, make_fbank_extractor
from asrk2.lang.graphs import build_H, compile_LG, compose_H, lexicon_to_fst
from asrk2.lang.lexicon import (
    add_disambig_symbols,
    add_disambig_tokens,
    make_word_table,
)
from asrk2.model import ConformerConfig, CtcModel, CtcModelConfig

ENC = ConformerConfig(
    num_features=10, d_model=16, num_heads=2, ffn_dim=32, num_layers=2,
    conv_kernel_size=3, dropout=0.0, causal=True,
)  # fmt: skip
TOKENS = {"<blk>": 0, "a": 1, "b": 2, "c": 3}
LEXICON = [("A", ["a"]), ("AC", ["a", "c"]), ("B", ["b"])]


def make_HL() -> k2.Fsa:
    """HL of a 3-word lexicon over the model's 3 tokens."""
    words = make_word_table([w for w, _ in LEXICON], specials=())
    lex_d, max_d = add_disambig_symbols(LEXICON)
    tok_d, first_tok = add_disambig_tokens(TOKENS, max_d)
    L = lexicon_to_fst(lex_d, tok_d, words, need_self_loops=True)
    return compose_H(build_H(3), compile_LG(L, None, first_tok, words["#0"]))


def make_model(seed: int) -> CtcModel:
    torch.manual_seed(seed)
    model = CtcModel(CtcModelConfig(encoder=ENC, vocab_size=len(TOKENS))).eval()
    # Sharper outputs, so that hypotheses are not empty.
    with torch.no_grad():
        model.ctc_output.weight.mul_(4.0)
    return model


def offline(
    model: CtcModel, graph: k2.Fsa, x: torch.Tensor, chunk: int, opts: StreamingOptions
) -> List[List[int]]:
    """Offline chunked encoder + pruned intersection, one utterance per row."""
    lens = torch.full((x.size(0),), x.size(1))
    with torch.no_grad():
        log_probs, out_lens = model(x, lens, chunk, opts.left_context_frames)
    lattice = get_lattice(log_probs, out_lens, graph, opts.beams())
    return one_best_token_ids(lattice)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny per-chunk ops: extra intra-op threads only contend (100x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


GRAPHS = {"H": lambda: build_H(3), "HL": make_HL}


@pytest.mark.parametrize("graph_name", ["H", "HL"])
@pytest.mark.parametrize("seed", [0, 1])
def test_one_chunk_equals_offline(graph_name: str, seed: int) -> None:
    model, graph = make_model(seed), GRAPHS[graph_name]()
    x = torch.randn(2, 67, ENC.num_features)
    opts = StreamingOptions(chunk_size=100, left_context_frames=-1)
    decoder = StreamingDecoder(model, graph, opts, num_streams=2)
    final = decoder.accept(x)  # the whole utterance in one call
    assert decoder.num_frames == 16  # (67 - 3) // 4
    assert final == offline(model, graph, x, 100, opts)
    assert any(final)


@pytest.mark.parametrize("graph_name", ["H", "HL"])
@pytest.mark.parametrize("chunk", [2, 5])
def test_small_chunks_final_equals_offline_chunked(graph_name: str, chunk: int) -> None:
    model, graph = make_model(2), GRAPHS[graph_name]()
    x = torch.randn(2, 83, ENC.num_features)
    opts = StreamingOptions(chunk_size=chunk, left_context_frames=4)
    partials = stream_decode(model, graph, x, opts)
    assert len(partials) > 3
    assert partials[-1] == offline(model, graph, x, chunk, opts)


def test_H_partials_only_grow() -> None:
    """With H the partial result is greedy CTC so far: a prefix of the next."""
    model = make_model(3)
    x = torch.randn(1, 120, ENC.num_features)
    partials = stream_decode(model, build_H(3), x, StreamingOptions(chunk_size=2))
    for before, after in zip(partials, partials[1:]):
        assert after[0][: len(before[0])] == before[0]
    assert len(partials[-1][0]) > 0


# ----- MultiStreamDecoder: streams of different lengths, batched -----


def alone(
    model: CtcModel, graph: k2.Fsa, x: torch.Tensor, opts: StreamingOptions
) -> List[List[int]]:
    """Partial results of one (T, C) stream decoded by itself, one per chunk."""
    return [p[0] for p in stream_decode(model, graph, x.unsqueeze(0), opts)]


def distinct(partials: List[List[int]]) -> List[List[int]]:
    """Drops repeats of the previous partial (chunks that added no output frame)."""
    return [p for i, p in enumerate(partials) if i == 0 or p != partials[i - 1]]


@dataclass
class Run:
    """What a scripted MultiStreamDecoder run returned."""

    finals: Dict[str, List[int]]
    partials: Dict[str, List[List[int]]]
    batch_sizes: List[int]  # streams per forward_chunk call


def run_streams(
    decoder: MultiStreamDecoder,
    feats: Dict[str, torch.Tensor],
    start: Dict[str, int],
    remove: Dict[str, int],
    seed: int,
) -> Run:
    """Adds stream k at step ``start[k]``, feeds random pieces, steps until done.

    Streams in ``remove`` are removed (unfinished) at that step.
    """
    gen = torch.Generator().manual_seed(seed)
    run = Run({}, {k: [] for k in feats}, [])
    forward_chunk = decoder.model.forward_chunk

    def spy(x: torch.Tensor, *args, **kwargs):
        run.batch_sizes.append(x.size(0))
        return forward_chunk(x, *args, **kwargs)

    decoder.model.forward_chunk = spy  # type: ignore[assignment]
    pos: Dict[str, int] = {}
    for step in range(1000):
        for k in [k for k, s in start.items() if s == step]:
            decoder.add_stream(k)
            pos[k] = 0
        for k in [k for k in pos if remove.get(k) == step]:
            decoder.remove_stream(k)
            del pos[k]
        for k, p in pos.items():
            if p < feats[k].size(0):
                n = int(torch.randint(0, 40, (), generator=gen))
                decoder.accept_features(k, feats[k][p : p + n])
                pos[k] = p + n
                if pos[k] >= feats[k].size(0):
                    decoder.input_finished(k)
        assert decoder.num_streams == len(pos)
        for key, ids in decoder.step().items():
            run.partials[cast(str, key)].append(ids)  # the str keys of feats
        for k in [k for k in pos if decoder.is_final(k)]:
            run.finals[k] = decoder.result(k)
            decoder.remove_stream(k)
            del pos[k]
        if len(run.finals) + len(remove) == len(feats) and not pos:
            break
    del decoder.model.forward_chunk
    return run


LENGTHS = {"a": 83, "b": 40, "c": 131, "d": 9, "e": 5, "f": 67}


@pytest.mark.parametrize("graph_name", ["H", "HL"])
@pytest.mark.parametrize("chunk,left", [(2, 4), (5, -1), (3, 0)])
def test_streams_of_different_lengths_equal_each_alone(
    graph_name: str, chunk: int, left: int
) -> None:
    model, graph = make_model(4), GRAPHS[graph_name]()
    opts = StreamingOptions(chunk_size=chunk, left_context_frames=left)
    feats = {k: torch.randn(n, ENC.num_features) for k, n in LENGTHS.items()}
    decoder = MultiStreamDecoder(model, graph, opts, max_batch_streams=32)
    run = run_streams(decoder, feats, {k: 0 for k in feats}, {}, seed=chunk)
    assert max(run.batch_sizes) > 1  # streams really were batched
    for k, x in feats.items():
        ref = alone(model, graph, x, opts)
        assert run.finals[k] == ref[-1], k
        assert distinct(run.partials[k]) == distinct(ref), k
        if graph_name == "H" and k != "e":  # see test_k2_online_hl_loses_words
            assert run.finals[k] == offline(model, graph, x[None], chunk, opts)[0]
    assert run.finals["e"] == []  # 5 frames: no output frame
    assert sum(len(h) > 0 for h in run.finals.values()) >= 4


@pytest.mark.parametrize("graph_name", ["H", "HL"])
def test_whole_utterance_chunk_equals_offline(graph_name: str) -> None:
    model, graph = make_model(9), GRAPHS[graph_name]()
    opts = StreamingOptions(chunk_size=40, left_context_frames=-1)
    feats = {k: torch.randn(n, ENC.num_features) for k, n in LENGTHS.items()}
    decoder = MultiStreamDecoder(model, graph, opts)
    run = run_streams(decoder, feats, {k: 0 for k in feats}, {}, seed=1)
    for k, x in feats.items():
        if k != "e":  # offline refuses 5 frames
            assert run.finals[k] == offline(model, graph, x[None], 40, opts)[0], k
    assert sum(len(h) > 0 for h in run.finals.values()) >= 4


@pytest.mark.parametrize("graph_name", ["H", "HL"])
def test_redecode_final_equals_offline_chunked(graph_name: str) -> None:
    model, graph = make_model(4), GRAPHS[graph_name]()
    opts = StreamingOptions(chunk_size=2, left_context_frames=4, redecode_final=True)
    feats = {k: torch.randn(n, ENC.num_features) for k, n in LENGTHS.items()}
    decoder = MultiStreamDecoder(model, graph, opts, max_batch_streams=3)
    run = run_streams(decoder, feats, {k: 0 for k in feats}, {}, seed=2)
    for k, x in feats.items():
        assert run.partials[k][-1] == run.finals[k]
        if k != "e":
            assert run.finals[k] == offline(model, graph, x[None], 2, opts)[0], k
        online = run.partials[k][:-1]  # partials before the last stay online
        assert distinct(online) == distinct(alone(model, graph, x, opts)[: len(online)])


def test_k2_online_hl_loses_words_across_chunks() -> None:
    """k2 1.23.4: a word spanning a chunk boundary is lost with HL/HLG.

    At each chunk end the online intersecter prunes every state that cannot
    end there (mid-word), hence ``redecode_final``. If this test fails, k2 was
    fixed (upstream #1125/#1198) and online finals equal offline ones.
    """
    graph = k2.create_fsa_vec([make_HL()])
    log_probs = torch.full((1, 3, 4), -10.0)
    log_probs[0, 0, 0] = log_probs[0, 1, 1] = log_probs[0, 2, 3] = 0.0  # _ a c
    offline_ids = one_best_token_ids(
        get_lattice(log_probs, torch.tensor([3]), graph)
    )
    assert offline_ids == [[2]]  # AC (words: A=1, AC=2, B=3)
    intersecter = k2.OnlineDenseIntersecter(graph, 1, 20.0, 8.0, 30, 10000)
    states = [None]
    for chunk in (log_probs[:, :2], log_probs[:, 2:]):
        segments = torch.tensor([[0, 0, chunk.size(1)]], dtype=torch.int32)
        lattice, states = intersecter.decode(k2.DenseFsaVec(chunk, segments), states)
    assert one_best_token_ids(lattice) != offline_ids


@pytest.mark.parametrize("max_batch", [2, 32])
def test_streams_join_late_and_leave_early(max_batch: int) -> None:
    model, graph = make_model(5), make_HL()
    opts = StreamingOptions(chunk_size=2, left_context_frames=4)
    feats = {k: torch.randn(n, ENC.num_features) for k, n in LENGTHS.items()}
    start = {"a": 0, "b": 0, "c": 3, "d": 4, "e": 7, "f": 12}
    remove = {"b": 2, "f": 14}  # before they are finished
    decoder = MultiStreamDecoder(model, graph, opts, max_batch_streams=max_batch)
    run = run_streams(decoder, feats, start, remove, seed=7)
    assert set(run.finals) == set(feats) - set(remove)
    assert 1 < max(run.batch_sizes) <= max_batch
    for k in run.finals:
        ref = alone(model, graph, feats[k], opts)
        assert run.finals[k] == ref[-1], k
        assert distinct(run.partials[k]) == distinct(ref), k
    assert decoder.num_streams == 0
    assert len(run.partials["b"]) <= 2  # it did not advance after removal


def test_full_caches_batch_together() -> None:
    """With a bounded left context, streams that started apart share a forward."""
    model, opts = make_model(6), StreamingOptions(chunk_size=2, left_context_frames=4)
    decoder = MultiStreamDecoder(model, build_H(3), opts)
    for i, k in enumerate("abc"):
        decoder.add_stream(k)
        decoder.accept_features(k, torch.randn(200 - 8 * i, ENC.num_features))
        decoder.input_finished(k)
        decoder.step()
    decoder.step()  # c's cache is full after 2 chunks (4 frames) too
    sizes: List[int] = []

    def spy(x: torch.Tensor, *a):
        sizes.append(x.size(0))
        return type(model).forward_chunk(model, x, *a)

    decoder.model.forward_chunk = spy  # type: ignore[assignment]
    for _ in range(3):
        stepped = cast(Dict[str, List[int]], decoder.step())  # keys "a".."c"
        assert sorted(stepped) == ["a", "b", "c"]
    assert sizes == [3, 3, 3]


def test_online_fbank_stream_equals_offline_features() -> None:
    """accept_waveform in pieces == accept_features of the offline fbank."""
    torch.manual_seed(8)
    model, graph = make_model(8), build_H(3)
    wave = 0.3 * torch.randn(16000 + 123).clamp(-3, 3) / 3
    extractor = make_fbank_extractor(FbankConfig(num_mel_bins=10, device="cpu"))
    feats = torch.as_tensor(extractor.extract(wave.numpy(), 16000))
    opts = StreamingOptions(chunk_size=4)
    decoder = MultiStreamDecoder(model, graph, opts)
    decoder.add_stream("wave")
    decoder.add_stream("feats")
    decoder.accept_features("feats", feats)
    decoder.input_finished("feats")
    for piece in wave.split(1234):
        decoder.accept_waveform("wave", piece, 16000)
        decoder.step()
    decoder.input_finished("wave")
    while not (decoder.is_final("wave") and decoder.is_final("feats")):
        decoder.step()
    assert decoder.result("wave") == decoder.result("feats") == alone(
        model, graph, feats, opts
    )[-1]
    assert len(decoder.result("wave")) > 0


def test_multi_stream_errors() -> None:
    decoder = MultiStreamDecoder(make_model(0), build_H(3), StreamingOptions())
    decoder.add_stream("x")
    with pytest.raises(ValueError, match="'x' exists already"):
        decoder.add_stream("x")
    for call in (
        lambda: decoder.accept_features("y", torch.zeros(3, 10)),
        lambda: decoder.accept_waveform("y", torch.zeros(3), 16000),
        lambda: decoder.input_finished("y"),
        lambda: decoder.is_final("y"),
        lambda: decoder.result("y"),
        lambda: decoder.remove_stream("y"),
    ):
        with pytest.raises(KeyError, match="unknown stream 'y'"):
            call()
    with pytest.raises(ValueError, match=r"'x': expected features \(T, 10\), got"):
        decoder.accept_features("x", torch.zeros(3, 80))
    with pytest.raises(ValueError, match=r"expected features \(T, 10\).*\(10,\)"):
        decoder.accept_features("x", torch.zeros(10))
    with pytest.raises(ValueError, match="'x' is fed features"):
        decoder.accept_features("x", torch.zeros(3, 10))
        decoder.accept_waveform("x", torch.zeros(3), 16000)
    decoder.input_finished("x")
    with pytest.raises(ValueError, match="'x': features after input_finished"):
        decoder.accept_features("x", torch.zeros(3, 10))
    decoder.add_stream("w")
    with pytest.raises(ValueError, match="'w': expected audio at 16000 Hz, got 8000"):
        decoder.accept_waveform("w", torch.zeros(100), 8000)
    assert decoder.ready_keys() == ["x"]
    assert decoder.step() == {"x": []} and decoder.is_final("x")
    assert decoder.step() == {}


def test_streams_without_output_frames_end_empty() -> None:
    opts = StreamingOptions(chunk_size=4)
    decoder = MultiStreamDecoder(make_model(0), build_H(3), opts)
    for key, num_frames in (("none", 0), ("six", 6), ("full", 19)):
        decoder.add_stream(key)
        decoder.accept_features(key, torch.randn(num_frames, ENC.num_features))
    assert decoder.ready_keys() == ["full"]  # 4 * 4 + 3 frames
    decoder.input_finished("none")
    decoder.input_finished("six")
    assert decoder.ready_keys() == ["none", "six", "full"]
    assert set(decoder.step()) == {"none", "six", "full"}
    assert decoder.is_final("none") and decoder.is_final("six")
    assert not decoder.is_final("full") and decoder.ready_keys() == []
    assert decoder.result("none") == decoder.result("six") == []


def make_cuts(tmp_path: Path, num_cuts: int) -> CutSet:
    """Tone cuts of different lengths with lossless 10-bin fbank stored."""
    cuts = []
    for i in range(num_cuts):
        wav = tmp_path / f"u{i}.wav"
        write_tone(wav, 0.4 + 0.27 * i, 200.0 + 40 * i)
        cut = Recording.from_file(wav, recording_id=f"u{i}").to_cut()
        cut.supervisions = [
            SupervisionSegment(f"u{i}", f"u{i}", 0.0, cut.duration, text="A B")
        ]
        cuts.append(cut)
    extractor = make_fbank_extractor(FbankConfig(num_mel_bins=10, device="cpu"))
    return CutSet.from_cuts(cuts).compute_and_store_features(
        extractor, tmp_path / "feats", storage_type=NumpyFilesWriter
    )


def test_stream_decode_cuts_many_streams_and_online_fbank(tmp_path: Path) -> None:
    model, H = make_model(10), build_H(3)
    cuts = make_cuts(tmp_path, 7)
    opts = StreamingOptions(chunk_size=3, left_context_frames=6)

    def to_words(ids: List[int]) -> List[str]:
        return [str(i) for i in ids]

    one = stream_decode_cuts(model, H, cuts, opts, to_words, num_streams=1)
    many = stream_decode_cuts(model, H, cuts, opts, to_words, num_streams=3)
    online = stream_decode_cuts(
        model, H, cuts, opts, to_words, num_streams=3, features="online"
    )
    refs = []
    for cut in cuts:
        x = torch.as_tensor(cut.load_features())[None]
        refs.append((cut.id, ["A", "B"], to_words(offline(model, H, x, 3, opts)[0])))
    assert one.results == many.results == online.results == refs
    assert sum(len(hyp) > 0 for _, _, hyp in refs) >= 4
    assert len(many.chunk_latencies) < len(one.chunk_latencies)
    assert many.audio_seconds == pytest.approx(sum(c.duration for c in cuts))
    assert 0 < many.rtf and many.latency_ms(0.5) > 0
    with pytest.raises(ValueError, match="features must be precomputed or online"):
        # An invalid source on purpose, to test the check.
        stream_decode_cuts(
            model, H, cuts, opts, to_words, features="wav"  # type: ignore[arg-type]
        )
