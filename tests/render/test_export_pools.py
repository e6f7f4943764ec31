"""TensorRT-LLM launch files of a disaggregated plan (render/export_pools_trtllm.py): each pool's
`trtllm-serve` servers with their LLM API options (the aggregated exporter's for the pool's plan,
plus cache_transceiver_config), the `trtllm-serve disaggregated` front end's config and script;
every flag and YAML key one that TensorRT-LLM's sources define (tests/assets/engine_args/
trtllm.yaml), every script run node by node with stub engines."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from solver.inputs.condition import load_condition
from solver.physics.disaggregation import pool_condition
from solver.render.export import render_launch, trtllm_options
from solver.render.export_pools import render_pools_launch
from solver.review.check import ShortPlan, check_given
from solver.review.check_pools import PoolsShortPlan
from tests.render.pool_plans import PLANS, PUBLISHED, dense
from tests.render.test_export_flags import ARGS, _recorded, _run_node, _segments, _stubs

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
POOLS = ("prefill", "decode")
SECTIONS = {"prefill": "context_servers", "decode": "generation_servers"}


@pytest.fixture(scope="module")
def keys() -> dict[str, list[str]]:
    return yaml.safe_load((ARGS / "trtllm.yaml").read_text())["options"]


def _unknown(options: dict, keys: dict[str, list[str]], section: str = "llm_api") -> list[str]:
    """The keys (and fixed-set values) of an LLM API options mapping that TensorRT-LLM's sources do
    not define, as section.key."""
    out = []
    for key, value in options.items():
        if key not in keys[section]:
            out.append(f"{section}.{key}")
        elif isinstance(value, dict):
            out += _unknown(value, keys, key)
        elif f"{section}.{key}" in keys and value not in keys[f"{section}.{key}"]:
            out.append(f"{section}.{key}={value}")
    return out


def _unknown_front_end(config: dict, keys: dict[str, list[str]]) -> list[str]:
    out = [key for key in config if key not in keys["disaggregated"]]
    for section in SECTIONS.values():
        servers = {k: v for k, v in config[section].items() if k not in keys["disaggregated_servers"]}
        out += _unknown(servers, keys)
    return out


def _trtllm_servers(files: dict[str, str], name: str, tmp_path: Path, recorded) -> list[list[str]]:
    """Every trtllm-serve command the pool's script starts on its nodes (mpirun included), each
    flag checked against trtllm-serve's and mpirun's recorded options; the options file lies
    beside the script, as in launch/."""
    tmp_path.mkdir(exist_ok=True)
    script = tmp_path / f"{name}-trtllm.sh"
    script.write_text(files[f"launch/{name}-trtllm.sh"])
    (tmp_path / f"{name}-trtllm.yaml").write_text(files[f"launch/{name}-trtllm.yaml"])
    nodes = sorted(int(n) for n in re.findall(r"^  (\d+)\)$", script.read_text(), re.MULTILINE)) or [0]
    servers = []
    for node in nodes:
        for argv in _run_node(script, node, nodes, tmp_path):
            for program, flags in _segments(argv):
                assert set(flags) <= recorded[program], (name, node, set(flags) - recorded[program])
            if "trtllm-serve" in argv:
                servers.append(argv[argv.index("trtllm-serve"):])
    return servers


def _flag(argv: list[str], name: str) -> str:
    return argv[len(argv) - 1 - argv[::-1].index(name) + 1]


@pytest.mark.parametrize("case", list(PLANS))
def test_each_pool_gets_trtllm_servers_with_the_plans_degrees(case, keys, tmp_path) -> None:
    """Each pool's options are the aggregated exporter's for the pool's plan plus
    cache_transceiver_config (the context servers also without the overlap scheduler); every key is
    one TensorRT-LLM defines; one trtllm-serve per instance, on every interface, reading them."""
    condition, plan = PLANS[case]()
    files, recorded = render_pools_launch(condition, plan), _recorded()
    for name in POOLS:
        pool = getattr(plan.pools, name)
        options = yaml.safe_load(files[f"launch/{name}-trtllm.yaml"])
        assert not _unknown(options, keys), (name, _unknown(options, keys))
        aggregated, _ = trtllm_options(pool_condition(condition, name, pool.gpus), pool.plan, name)
        extra = {k: v for k, v in options.items() if k not in aggregated}
        assert {k: options[k] for k in aggregated} == aggregated
        assert extra.pop("cache_transceiver_config") == {
            "backend": "DEFAULT", "max_tokens_in_buffer": condition.workload.input_tokens}
        assert extra == ({"disable_overlap_scheduler": True} if name == "prefill" else {})
        p = pool.plan.parallelism
        assert (options["tensor_parallel_size"], options["pipeline_parallel_size"]) == (
            pool.plan.gpus.per_stage, p.pp)
        assert options.get("moe_expert_parallel_size", 1) == p.ep
        servers = _trtllm_servers(files, name, tmp_path / name, recorded)
        assert len(servers) == pool.instances
        for argv in servers:
            assert _flag(argv, "--host") == "0.0.0.0" and _flag(argv, "--tp_size") == str(
                pool.plan.gpus.per_stage)
            assert Path(_flag(argv, "--extra_llm_api_options")) == tmp_path / name / f"{name}-trtllm.yaml"


@pytest.mark.parametrize("case", list(PLANS))
def test_the_front_end_lists_every_instance(case, keys, tmp_path) -> None:
    """disagg-trtllm.yaml: each pool's section has the pool's instance count, one url per instance
    at the port of its server, and the pool's own LLM API options; router-trtllm.sh fills in the
    hosts it is given and runs `trtllm-serve disaggregated -c` on the result."""
    condition, plan = PLANS[case]()
    files, recorded = render_pools_launch(condition, plan), _recorded()
    config = yaml.safe_load(files["launch/disagg-trtllm.yaml"])
    assert not _unknown_front_end(config, keys), _unknown_front_end(config, keys)
    hosts, ports = {}, {}
    for name in POOLS:
        section, pool = config[SECTIONS[name]], getattr(plan.pools, name)
        assert section["num_instances"] == pool.instances == len(section["urls"])
        servers = _trtllm_servers(files, name, tmp_path / name, recorded)
        ports[name] = [_flag(argv, "--port") for argv in servers]
        assert [url.split(":")[1] for url in section["urls"]] == ports[name]
        options = yaml.safe_load(files[f"launch/{name}-trtllm.yaml"])
        assert {k: v for k, v in section.items() if k not in ("num_instances", "urls")} == options
        hosts |= {url.split(":")[0]: f"10.1.{len(hosts)}.1" for url in section["urls"]}
    filled = _run_front_end(files, hosts, tmp_path / "front", recorded)
    for name in POOLS:
        assert filled[SECTIONS[name]]["urls"] == [
            f"{hosts[url.split(':')[0]]}:{port}"
            for url, port in zip(config[SECTIONS[name]]["urls"], ports[name], strict=True)]


def _run_front_end(files: dict[str, str], hosts: dict[str, str], folder: Path, recorded) -> dict:
    """router-trtllm.sh run with the host variables set: the config it starts the front end with."""
    folder.mkdir()
    for name in ("router-trtllm.sh", "disagg-trtllm.yaml"):
        (folder / name).write_text(files[f"launch/{name}"])
    env = dict(os.environ) | _stubs(folder / "bin", folder / "log") | hosts | {"TMPDIR": str(folder)}
    run = subprocess.run(["bash", str(folder / "router-trtllm.sh")], env=env, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    [argv] = [path.read_text().splitlines() for path in (folder / "log").iterdir()]
    [(program, flags)] = _segments(argv)
    assert argv[:3] == ["trtllm-serve", "disaggregated", "-c"] and set(flags) <= recorded[program]
    return yaml.safe_load(Path(argv[3]).read_text())


def test_the_front_end_asks_for_every_host(tmp_path) -> None:
    condition, plan = dense()
    files = render_pools_launch(condition, plan)
    script = tmp_path / "router-trtllm.sh"
    script.write_text(files["launch/router-trtllm.sh"])
    env = {k: v for k, v in os.environ.items() if "_HOST_" not in k}
    run = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0 and "set PREFILL_HOST_0" in run.stderr


@pytest.mark.parametrize("case", list(PLANS))
def test_every_script_parses_and_says_what_trtllm_cannot_express(case, tmp_path) -> None:
    condition, plan = PLANS[case]()
    files = render_pools_launch(condition, plan)
    expected = {f"launch/{name}" for name in ("prefill-trtllm.yaml", "prefill-trtllm.sh",
                                               "decode-trtllm.yaml", "decode-trtllm.sh",
                                               "disagg-trtllm.yaml", "router-trtllm.sh")}
    assert expected <= set(files)
    for path, text in files.items():
        assert "own orchestrator" not in text  # TensorRT-LLM's disaggregated serving is written
        if path.endswith(".sh"):
            script = tmp_path / path.replace("/", "-")
            script.write_text(text)
            assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0, path
        if "trtllm" in path:
            assert "Not expressible in TensorRT-LLM" in text, path


def test_the_aggregated_options_file_writes_only_known_keys(keys) -> None:
    """launch/trtllm.yaml of a dense and an MoE plan: the same verified key list."""
    for condition, degrees in ((load_condition(PUBLISHED.parent / "llama70b-h100x8.yaml"), {"tp": 8}),
                               (load_condition(PUBLISHED.parent / "deepseek-v3-h200x16.yaml"),
                                {"attn_dp": 16, "ep": 16})):
        plan = check_given(condition, ShortPlan(batch_size=16, **degrees)).plan
        options = yaml.safe_load(render_launch(condition, plan)["launch/trtllm.yaml"])
        assert not _unknown(options, keys), _unknown(options, keys)


# ---- chunked prefill: TensorRT-LLM's LLM API has it off (llm_args.py BaseLlmArgs
# enable_chunked_prefill, default False), and then refuses a prompt longer than max_num_tokens unless
# the request is generation-only (llm.py _check_arguments) -------------------------------------------


@pytest.mark.parametrize("chunk_tokens", [512, 2048, 4096])
def test_the_aggregated_server_chunks_prefill_when_the_plan_does(chunk_tokens, keys, tmp_path) -> None:
    """Llama-3.1-70B with 2,048-token prompts: a chunk budget under the prompt enables chunked
    prefill in trtllm.yaml and on trtllm-serve (--enable_chunked_prefill); a budget of a whole
    prompt or more writes neither, and max_num_tokens holds a whole prompt."""
    condition = load_condition(PUBLISHED.parent / "llama70b-h100x8.yaml")
    plan = check_given(condition, ShortPlan(tp=4, dp=2, batch_size=16, chunk_tokens=chunk_tokens)).plan
    assert plan.serving.chunk_tokens == chunk_tokens
    files, prompt = render_launch(condition, plan), condition.workload.input_tokens
    options = yaml.safe_load(files["launch/trtllm.yaml"])
    assert not _unknown(options, keys), _unknown(options, keys)
    chunked = chunk_tokens < prompt
    assert options["max_num_tokens"] == chunk_tokens and (chunked or chunk_tokens >= prompt)
    assert options.get("enable_chunked_prefill", False) is chunked
    for name in ("trtllm.sh", "trtllm.yaml"):
        (tmp_path / name).write_text(files[f"launch/{name}"])
    servers = _run_node(tmp_path / "trtllm.sh", 0, [0], tmp_path)
    assert len(servers) == plan.parallelism.dp
    for argv in servers:
        assert ("--enable_chunked_prefill" in argv) is chunked


def _dense_chunked():
    """pool_plans.dense with each prefill instance prefilling its 1,024-token prompts 512 tokens at a time."""
    condition, _ = dense()
    short = PoolsShortPlan.model_validate({"prefill": {"tp": 1, "instances": 2, "chunk_tokens": 512},
                                           "decode": {"tp": 2, "instances": 1, "batch_size": 384}})
    plan = check_given(condition, short).plan
    assert plan.pools.prefill.plan.serving.chunk_tokens == 512 < condition.workload.input_tokens
    return condition, plan


CHUNKING = {**PLANS, "llama-3.1-8b, 4 x L40S, prefill chunks of 512": _dense_chunked}


@pytest.mark.parametrize("case", list(CHUNKING))
def test_context_servers_chunk_prefill_when_their_pool_does(case, tmp_path) -> None:
    """A context server whose chunk budget is under the prompt has chunked prefill enabled (its
    options file, its section of the front end's config, its trtllm-serve flag); one with a budget
    of a whole prompt or more has max_num_tokens over the prompt instead. Generation servers never
    prefill (the front end sends them generation-only requests, whose prompt the KV cache holds), so
    theirs stays off whatever their step budget."""
    condition, plan = CHUNKING[case]()
    files, recorded = render_pools_launch(condition, plan), _recorded()
    config, prompt = yaml.safe_load(files["launch/disagg-trtllm.yaml"]), condition.workload.input_tokens
    for name in POOLS:
        chunk = getattr(plan.pools, name).plan.serving.chunk_tokens
        options = yaml.safe_load(files[f"launch/{name}-trtllm.yaml"])
        chunked = name == "prefill" and chunk < prompt
        assert options["max_num_tokens"] == chunk and (name == "decode" or chunked or chunk >= prompt)
        assert options.get("enable_chunked_prefill", False) is chunked
        assert config[SECTIONS[name]].get("enable_chunked_prefill", False) is chunked
        for argv in _trtllm_servers(files, name, tmp_path / name, recorded):
            assert ("--enable_chunked_prefill" in argv) is chunked, (name, argv)
