"""The YAML cards in models/ and conditions/hardware/: they load and match their sources.

Parameter totals are checked against the published figures (docs/calibration/models_and_gpus.yaml,
DESIGN.md §3); one card (Llama-3.1-70B) is also counted by hand, term by term.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from solver.inputs.card_library import bundled_folder
from solver.inputs.cards import GpuCard, ModelCard
from solver.physics.architecture import Architecture

MODELS_DIR = bundled_folder("model")
HARDWARE_DIR = bundled_folder("GPU")
MODEL_FILES = sorted(MODELS_DIR.glob("*.yaml"))
HARDWARE_FILES = sorted(HARDWARE_DIR.glob("*.yaml"))

# Cards whose published total cannot be met within 1% by architecture.py's formulas get a wider,
# commented tolerance here. None do at present.
PUBLISHED_TOTAL_TOLERANCE: dict[str, float] = {}
DEFAULT_PUBLISHED_TOLERANCE = 0.01


def _load_model(path: Path) -> ModelCard:
    return ModelCard.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def _load_gpu(path: Path) -> GpuCard:
    return GpuCard.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def _model(name: str) -> ModelCard:
    return _load_model(MODELS_DIR / f"{name}.yaml")


def _gpu(name: str) -> GpuCard:
    return _load_gpu(HARDWARE_DIR / f"{name}.yaml")


# ---- every card loads ---------------------------------------------------------------------------


def test_card_directories_hold_the_expected_cards() -> None:
    models = {p.stem for p in MODEL_FILES}
    hardware = {p.stem for p in HARDWARE_FILES}
    assert {
        "llama-3.1-8b",
        "llama-3.1-70b",
        "llama-3.1-405b",
        "llama-2-70b",
        "mistral-7b",
        "mixtral-8x7b",
        "mixtral-8x22b",
        "qwen3-30b-a3b",
        "qwen3-235b-a22b",
        "gpt-oss-120b",
        "deepseek-v3",
    } <= models
    assert {
        "h100-sxm-80gb",
        "h200-sxm-141gb",
        "h800",
        "h20",
        "a100-sxm-80gb",
        "l40s",
        "b200",
        "mi300x",
    } <= hardware


@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda p: p.stem)
def test_model_card_loads_and_is_named_after_its_file(path: Path) -> None:
    card = _load_model(path)
    assert card.name == path.stem
    assert card.source.strip(), "every card cites where its numbers came from"
    assert card.published_params_b is not None


@pytest.mark.parametrize("path", HARDWARE_FILES, ids=lambda p: p.stem)
def test_hardware_card_loads_and_is_named_after_its_file(path: Path) -> None:
    card = _load_gpu(path)
    assert card.name == path.stem
    assert card.source.strip(), "every card cites where its numbers came from"
    assert card.peak_flops("bf16") is not None


# ---- parameter totals against published figures --------------------------------------------------


@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda p: p.stem)
def test_total_params_match_published(path: Path) -> None:
    card = _load_model(path)
    if card.published_params_b is None:
        pytest.skip("no published total on this card")
    tolerance = PUBLISHED_TOTAL_TOLERANCE.get(card.name, DEFAULT_PUBLISHED_TOLERANCE)
    total_b = Architecture(card).total_params / 1e9
    assert total_b == pytest.approx(card.published_params_b, rel=tolerance)


@pytest.mark.parametrize(
    ("name", "published_active_b", "tolerance"),
    [
        ("deepseek-v3", 37.0, 0.03),  # README: 37B activated (README_WEIGHTS: 36.7B incl. emb+head)
        ("mixtral-8x7b", 12.9, 0.03),  # paper: 13B active
        ("qwen3-235b-a22b", 22.0, 0.05),  # the "A22B" in the name
    ],
)
def test_active_params_match_published(
    name: str, published_active_b: float, tolerance: float
) -> None:
    active_b = Architecture(_model(name)).active_params / 1e9
    assert active_b == pytest.approx(published_active_b, rel=tolerance)


def test_gpt_oss_active_params_match_published_without_the_input_embedding() -> None:
    # OpenAI's "5.1B active" (model card: 5.13B) counts the unembedding but not the input embedding
    # (a table lookup, 201088 x 2880 = 0.58B). Architecture.active_params counts both, as DeepSeek's
    # 37B does, giving 5.71B; so compare the published figure with the embedding taken out.
    arch = Architecture(_model("gpt-oss-120b"))
    assert (arch.active_params - arch.embedding_params) / 1e9 == pytest.approx(5.1, rel=0.05)
    assert arch.embedding_params == 201088 * 2880


# ---- one card counted by hand --------------------------------------------------------------------


def test_llama_3_1_70b_counted_by_hand() -> None:
    arch = Architecture(_model("llama-3.1-70b"))
    h, n_h, n_kv, d, f, vocab, num_layers = 8192, 64, 8, 128, 28672, 128256, 80

    # Attention: Q (h x n_h*d) + K and V (h x n_kv*d each) + O (n_h*d x h) + input RMSNorm (h).
    attention = h * n_h * d + 2 * h * n_kv * d + n_h * d * h + h
    assert attention == 67_108_864 + 16_777_216 + 67_108_864 + 8_192 == 151_003_136
    assert arch.attention_params_per_layer == attention

    # SwiGLU FFN: gate, up (h x f) and down (f x h) + post-attention RMSNorm (h).
    ffn = 3 * h * f + h
    assert ffn == 704_643_072 + 8_192 == 704_651_264
    assert arch.dense_ffn_params_per_layer == ffn

    (kind,) = arch.distinct_kinds
    assert kind.ffn == "dense" and kind.window_tokens is None
    assert arch.layer_params(kind) == attention + ffn == 855_654_400

    embedding = vocab * h
    assert embedding == 1_050_673_152
    assert arch.embedding_params == embedding
    assert arch.lm_head_params == embedding + h  # untied head + final RMSNorm

    total = num_layers * (attention + ffn) + embedding + (embedding + h)
    assert total == 70_553_706_496  # the exact count of the released checkpoint
    assert arch.total_params == total
    # Dense: every weight is touched per token. architecture.py's active count leaves out the
    # post-attention RMSNorm of each layer (active_ffn_params has no norm term), h per layer.
    assert arch.active_params == total - num_layers * h

    # KV cache: K and V, 8 heads of 128 per layer.
    assert arch.kv_elements_per_token_per_layer == 2 * n_kv * d == 2048


def test_deepseek_v3_mla_attention_counted_by_hand() -> None:
    arch = Architecture(_model("deepseek-v3"))
    # q_a_proj 7168x1536, q_a_layernorm 1536, q_b_proj 1536 x 128*(128+64)
    q = 7168 * 1536 + 1536 + 1536 * 128 * 192
    # kv_a_proj_with_mqa 7168 x (512+64), kv_a_layernorm 512, kv_b_proj 512 x 128*(128+128)
    kv = 7168 * 576 + 512 + 512 * 128 * 256
    o = 128 * 128 * 7168
    assert arch.attention_params_per_layer == q + kv + o + 7168 == 187_114_496
    assert arch.kv_elements_per_token_per_layer == 512 + 64
    assert _model("deepseek-v3").num_moe_layers == 58


def test_gpt_oss_even_layers_are_windowed() -> None:
    arch = Architecture(_model("gpt-oss-120b"))
    windows = [kind.window_tokens for kind in arch.layer_kinds]
    assert windows[:4] == [128, None, 128, None]
    assert windows.count(128) == 18


# ---- hardware cards against models_and_gpus.yaml -------------------------------------------------

# (memory_gb, bf16 dense TFLOPS, HBM TB/s) as printed in docs/calibration/models_and_gpus.yaml.
EXPECTED_GPUS: dict[str, tuple[float, float, float]] = {
    "h100-sxm-80gb": (80, 989, 3.35),
    "h200-sxm-141gb": (141, 989, 4.8),
    "h800": (80, 989, 3.352),
    "h20": (96, 148, 4.0),
    "a100-sxm-80gb": (80, 312, 2.039),
    "l40s": (48, 362, 0.864),
    "b200": (180, 2250, 8.0),
    "mi300x": (192, 1307.4, 5.3),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_GPUS))
def test_gpu_card_matches_calibration_facts(name: str) -> None:
    card = _gpu(name)
    memory_gb, bf16_tflops, hbm_tb_per_s = EXPECTED_GPUS[name]
    assert card.memory_gb == memory_gb
    assert card.dense_tflops["bf16"] == bf16_tflops
    assert card.hbm_tb_per_s == hbm_tb_per_s


def test_gpu_low_precision_peaks() -> None:
    assert _gpu("h100-sxm-80gb").dense_tflops["fp8"] == 1979
    assert _gpu("l40s").dense_tflops["fp8"] == 733
    assert _gpu("b200").dense_tflops["fp4"] == 9000
    a100 = _gpu("a100-sxm-80gb")
    assert "fp8" not in a100.dense_tflops  # no FP8 Tensor Cores on Ampere
    assert a100.dense_tflops["int8"] == 624


@pytest.mark.parametrize(
    ("name", "intra_node", "inter_node"),
    [
        ("h100-sxm-80gb", 450, 50),  # NVLink 900 GB/s bidirectional / 2; 400 Gb/s NIC per GPU
        ("h800", 200, 50),  # NVLink 400 GB/s / 2
        ("h20", 450, 25),  # 4 x 400 Gb/s NICs per 8 GPUs
        ("a100-sxm-80gb", 300, 25),  # NVLink 600 GB/s / 2; 200 Gb/s HDR NIC per GPU
        ("b200", 900, 50),  # NVLink 1800 GB/s / 2
        ("l40s", 32, 25),  # PCIe Gen4 x16 64 GB/s / 2
    ],
)
def test_gpu_link_bandwidths_are_per_direction(
    name: str, intra_node: float, inter_node: float
) -> None:
    card = _gpu(name)
    assert card.intra_node_gb_per_s == intra_node
    assert card.inter_node_gb_per_s == inter_node
    assert card.gpus_per_node == 8
