"""Importers: seed markdown, the JSON trio, Hugging Face config.json, paper deployment configs.

Every seed-format file in tests/assets/seed-formats imports and solves (or fails with a precise error);
every value read is echoed with where it came from; unreadable lines are errors that quote them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from solver.cli import app
from solver.errors import InputError
from solver.importers.registry import detect, import_source, load_any_condition, load_any_plan
from solver.inputs.cards import ModelCard
from solver.inputs.condition import build_condition, load_condition, load_model_card
from solver.inputs.loading import parse_mapping
from solver.optimize.settings import SolverSettings
from solver.physics.architecture import Architecture
from solver.planning.planner import solve
from tests.paths import REPO as REPO_ROOT

ROOT = REPO_ROOT
SEED = ROOT / "tests" / "assets" / "seed-formats"  # copies of the reference inputs (README there)
MARKDOWN = sorted((SEED / "markdown").glob("*.md"))
TRIO = SEED / "json-trio"
PAPERS = SEED / "paper-plans"
HF = ROOT / "tests" / "hf_configs"
FAST = SolverSettings(time_limit_s=10.0, num_workers=2)
runner = CliRunner()


# ---- seed markdown -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: p.stem)
def test_markdown_seed_imports_and_solves(path):
    condition = load_any_condition(path)
    plan = solve(condition, settings=FAST).plan
    assert plan.status == "optimal"  # proven, not just found (speed: scripts/bench_solve.py)
    assert condition.raw["assumptions"], (
        "the seed files leave interconnects unstated: assumptions expected"
    )


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: p.stem)
def test_markdown_yaml_round_trips_and_quotes_every_line(path):
    imported = import_source(path)
    text = imported.to_yaml()
    data = parse_mapping(text, "imported.yaml")
    direct = load_any_condition(path)
    again = build_condition(data, "imported.yaml", "x")
    assert again.model == direct.model and again.cluster == direct.cluster
    assert again.workload == direct.workload and again.slo == direct.slo
    source_lines = path.read_text().splitlines()
    quoted = [
        ln
        for ln in source_lines
        if ln.strip().startswith(("* **", "- **")) and "Parallelism" not in ln
    ]
    for line in quoted:  # every field line of the source appears in the YAML (as a comment)
        head = " ".join(line.split())[:40]  # comments collapse runs of spaces
        assert head in text or head in (imported.plan.to_yaml() if imported.plan else ""), line
    for key in imported.origins:  # and every value written carries its origin comment
        leaf = key.rsplit(".", 1)[-1]
        assert any(ln.strip().startswith(f"{leaf}:") and "#" in ln for ln in text.splitlines()), key


def test_markdown_values_mapped():
    c = load_any_condition(SEED / "markdown" / "qwen3-235b-ttft.md")
    m, hw = c.model, c.cluster
    assert (m.num_hidden_layers, m.hidden_size, m.num_attention_heads, m.head_dim) == (
        94,
        4096,
        64,
        64,
    )
    assert (m.num_key_value_heads, m.num_experts, m.num_experts_per_tok) == (4, 128, 8)
    assert (m.moe_intermediate_size, m.vocab_size, m.name) == (1536, 151936, "Qwen3-235B")
    assert (hw.gpu.memory_gb, hw.gpu.hbm_tb_per_s, hw.mfu, hw.memory_bandwidth_utilization) == (
        64,
        1.8,
        0.6,
        0.8,
    )
    assert hw.gpu.peak_flops("bf16") == 400e12 and not hw.fixed and hw.num_gpus == 1024
    assert c.precision.weights == "fp8" and c.precision.kv_cache == "fp8"
    assert (c.workload.input_tokens, c.workload.output_tokens, c.workload.batch_size) == (
        2048,
        2048,
        128,
    )
    assert c.slo.ttft_ms == 30_000 and c.slo.tpot_ms is None


def test_markdown_defaults_are_assumptions_not_silent():
    imported = import_source(SEED / "markdown" / "moe-10b-16experts.md")
    text = "\n".join(imported.assumptions)
    for needed in (
        "max_gpus = 1024",
        "intra_node_gb_per_s",
        "inter_node_gb_per_s",
        "num_experts_per_tok = 2",
        "vocab_size = 32000",
        "output_tokens = 1024",
        "input_tokens = 10240",
        "100,000 tokens/s per GPU",
        "do not match",
    ):
        assert needed in text, needed
    assert "ASSUMED" in imported.to_yaml()


def _write_md(tmp_path: Path, replace: tuple[str, str]) -> Path:
    text = (SEED / "markdown" / "qwen3-235b-ttft.md").read_text()
    assert replace[0] in text
    path = tmp_path / "case.md"
    path.write_text(text.replace(*replace))
    return path


@pytest.mark.parametrize(
    "old,new,quoted",
    [
        ("* **MFU utilization**: 60%.", "* **MFU utilization**: sixty percent.", "MFU utilization"),
        ("* **VRAM Bandwidth**: 1.8TBps.", "* **VRAM Bandwidth**: 1.8 furlongs", "VRAM Bandwidth"),
        ("* **Precision**: FP8", "* **Precision**: FP7", "Precision"),
        ("* **Top-K Gate**: 8", "* **Favourite colour**: 8", "Favourite colour"),
        ("* **GQA kv heads**: 4", "", "GQA + MOE"),  # GQA stated, KV heads missing
        (
            "* **Batch size**: Each batch consists of 128 sequences.",
            "* **Batch size**: Each batch consists of many sequences.",
            "Batch size",
        ),
        (
            "- **The time to the first token(TTFT)**: 30s",
            "some prose the importer cannot place",
            "some prose",
        ),
    ],
)
def test_markdown_unreadable_line_is_an_error_quoting_it(tmp_path, old, new, quoted):
    path = _write_md(tmp_path, (old, new))
    with pytest.raises(InputError) as err:
        load_any_condition(path)
    assert quoted in str(err.value) and "line " in str(err.value)


@pytest.mark.parametrize("old", ["* **Top-K Gate**: 8", "* **MFU utilization**: 60%."])
def test_markdown_5000_digit_number_is_an_error_naming_the_line(tmp_path, old):
    """int() and float() of 5,000 digits fail or overflow: refused up front with the line."""
    path = _write_md(tmp_path, (old, old.replace("8", "9" * 5000).replace("60", "9" * 5000)))
    with pytest.raises(InputError, match=r"line \d+: a number of 5000 digits"):
        load_any_condition(path)


def test_markdown_fixed_gpu_count(tmp_path):
    path = _write_md(tmp_path, ("* **NPUs**: Ample NPU resources, no limits.", "* **NPUs**: 16"))
    c = load_any_condition(path)
    assert c.cluster.fixed and c.cluster.num_gpus == 16 and c.cluster.gpus_per_node == 8
    assert any("gpus_per_node = 8" in a for a in c.raw["assumptions"])


def test_markdown_strategy_section_is_a_short_plan():
    path = SEED / "markdown" / "qwen3-235b-with-strategy.md"
    imported = import_source(path)
    assert imported.plan is not None
    assert imported.plan.data == {"tp": 16, "pp": 4, "dp": 4, "ep": 32, "sp": 1, "batch_size": 128}
    assert "256" in imported.plan.read_only[0]  # the stated 128 GPUs disagree with the degrees
    loaded = load_any_plan(path, load_any_condition(path))
    assert loaded.plan.tp == 16 and loaded.notes


def test_markdown_strategy_check_cli_names_violations(tmp_path):
    path = SEED / "markdown" / "qwen3-235b-with-strategy.md"
    result = runner.invoke(app, ["check", str(path), "--no-regret"])
    assert result.exit_code == 3, result.output
    assert "folding" in result.output and "tp_within_node" in result.output
    out = tmp_path / "q.yaml"
    result = runner.invoke(app, ["import", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file() and (tmp_path / "q.plan.yaml").is_file()
    result = runner.invoke(app, ["check", str(out), str(tmp_path / "q.plan.yaml"), "--no-regret"])
    assert result.exit_code == 3


# ---- JSON trio -----------------------------------------------------------------------------------


def test_trio_imports_from_folder_hardware_file_and_model_file():
    by_folder = load_any_condition(TRIO)
    assert load_any_condition(TRIO / "hardware_env.json").model == by_folder.model
    assert detect(TRIO / "model_params.json") == "trio"
    c = by_folder
    assert c.model_ref == "inline" and c.model.num_hidden_layers == 80 and not c.model.is_moe
    assert c.gpu_ref == "h100-sxm-80gb" and c.cluster.num_gpus == 8
    assert c.cluster.intra_node_bytes_per_s == 400e9 and c.cluster.usable_memory_fraction == 0.85
    assert (c.slo.ttft_ms, c.slo.tpot_ms, c.slo.e2e_latency_ms) == (500, 50, 30_000)
    assert c.workload.max_batch_size == 64 and c.workload.prefill_chunk_tokens == 8192
    assert c.precision.weights == "fp16"
    text = "\n".join(c.raw["assumptions"])
    assert "target_requests_per_second" in text and "rope_theta" in text and "GB/s" in text
    plan = solve(c, settings=FAST).plan
    assert plan.status == "optimal" and plan.metrics.ttft_ms <= 500


def _copy_trio(tmp_path: Path) -> Path:
    folder = tmp_path / "trio"
    shutil.copytree(TRIO, folder)
    return folder


def test_trio_unknown_gpu_names_the_key(tmp_path):
    folder = _copy_trio(tmp_path)
    hw = json.loads((folder / "hardware_env.json").read_text())
    for dev in hw["nodes"][0]["gpu_devices"]:
        dev["gpu_name"] = "Acme_X9"
    (folder / "hardware_env.json").write_text(json.dumps(hw))
    with pytest.raises(InputError, match=r"gpu_devices\[0\]\.gpu_name.*Acme_X9"):
        load_any_condition(folder)


def test_trio_memory_override_and_total_mismatch(tmp_path):
    folder = _copy_trio(tmp_path)
    hw = json.loads((folder / "hardware_env.json").read_text())
    for dev in hw["nodes"][0]["gpu_devices"]:
        dev["gpu_memory_gb"] = 94
    (folder / "hardware_env.json").write_text(json.dumps(hw))
    assert load_any_condition(folder).cluster.gpu.memory_gb == 94
    hw["cluster"]["total_gpus"] = 16
    (folder / "hardware_env.json").write_text(json.dumps(hw))
    with pytest.raises(InputError, match="cluster.total_gpus"):
        load_any_condition(folder)


# ---- Hugging Face config.json --------------------------------------------------------------------


@pytest.mark.parametrize("folder", sorted(p.name for p in HF.iterdir() if p.is_dir()))
def test_hf_config_maps_to_the_shipped_card(folder):
    imported = import_source(HF / folder / "config.json")
    card = ModelCard.model_validate(imported.data)
    ours, shipped = Architecture(card), Architecture(load_model_card(folder))
    assert ours.total_params == shipped.total_params
    assert ours.active_params == shipped.active_params
    assert ours.layer_kinds == shipped.layer_kinds
    assert ours.kv_elements_per_token_per_layer == shipped.kv_elements_per_token_per_layer
    assert any(
        "ignored" in a for a in imported.assumptions
    )  # unknown fields listed, not dropped silently


def test_hf_config_alone_is_not_a_condition_but_a_condition_may_name_it(tmp_path):
    with pytest.raises(InputError, match="model config alone"):
        load_any_condition(HF / "mixtral-8x7b" / "config.json")
    shutil.copy(HF / "mixtral-8x7b" / "config.json", tmp_path / "config.json")
    cond = tmp_path / "c.yaml"
    cond.write_text(
        "model: config.json\nhardware: {gpu: a100-sxm-80gb, num_nodes: 1, gpus_per_node: 4}\n"
        "workload: {input_tokens: 1024, output_tokens: 256, max_batch_size: 32}\n"
    )
    c = load_any_condition(cond)
    assert c.model.num_experts == 8 and c.model_ref == "inline"
    shipped = load_condition(ROOT / "conditions" / "mixtral8x7b-a100x4.yaml")
    assert Architecture(c.model).total_params == Architecture(shipped.model).total_params


@pytest.mark.parametrize(
    "field,value,key",
    [
        ("decoder_sparse_step", 2, "decoder_sparse_step"),
        ("mlp_only_layers", [5, 9], "mlp_only_layers"),
        ("layer_types", ["full_attention", "sliding_attention"] * 24, "layer_types"),
    ],
)
def test_hf_unsupported_layer_patterns_name_the_key(tmp_path, field, value, key):
    data = json.loads((HF / "qwen3-30b-a3b" / "config.json").read_text())
    data[field] = value
    if field == "layer_types":
        data["use_sliding_window"], data["sliding_window"] = True, 4096
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=key):
        import_source(path)


def test_hf_cli_import_prints_a_card(tmp_path):
    out = tmp_path / "card.yaml"
    result = runner.invoke(app, ["import", str(HF / "deepseek-v3" / "config.json"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    card = ModelCard.model_validate(parse_mapping(out.read_text(), str(out)))
    assert card.num_experts == 256 and card.first_k_dense_layers == 3 and card.is_mla
    assert "n_routed_experts" in out.read_text()


# ---- paper deployment configs --------------------------------------------------------------------

PAPER_CONDITIONS = ROOT / "conditions" / "paper"


def test_paper_ep_baseline_maps_with_derived_etp():
    cond = load_any_condition(PAPER_CONDITIONS / "paper-moe-4l-h100x16.yaml")
    loaded = load_any_plan(f"{PAPERS / 'EP.json'}#baseline_method", cond)
    p = loaded.plan
    assert (p.tp, p.pp, p.ep, p.etp, p.batch_size, p.layers_per_stage) == (8, 2, 4, 2, 1024, [2, 2])


def test_paper_pp_proposed_is_one_layer_per_gpu_with_notes():
    cond = load_any_condition(PAPER_CONDITIONS / "paper-dense-16l-h100x16.yaml")
    loaded = load_any_plan(PAPERS / "PP.json", cond)
    assert loaded.plan.pp == 16 and loaded.plan.layers_per_stage == [1] * 16
    assert any("SRAM" in n for n in loaded.notes)


@pytest.mark.parametrize(
    "condition,plan,code,needle",
    [
        ("paper-moe-4l-h100x16", "EP.json#baseline_method", 0, "valid"),
        ("paper-moe-4l-h100x16", "EP.json", 1, "proposed_method.parameters.expert_parallelism"),
        ("paper-dense-16l-h100x16", "PP.json", 0, "TP1 PP16"),
        ("paper-dense-16l-h100x16", "PP.json#baseline_method", 0, "TP8 PP2"),
        ("paper-dense-4l-h100x16", "SP.json", 0, "SP16"),
        ("paper-dense-4l-h100x16", "SP.json#baseline_method", 0, "TP8 PP2"),
        ("paper-dense-4l-h100x16", "helix.json", 1, "line 291: invalid JSON"),
    ],
)
def test_paper_plans_grade_or_explain(condition, plan, code, needle):
    result = runner.invoke(
        app,
        ["check", str(PAPER_CONDITIONS / f"{condition}.yaml"), str(PAPERS / plan), "--no-regret"],
    )
    assert result.exit_code == code, result.output
    assert needle in result.output


def test_paper_helix_two_level_partitioning_cannot_be_mapped(tmp_path):
    text = (PAPERS / "helix.json").read_text()
    fixed = text.replace(
        '"output_projection": "partitioned_by_head_and_dimension"\n',
        '"output_projection": "partitioned_by_head_and_dimension"\n      }\n',
        1,
    )
    path = tmp_path / "helix.json"
    path.write_text(fixed)
    cond = load_any_condition(PAPER_CONDITIONS / "paper-dense-4l-h100x16.yaml")
    with pytest.raises(InputError, match="dimension_partitions.*cannot be mapped"):
        load_any_plan(path, cond)
    baseline = load_any_plan(f"{path}#baseline_method", cond).plan
    assert (baseline.tp, baseline.pp) == (8, 2)


def test_paper_config_is_not_a_condition():
    with pytest.raises(InputError, match="is a plan"):
        load_any_condition(PAPERS / "EP.json")


# ---- CLI: import and solve any source ------------------------------------------------------------


def test_cli_import_writes_atomic_yaml_that_solves(tmp_path):
    out = tmp_path / "trio.yaml"
    result = runner.invoke(app, ["import", str(TRIO), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "assumed:" in result.output
    assert not list(tmp_path.glob(".*.tmp"))
    result = runner.invoke(
        app, ["solve", str(out), "-o", str(tmp_path / "plan"), "--time-limit", "10"]
    )
    assert result.exit_code == 0, result.output
    plan_md = (tmp_path / "plan" / "plan.md").read_text()
    assert "Assumed by the importer" in plan_md and "target_requests_per_second" in plan_md


def test_cli_solve_accepts_markdown_directly(tmp_path):
    result = runner.invoke(
        app,
        [
            "solve",
            str(SEED / "markdown" / "qwen3-235b-ttft.md"),
            "-o",
            str(tmp_path / "q"),
            "--time-limit",
            "10",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "interconnect not stated" in (tmp_path / "q" / "plan.md").read_text()


def test_cli_import_unknown_format(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"hello": 1}')
    result = runner.invoke(app, ["import", str(path)])
    assert result.exit_code == 1 and "not recognized" in result.output


def test_markdown_single_sequence_length_and_e2e(tmp_path):
    path = _write_md(tmp_path, ("* **Sequence In**: 2048\n* **Sequence Out**: 2048",
                                "* **Sequence Out**: 256"))
    text = path.read_text().replace(
        "* **Sequence Length**: The sequence length for each batch is variable, ranging from "
        "[128, 10240].", "* **Sequence Length**: 4096 tokens")
    text += "\n- **End-to-end latency**: 2 min\n"
    path.write_text(text)
    c = load_any_condition(path)
    assert (c.workload.input_tokens, c.workload.output_tokens) == (4096, 256)
    assert c.slo.e2e_latency_ms == 120_000 and c.slo.ttft_ms == 30_000
