"""DeepEP only where the GPU card says it runs (render/launch_moe.py): an NVIDIA Ampere, Hopper or
Blackwell card with NVLink between a node's GPUs gets SGLang's --moe-a2a-backend deepep and vLLM's
--all2all-backend deepep_*; any other card (the L40S: Ada over PCIe; the MI300X) gets the engine's
default all-to-all, no two-batch overlap (both engines run it over an all-to-all backend only) and
a header naming the reason."""

from __future__ import annotations

import pytest

from solver.inputs.condition import build_condition, load_gpu_card
from solver.render.export import render_launch
from solver.render.export_pools import render_pools_launch
from solver.render.launch_moe import deepep_obstacle, moe_deployment
from solver.review.check import ShortPlan, check_given
from solver.review.check_pools import PoolsShortPlan
from tests.render.test_export_flags import _header, _recorded, _servers, _values

DEEPEP_FLAGS = {"--moe-a2a-backend", "--deepep-mode", "--enable-two-batch-overlap", "--all2all-backend",
                "--enable-dbo"}
RUNS_DEEPEP = ("h100-sxm-80gb", "h200-sxm-141gb", "h800", "h20", "gh200", "a100-sxm-80gb", "b200")


@pytest.mark.parametrize("gpu", RUNS_DEEPEP)
def test_nvlink_data_centre_cards_run_deepep(gpu) -> None:
    assert deepep_obstacle(load_gpu_card(gpu)) is None


def test_the_l40s_and_the_mi300x_do_not_and_say_why() -> None:
    assert deepep_obstacle(load_gpu_card("l40s")) == (
        "l40s: architecture ada, DeepEP runs on ampere, hopper and blackwell GPUs; GPUs linked "
        "over pcie, DeepEP needs NVLink within a node")
    assert deepep_obstacle(load_gpu_card("mi300x")) == (
        "mi300x: architecture cdna3, DeepEP runs on ampere, hopper and blackwell GPUs")


def _qwen3(gpu: str, **serving):
    """Qwen3-30B-A3B on 4 GPUs of one node (2 x 4 for pools), two-batch overlap forced on."""
    return build_condition({
        "model": "qwen3-30b-a3b", "policy": {"two_batch_overlap": True},
        "hardware": {"gpu": gpu, "num_nodes": 2 if serving else 1, "gpus_per_node": 4},
        "workload": {"input_tokens": 1024, "output_tokens": 128, "batch_size": 32},
        **({"serving": serving} if serving else {})}, "c.yaml", "c")


@pytest.mark.parametrize("gpu", ["l40s", "mi300x"])
def test_a_card_without_deepep_gets_the_default_all_to_all(gpu, tmp_path) -> None:
    """EP4 with attention DP4: expert parallelism stays (SGLang --ep-size, vLLM
    --enable-expert-parallel), DeepEP and the overlap that needs it go, and the header says why."""
    condition = _qwen3(gpu)
    plan = check_given(condition, ShortPlan(attn_dp=4, ep=4, batch_size=32)).plan
    assert moe_deployment(condition, plan).overlap_steps  # the plan overlaps: forced by the policy
    files, recorded = render_launch(condition, plan), _recorded()
    for engine, runs_instead, expert_flag in (
            ("sglang", "SGLang's default backend (all-reduce/all-gather dispatch) runs", "--ep-size"),
            ("vllm", "vLLM's default --all2all-backend runs", "--enable-expert-parallel")):
        header = _header(files[f"launch/{engine}.sh"])
        assert f"DeepEP all-to-all over ep=4 cannot run here ({deepep_obstacle(load_gpu_card(gpu))}): " \
               f"{runs_instead}" in header
        assert "two-batch overlap" in header and "layers serially" in header
        for argv in _servers(files, f"launch/{engine}.sh", tmp_path, recorded):
            flags = _values(argv)
            assert expert_flag in flags and not DEEPEP_FLAGS & set(flags), (engine, flags)


def test_the_same_plan_on_h100s_runs_deepep(tmp_path) -> None:
    condition = _qwen3("h100-sxm-80gb")
    plan = check_given(condition, ShortPlan(attn_dp=4, ep=4, batch_size=32)).plan
    files, recorded = render_launch(condition, plan), _recorded()
    [sglang] = _servers(files, "launch/sglang.sh", tmp_path, recorded)
    assert _values(sglang)["--moe-a2a-backend"] == "deepep" and "--enable-two-batch-overlap" in sglang
    [vllm] = _servers(files, "launch/vllm.sh", tmp_path, recorded)
    assert _values(vllm)["--all2all-backend"] == "deepep_high_throughput" and "--enable-dbo" in vllm
    for engine in ("sglang", "vllm"):
        assert "cannot run here" not in files[f"launch/{engine}.sh"]


@pytest.mark.parametrize("gpu,runs_deepep", [("l40s", False), ("h100-sxm-80gb", True)])
def test_pools_pin_deepep_kernels_only_where_the_card_runs_them(gpu, runs_deepep, tmp_path) -> None:
    """A disaggregated EP4 plan: --deepep-mode normal|low_latency and deepep_* backends on H100
    pools, none of them on L40S pools (whose headers name the card)."""
    condition = _qwen3(gpu, mode="disaggregated")
    unit = {"tp": 1, "attn_dp": 4, "ep": 4, "instances": 1}
    short = PoolsShortPlan.model_validate({"prefill": {**unit, "batch_size": 16},
                                           "decode": {**unit, "batch_size": 64}})
    files, recorded = render_pools_launch(condition, check_given(condition, short).plan), _recorded()
    for name, mode in (("prefill", "normal"), ("decode", "low_latency")):
        for engine in ("sglang", "vllm"):
            path = f"launch/{name}-{engine}.sh"
            assert ("cannot run here (l40s:" in _header(files[path])) is not runs_deepep
            for argv in _servers(files, path, tmp_path, recorded):
                flags = _values(argv)
                if not runs_deepep:
                    assert not DEEPEP_FLAGS & set(flags), (path, flags)
                elif engine == "sglang":
                    assert flags["--deepep-mode"] == mode
                else:
                    assert flags["--all2all-backend"].startswith("deepep_")
