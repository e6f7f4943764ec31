"""`paraplan check` of a disaggregated short plan (issue 14): `prefill: {...}` and `decode: {...}`
graded by the planner's evaluator and verifier, exact GPU accounting per pool in --json, broken
plans with violations that say why, regret against the disaggregated optimum."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from solver.cli import app
from solver.errors import EXIT_INVALID_INPUT, EXIT_VIOLATIONS
from tests.paths import REPO

PUBLISHED = REPO / "conditions" / "published"
CONDITION = ("model: llama-3.1-8b\nhardware: {gpu: l40s, num_nodes: 2, gpus_per_node: 2}\n"
             "workload: {input_tokens: 1024, output_tokens: 128}\nserving: {mode: disaggregated}\n")


def _check(tmp_path: Path, plan: str, *extra: str, condition: Path | None = None):  # noqa: ANN202
    if condition is None:
        condition = tmp_path / "disagg.yaml"
        condition.write_text(CONDITION)
    path = tmp_path / "plan.yaml"
    path.write_text(plan)
    return CliRunner().invoke(app, ["check", str(condition), str(path), *extra])


def _check_published(name: str) -> tuple[dict, dict, dict, dict]:
    """`check --json` of conditions/published/NAME.yaml with its NAME.plan.yaml: valid; the data,
    its pools block and each pool's."""
    result = CliRunner().invoke(app, ["check", str(PUBLISHED / f"{name}.yaml"),
                                      str(PUBLISHED / f"{name}.plan.yaml"), "--json", "--no-regret"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["valid"]
    pools = data["metrics"]["pools"]
    return data, pools, pools["prefill"], pools["decode"]


def test_deepseek_published_units_pass_as_one_disaggregated_plan() -> None:
    """DeepSeek's 4-node prefill unit (EP32) and 18-node decode unit (EP144) on 22 nodes: valid,
    every one of the 176 GPUs in exactly one pool."""
    data, pools, prefill, decode = _check_published("deepseek-v3-disagg-h800x176")
    assert (prefill["instances"], prefill["gpus_per_instance"], prefill["gpus"]) == (1, 32, 32)
    assert (decode["instances"], decode["gpus_per_instance"], decode["gpus"]) == (1, 144, 144)
    assert (prefill["first_gpu"], prefill["last_gpu"]) == (0, 31)
    assert (decode["first_gpu"], decode["last_gpu"]) == (32, 175)
    assert pools["gpus"] == {"available": 176, "used": 176, "idle": 0}
    assert prefill["parallelism"]["ep"] == 32 and decode["parallelism"]["ep"] == 144
    assert prefill["input_tokens_per_s_per_gpu"] > 0 and decode["output_tokens_per_s_per_gpu"] > 0
    parts = prefill["ttft_prefill_ms"] + prefill["kv_transfer_ms"] + prefill["ttft_admission_ms"]
    assert abs(parts - data["metrics"]["ttft_ms"]) <= 1e-9 * parts
    assert decode["tpot_ms"] == data["metrics"]["tpot_ms"]
    names = {c["name"] for c in data["checks"]}
    assert {"gpu_count.all_used", "gpu_count.device_map", "gpu_count.whole_node_pools",
            "prefill.instances", "decode.instances", "rate.prefill", "rate.decode"} <= names


def test_sglang_published_units_pass_as_one_disaggregated_plan() -> None:
    """SGLang's measured units (lmsys.org 2025-05-05): a 4-node prefill unit (EP32, DP attention)
    and a 9-node decode unit (EP72, 256 sequences per GPU) on 13 x 8 H100: valid, each of the 104
    GPUs in exactly one pool."""
    _, pools, prefill, decode = _check_published("sglang-deepseek-v3-disagg-h100x104")
    assert (prefill["gpus"], prefill["first_gpu"], prefill["last_gpu"]) == (32, 0, 31)
    assert (decode["gpus"], decode["first_gpu"], decode["last_gpu"]) == (72, 32, 103)
    assert pools["gpus"] == {"available": 104, "used": 104, "idle": 0}
    assert prefill["parallelism"]["ep"] == 32 and decode["parallelism"]["ep"] == 72
    assert prefill["parallelism"]["attn_dp"] == 32 and decode["parallelism"]["attn_dp"] == 72


def test_a_valid_plan_gets_its_regret_against_the_disaggregated_optimum(tmp_path: Path) -> None:
    result = _check(tmp_path, "prefill: {tp: 1, instances: 2, batch_size: 16}\n"
                              "decode: {tp: 2, instances: 1, batch_size: 384}\n")
    assert result.exit_code == 0, result.output
    assert "valid: every hard constraint holds" in result.stdout
    assert "regret: the optimum is disaggregated: prefill" in result.stdout
    assert "prefill pool: 2 x" in result.stdout and "decode pool: 1 x" in result.stdout


def test_broken_rules_are_violations_with_their_reasons(tmp_path: Path) -> None:
    result = _check(tmp_path, "prefill: {tp: 3, instances: 2}\ndecode: {tp: 2, instances: 1, "
                              "batch_size: 384}\n", "--no-regret")
    assert result.exit_code == EXIT_VIOLATIONS, result.output
    assert ("VIOLATED prefill.divisibility_and_policy: tp=3 does not divide num_attention_heads=32"
            in result.stdout)
    assert "VIOLATED gpu_count.available: 2 x 3 + 1 x 2 = 8 GPUs (limit <= 4)" in result.stdout


def test_pools_that_leave_gpus_idle_or_split_a_node_are_violations(tmp_path: Path) -> None:
    result = _check(tmp_path, "prefill: {tp: 1, instances: 1, batch_size: 16}\n"
                              "decode: {tp: 2, instances: 1, batch_size: 384}\n")
    assert result.exit_code == EXIT_VIOLATIONS, result.output
    assert "VIOLATED gpu_count.all_used: 3 (limit = 4)" in result.stdout
    assert "VIOLATED gpu_count.whole_node_pools: 1 + 2 GPUs (limit multiples of 2)" in result.stdout
    assert "regret: invalid: no regret" in result.stdout


def test_a_prefill_batch_its_chunk_cannot_hold_is_a_violation(tmp_path: Path) -> None:
    result = _check(tmp_path, "prefill: {tp: 1, instances: 2, batch_size: 16, chunk_tokens: 4096}\n"
                              "decode: {tp: 2, instances: 1, batch_size: 384}\n", "--json", "--no-regret")
    assert result.exit_code == EXIT_VIOLATIONS, result.output
    failed = [c for c in json.loads(result.stdout)["checks"] if not c["passed"]]
    assert [c["name"] for c in failed] == ["prefill.batch_size"]
    assert failed[0]["limit"] == "= 4" and "max-num-batched-tokens T = 4096" in failed[0]["detail"]


def test_a_malformed_disaggregated_plan_is_an_input_error(tmp_path: Path) -> None:
    for plan, key in (("prefill: {tp: 1, instances: 2}\ndecode: {tp: 2, batch_size: 8}\n", "instances"),
                      ("prefill: {tp: 1, instances: 2, dp: 2}\ndecode: {tp: 2, instances: 1, "
                       "batch_size: 8}\n", "dp")):
        result = _check(tmp_path, plan, "--no-regret")
        assert result.exit_code == EXIT_INVALID_INPUT, result.output
        assert key in result.stderr and "Traceback" not in result.output
