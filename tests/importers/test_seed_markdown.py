"""Seed markdown conditions (solver/importers/seed_markdown*.py): every file imports and solves,
every value read is echoed with the line it came from, unreadable lines are errors that quote them,
and a Parallelism Strategy section is a short plan for `paraplan check`."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from solver.cli import app
from solver.errors import InputError
from solver.importers.registry import import_source, load_any_condition, load_any_plan
from solver.inputs.condition import build_condition
from solver.inputs.loading import parse_mapping
from solver.optimize.settings import SolverSettings
from solver.planning.planner import solve
from tests.paths import REPO as REPO_ROOT

ROOT = REPO_ROOT
SEED = ROOT / "tests" / "assets" / "seed-formats"  # copies of the reference inputs (README there)
MARKDOWN = sorted((SEED / "markdown").glob("*.md"))
FAST = SolverSettings(time_limit_s=10.0, num_workers=2)
runner = CliRunner()


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
