"""Engine launch configs: the plan's degrees as real vLLM / SGLang / TensorRT-LLM flags, and a
comment of what each engine cannot express."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml
from click.testing import CliRunner

from solver.cli import app
from solver.document.plan import Plan
from solver.inputs.condition import load_condition
from solver.render.export import render_launch, sglang_launch, trtllm_options, vllm_launch
from solver.review.check import ShortPlan, check_given
from tests.paths import REPO as REPO_ROOT

ROOT = REPO_ROOT
CONDITIONS = ROOT / "conditions"
runner = CliRunner()


def _plan(condition_name: str, **degrees: object) -> tuple[object, Plan]:
    condition = load_condition(CONDITIONS / f"{condition_name}.yaml")
    result = check_given(condition, ShortPlan(**degrees))
    assert result.plan is not None
    return condition, result.plan


def _flags(launch) -> dict[str, str | None]:
    return dict(launch.args)


def test_dense_uneven_pipeline():
    condition, plan = _plan("llama70b-h100x8", tp=4, pp=2, batch_size=32, layers_per_stage=[41, 39])
    v = vllm_launch(condition, plan)
    assert (
        _flags(v)["--tensor-parallel-size"] == "4" and _flags(v)["--pipeline-parallel-size"] == "2"
    )
    assert v.env["VLLM_PP_LAYER_PARTITION"] == "41,39"
    assert _flags(v)["--max-num-seqs"] == "32" and _flags(v)["--max-model-len"] == "2560"
    assert _flags(v)["--kv-cache-dtype"] == "fp8" and _flags(v)["--quantization"] == "fp8"
    s = sglang_launch(condition, plan)
    assert _flags(s)["--tp-size"] == "4" and _flags(s)["--pp-size"] == "2"
    assert s.env["SGLANG_PP_LAYER_PARTITION"] == "41,39"
    assert _flags(s)["--max-running-requests"] == "32" and _flags(s)["--context-length"] == "2560"
    options, trt = trtllm_options(condition, plan)
    assert options["tensor_parallel_size"] == 4 and options["pipeline_parallel_size"] == 2
    assert any("uneven layer split [41, 39]" in item for item in trt.lost)


def test_moe_attention_dp_and_expert_parallel():
    condition, plan = _plan("mixtral8x7b-a100x4", tp=1, attn_dp=4, ep=4, batch_size=64)
    v = _flags(vllm_launch(condition, plan))
    assert v["--data-parallel-size"] == "4" and "--enable-expert-parallel" in v
    assert v["--max-num-seqs"] == "16"  # per DP rank
    s = _flags(sglang_launch(condition, plan))
    assert s["--tp-size"] == "4" and s["--dp-size"] == "4" and "--enable-dp-attention" in s
    assert s["--ep-size"] == "4"
    options, _ = trtllm_options(condition, plan)
    assert options["enable_attention_dp"] is True and options["moe_expert_parallel_size"] == 4


def test_what_cannot_be_expressed_is_listed():
    condition, plan = _plan("mixtral8x7b-a100x4", tp=2, attn_dp=2, ep=2, etp=2, batch_size=16)
    v = vllm_launch(condition, plan)
    assert any("expert tensor parallelism" in item for item in v.lost)
    _, trt = trtllm_options(condition, plan)
    assert any("attention tp=2 x attn_dp=2" in item for item in trt.lost)
    files = render_launch(condition, plan)
    for name in ("launch/vllm.sh", "launch/sglang.sh", "launch/trtllm.yaml", "launch/trtllm.sh"):
        assert "Not expressible in" in files[name]


def test_files_parse(tmp_path):
    condition, plan = _plan("llama70b-h100x8", tp=8, batch_size=16)
    files = render_launch(condition, plan)
    options = yaml.safe_load(files["launch/trtllm.yaml"])
    assert options["tensor_parallel_size"] == 8 and options["kv_cache_config"]["dtype"] == "fp8"
    assert "--extra_llm_api_options" in files["launch/trtllm.sh"]
    assert 'MODEL="${MODEL:-meta-llama/Llama-3.1-70B-Instruct}"' in files["launch/vllm.sh"]
    if shutil.which("bash"):
        for name in ("launch/vllm.sh", "launch/sglang.sh", "launch/trtllm.sh"):
            script = tmp_path / name.split("/")[1]
            script.write_text(files[name])
            assert (
                subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
            ), name


def test_inline_model_needs_the_model_variable():
    condition = load_condition(CONDITIONS / "llama8b-l40sx2.yaml")
    inline = condition.model_copy(update={"model_ref": "inline"})
    plan = check_given(inline, ShortPlan(tp=2, batch_size=8)).plan
    assert "MODEL:?set MODEL" in render_launch(inline, plan)["launch/vllm.sh"]


def test_cli_solve_export_writes_launch_files_in_the_manifest(tmp_path):
    out = tmp_path / "plan"
    result = runner.invoke(
        app,
        [
            "solve",
            str(CONDITIONS / "llama8b-l40sx2.yaml"),
            "-o",
            str(out),
            "--export",
            "--time-limit",
            "10",
        ],
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())["files"]
    for name in ("vllm.sh", "sglang.sh", "trtllm.yaml", "trtllm.sh"):
        assert (out / "launch" / name).is_file()
        assert str(out / "launch" / name) in manifest
    plan = json.loads((out / "plan.json").read_text())
    tp = plan["parallelism"]["tp"]
    assert f"--tensor-parallel-size {tp}" in (out / "launch" / "vllm.sh").read_text()


@pytest.mark.parametrize(
    "name,degrees",
    [
        ("qwen3-30b-a3b-h100x2", {"tp": 1, "attn_dp": 2, "ep": 2, "batch_size": 32}),
        ("gpt-oss-120b-h100x4", {"tp": 1, "attn_dp": 4, "ep": 4, "batch_size": 32}),
    ],
)
def test_moe_plans_export(name, degrees):
    condition, plan = _plan(name, **degrees)
    files = render_launch(condition, plan)
    assert "--enable-expert-parallel" in files["launch/vllm.sh"]
    assert f"--ep-size {degrees['ep']}" in files["launch/sglang.sh"]
