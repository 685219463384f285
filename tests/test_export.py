"""TorchScript export: the exported model computes what the eager model computes."""

import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Iterator, List, Tuple, cast

import pytest
import torch
from lockstep_decoder import stream_decode

from asrk2.checkpoint import load_model, save_checkpoint
from asrk2.config import to_dict
from asrk2.decode.ctc_decode import build_ctc_topo, ctc_greedy_decode
from asrk2.decode.streaming import StreamingOptions
from asrk2.experiment import ExperimentConfig
from asrk2.export import ExportedModel, export_model, load_exported, read_meta
from asrk2.lang.bpe import load_bpe, train_bpe
from asrk2.model import ConformerConfig, CtcModel, CtcModelConfig

ROOT = Path(__file__).resolve().parent.parent
NUM_FEATURES = 20
ENC = ConformerConfig(
    num_features=NUM_FEATURES, d_model=32, num_heads=4, ffn_dim=64, num_layers=2,
    conv_kernel_size=5, dropout=0.0, causal=True, left_context_frames=6,
)  # fmt: skip
SENTENCES = [
    "TURN ON THE KITCHEN LIGHTS",
    "WHAT TIME IS IT IN LONDON",
    "CALL MOM AT FIVE THIRTY",
    "SET AN ALARM FOR SEVEN FORTY FIVE",
] * 5


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny ops: extra intra-op threads only contend."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Tuple[Path, Path]:
    """An exp dir with two epochs of a tiny causal model, and its lang dir."""
    root = tmp_path_factory.mktemp("export")
    lang_dir = root / "lang"
    sp = load_bpe(train_bpe(SENTENCES, lang_dir, vocab_size=24))
    vocab_size = sp.get_piece_size()
    config = ExperimentConfig()
    config.fbank.num_mel_bins = NUM_FEATURES
    config.model = CtcModelConfig(encoder=ENC, vocab_size=vocab_size)
    exp_dir = root / "exp"
    for epoch in (1, 2):
        torch.manual_seed(epoch)
        model = CtcModel(config.model)
        with torch.no_grad():  # sharper outputs: non-empty greedy hypotheses
            model.ctc_output.weight.mul_(4.0)
        state = {"model": model.state_dict(), "config": to_dict(config)}
        save_checkpoint(exp_dir / f"epoch-{epoch}.pt", state)
    return exp_dir, lang_dir


@pytest.fixture(scope="module")
def exports(trained, tmp_path_factory) -> Tuple[CtcModel, Path, Path]:
    """The eager averaged model, its float export and its int8 export."""
    exp_dir, lang_dir = trained
    out = tmp_path_factory.mktemp("out")
    export_model(exp_dir, 2, 2, lang_dir, out / "float", quantize=False)
    export_model(exp_dir, 2, 2, lang_dir, out / "int8", quantize=True)
    eager, _ = load_model(exp_dir, 2, 2)
    return eager, out / "float", out / "int8"


def features(
    n: int = 3, t: int = 131, seed: int = 0
) -> Tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    lens = torch.tensor([t, t - 40, t - 77][:n])
    return torch.randn(n, t, NUM_FEATURES), lens


def test_export_dir_holds_model_graph_files_and_meta(exports, trained) -> None:
    _, float_dir, _ = exports
    meta = read_meta(float_dir)
    assert meta["source"]["checkpoints"] == ["epoch-1.pt", "epoch-2.pt"]
    assert meta["int8"] is False and meta["causal"] is True
    assert meta["vocab_size"] == 24
    assert load_exported(float_dir).load_bpe().get_piece_size() == 24
    assert meta["features"]["mel_opts"]["num_bins"] == NUM_FEATURES
    assert meta["chunk"]["example_chunk_16"] == [67, 64]
    for name in meta["files"]:
        assert (float_dir / name).is_file(), name
    bpe = (trained[1] / "bpe.model").read_bytes()
    assert (float_dir / "bpe.model").read_bytes() == bpe


def test_offline_forward_equals_eager(exports) -> None:
    eager, float_dir, _ = exports
    exported = load_exported(float_dir)
    x, lens = features()
    with torch.no_grad():
        ref, ref_lens = eager(x, lens)
        chunked, _ = eager(x, lens, chunk_size=4, left_context_frames=6)
    out, out_lens = exported(x, lens)
    assert torch.equal(out_lens, ref_lens)
    assert torch.allclose(out, ref, atol=1e-5)
    # The raw TorchScript forward is the same computation.
    raw, _ = exported.module(x, lens)
    assert torch.allclose(raw, ref, atol=1e-5)
    out_chunked, _ = exported(x, lens, chunk_size=4, left_context_frames=6)
    assert torch.allclose(out_chunked, chunked, atol=1e-5)
    assert not torch.allclose(out_chunked, ref, atol=1e-3)  # chunking changed it


def stream(model, x: torch.Tensor, chunk: int, left: int) -> List[Tuple]:
    """(log_probs, state) after each call of ``chunk_input_frames`` frames."""
    state, steps, pos, first = model.init_state(x.size(0)), [], 0, True
    while pos < x.size(1):
        n = model.encoder.chunk_input_frames(chunk, first)
        with torch.no_grad():
            y, state = model.forward_chunk(x[:, pos : pos + n], state, left)
        steps.append((y, state))
        pos, first = pos + n, False
    return steps


@pytest.mark.parametrize("chunk,left", [(4, -1), (4, 6), (7, 0)])
def test_chunk_forward_with_caches_equals_eager(exports, chunk: int, left: int) -> None:
    eager, float_dir, _ = exports
    exported = load_exported(float_dir)
    x, _ = features(n=2, t=150)
    ref_steps = stream(eager, x, chunk, left)
    out_steps = stream(exported, x, chunk, left)
    assert len(out_steps) == len(ref_steps) > 4
    for (y, state), (y_ref, state_ref) in zip(out_steps, ref_steps):
        assert torch.allclose(y, y_ref, atol=1e-5)
        for cache, cache_ref in zip(state, (state_ref.features, state_ref.attn,
                                            state_ref.conv)):  # fmt: skip
            assert cache.shape == cache_ref.shape
            assert torch.allclose(cache, cache_ref, atol=1e-5)
    # And both equal the offline chunked encoder (the causal model's promise).
    with torch.no_grad():
        offline, _ = eager(x, torch.tensor([150, 150]), chunk, left)
    streamed = torch.cat([y for y, _ in out_steps], dim=1)
    assert torch.allclose(streamed, offline, atol=1e-5)


def test_exported_model_drives_the_decoders(exports) -> None:
    """Offline greedy and streaming decoding accept the export like the eager model."""
    eager, float_dir, _ = exports
    exported = load_exported(float_dir)
    assert isinstance(exported, ExportedModel) and exported.decoder is None
    H = build_ctc_topo(exported.vocab_size - 1)
    x, lens = features(n=2, t=120, seed=3)
    with torch.no_grad():
        log_probs, out_lens = eager(x, lens)
        ref = ctc_greedy_decode(log_probs, out_lens, H)
    assert ctc_greedy_decode(*exported(x, lens), H) == ref
    assert any(ref)
    opts = StreamingOptions(chunk_size=5, left_context_frames=6)
    x_same_len = x[:, :100]
    # ExportedModel duck-types CtcModel's streaming interface.
    exported_model = cast(CtcModel, exported)
    assert stream_decode(exported_model, H, x_same_len, opts) == stream_decode(
        eager, H, x_same_len, opts
    )


def _weight_bytes(path: Path) -> int:
    """Bytes of the tensor data in a TorchScript archive (its code not counted)."""
    with zipfile.ZipFile(path) as archive:
        return sum(i.file_size for i in archive.infolist() if "/data/" in i.filename)


def test_int8_is_close_to_float_and_smaller(exports) -> None:
    _, float_dir, int8_dir = exports
    exported_float, exported_int8 = load_exported(float_dir), load_exported(int8_dir)
    assert read_meta(int8_dir)["int8"] is True
    assert "quantized.linear_dynamic" in exported_int8.module.ctc_output.code
    assert "quantized" not in exported_float.module.ctc_output.code
    x, lens = features()
    ref, ref_lens = exported_float(x, lens)
    out, out_lens = exported_int8(x, lens)
    assert torch.equal(out_lens, ref_lens)
    diff = (out.exp() - ref.exp()).abs()  # in probabilities, bounded by 1
    assert 0 < float(diff.max()) < 0.05
    assert float(diff.mean()) < 0.005
    # Streaming works on the int8 model too (including calls with no output).
    steps = stream(exported_int8, x[:, :90], chunk=4, left=6)
    assert sum(y.size(1) for y, _ in steps) == 21
    # Convolutions and norms stay float: the linears are ~70% of this model.
    assert _weight_bytes(int8_dir / "encoder.pt") < 0.6 * _weight_bytes(
        float_dir / "encoder.pt"
    )
    assert (int8_dir / "encoder.pt").stat().st_size < (
        float_dir / "encoder.pt"
    ).stat().st_size


def test_int8_refuses_gpu(exports) -> None:
    with pytest.raises(ValueError, match="CPU only"):
        load_exported(exports[2]).to("cuda")


LOAD_WITHOUT_TRAINING_CODE = """
import sys
sys.modules["asrk2.model"] = None  # any import of them now raises ImportError
sys.modules["asrk2.train"] = None
try:
    import asrk2.model  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("asrk2.model is still importable: the test proves nothing")
import torch
from asrk2.export import load_exported
export_dir, inputs, outputs = sys.argv[1:]
x, lens = torch.load(inputs)
model = load_exported(export_dir)
log_probs, out_lens = model(x, lens)
state = model.init_state(x.size(0))
y, state = model.forward_chunk(x[:, :19], state)
torch.save((log_probs, out_lens, y), outputs)
"""


def test_loads_without_model_and_training_code(exports, tmp_path) -> None:
    eager, float_dir, _ = exports
    x, lens = features()
    torch.save((x, lens), tmp_path / "in.pt")
    proc = subprocess.run(
        [sys.executable, "-c", LOAD_WITHOUT_TRAINING_CODE, str(float_dir),
         str(tmp_path / "in.pt"), str(tmp_path / "out.pt")],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    log_probs, out_lens, y = torch.load(tmp_path / "out.pt")
    with torch.no_grad():
        ref, ref_lens = eager(x, lens)
        y_ref, _ = eager.forward_chunk(x[:, :19], eager.init_state(x.size(0)))
    assert torch.equal(out_lens, ref_lens)
    assert torch.allclose(log_probs, ref, atol=1e-5)
    assert y.shape == y_ref.shape == (3, 4, eager.config.vocab_size)
    assert torch.allclose(y, y_ref, atol=1e-5)


def test_bad_inputs_give_clear_errors(trained, tmp_path) -> None:
    exp_dir, lang_dir = trained
    with pytest.raises(FileNotFoundError, match="need 3 epoch-N.pt"):
        export_model(exp_dir, 2, 3, lang_dir, tmp_path / "a")
    other_lang = tmp_path / "other_lang"
    train_bpe(SENTENCES, other_lang, vocab_size=30)
    with pytest.raises(ValueError, match="tokens.txt has 30 tokens"):
        export_model(exp_dir, 2, 1, other_lang, tmp_path / "b")
    with pytest.raises(FileNotFoundError, match="bpe.model"):
        export_model(exp_dir, 2, 1, tmp_path / "no_lang", tmp_path / "c")
    with pytest.raises(FileNotFoundError, match="meta.json"):
        load_exported(tmp_path)


def test_load_model_refuses_a_missing_epoch(trained) -> None:
    """Asked for epoch 3 of an experiment with epochs 1-2: no silent fallback."""
    exp_dir, _ = trained
    with pytest.raises(FileNotFoundError, match="no epoch-3.pt"):
        load_model(exp_dir, 3, 1)
    assert load_model(exp_dir, 2, 2)[0] is not None
