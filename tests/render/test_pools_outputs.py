"""`paraplan solve` of serving.mode disaggregated and auto (issue 14): every output file, plan.md
and report.html show each pool, the KV transfer and the TTFT parts, the console prints the pools,
plan.json's device map lists every GPU once, and auto shows both architectures' goodput."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from click.testing import CliRunner

from solver.cli import app
from solver.render.writer import MANIFEST, PLAN_FILES

CONDITION = ("model: llama-3.1-8b\nhardware: {gpu: l40s, num_nodes: 2, gpus_per_node: 2}\n"
             "workload: {input_tokens: 1024, output_tokens: 128}\nserving: {mode: MODE}\n")


def _solve(tmp_path: Path, mode: str, *extra: str) -> tuple[Path, str]:
    path = tmp_path / f"{mode}.yaml"
    path.write_text(CONDITION.replace("MODE", mode))
    out = tmp_path / mode
    result = CliRunner().invoke(app, ["solve", str(path), "-o", str(out), *extra])
    assert result.exit_code == 0, result.output
    return out, result.stdout


def test_disaggregated_solve_writes_every_file_with_the_pools(tmp_path: Path) -> None:
    out, console = _solve(tmp_path, "disaggregated")
    for name in (*PLAN_FILES, MANIFEST):
        assert (out / name).is_file(), name
    plan = json.loads((out / "plan.json").read_text())
    pools = plan["pools"]
    used = pools["prefill"]["gpus"] + pools["decode"]["gpus"]
    assert used == plan["gpus"]["used"] == 4
    assert [d["gpu"] for d in pools["device_map"]] == list(range(used))
    assert {d["pool"] for d in pools["device_map"]} == {"prefill", "decode"}
    md = (out / "plan.md").read_text()
    for heading in ("## Pools and the request", "## Prefill pool", "## Decode pool",
                    "### Device map (global GPU ids)", "GPU accounting"):
        assert heading in md, heading
    ttft = f"{plan['metrics']['ttft_ms']:,.2f} ms"
    assert f"TTFT = prefill + KV transfer + decode admission = {pools['ttft_prefill_ms']:,.2f} + " in md
    assert ttft in md and "KV transfer = max(sent, received) / link + latency" in md
    assert "input tokens/s per GPU" in md and "output tokens/s per GPU" in md
    html = (out / "report.html").read_text()
    assert 'id="prefill"' in html and 'id="decode"' in html and "Device map (global GPU ids)" in html
    rows = list(csv.DictReader((out / "balance.csv").open()))
    assert [int(r["gpu"]) for r in rows] == list(range(used))
    assert {r["pool"] for r in rows} == {"prefill", "decode"}
    assert "prefill pool:" in console and "decode pool:" in console and "KV transfer" in console


def test_auto_solve_reports_both_architectures(tmp_path: Path) -> None:
    out, console = _solve(tmp_path, "auto")
    plan = json.loads((out / "plan.json").read_text())
    comparison = plan["comparison"]
    rates = {r["architecture"]: r["requests_per_s_per_gpu"] for r in comparison["results"]}
    assert set(rates) == {"aggregated", "disaggregated"}
    assert rates[comparison["winner"]] == max(r for r in rates.values() if r is not None)
    md = (out / "plan.md").read_text()
    assert "## Aggregated or disaggregated (serving.mode auto)" in md
    assert f"**{comparison['winner']}** wins on goodput per GPU" in md
    assert "Aggregated or disaggregated" in (out / "report.html").read_text()
    assert f"auto: {comparison['winner']} wins" in console


def test_the_bundled_auto_condition_solves(tmp_path: Path) -> None:
    """README's example: conditions/llama8b-h100x8-auto.yaml reports both architectures."""
    from tests.paths import REPO

    result = CliRunner().invoke(app, ["solve", str(REPO / "conditions" / "llama8b-h100x8-auto.yaml"),
                                      "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    comparison = json.loads((tmp_path / "out" / "plan.json").read_text())["comparison"]
    assert [r["status"] for r in comparison["results"]] == ["optimal", "optimal"]
    assert "auto:" in result.stdout


def test_export_writes_each_pools_servers_and_the_router_with_flags_the_engines_define(
        tmp_path: Path) -> None:
    """Every node of each pool's vLLM and SGLang script runs with the disaggregation flags (checked
    against tests/assets/engine_args/), the SGLang router lists every instance, and the manifest
    lists TensorRT-LLM's files (tests/render/test_export_pools.py checks them)."""
    from tests.render.test_export_flags import _recorded, _run_node, _segments

    out, _ = _solve(tmp_path, "disaggregated", "--export")
    recorded = _recorded()
    plan = json.loads((out / "plan.json").read_text())
    for pool in ("prefill", "decode"):
        nodes = sorted({d["node"] for d in plan["pools"][pool]["plan"]["devices"]})
        for engine, flag in (("vllm", "--kv-transfer-config"), ("sglang", "--disaggregation-mode")):
            script = out / "launch" / f"{pool}-{engine}.sh"
            text = script.read_text()
            assert "own orchestrator" not in text  # TensorRT-LLM's files are written too
            for node in nodes:
                work = tmp_path / f"{pool}-{engine}-{node}"
                work.mkdir()
                commands = _run_node(script, node, nodes, work)
                servers = [argv for argv in commands if flag in argv]
                assert servers, (pool, engine, node)
                for argv in commands:
                    for program, flags in _segments(argv):
                        assert set(flags) <= recorded[program], (pool, engine, set(flags) - recorded[program])
                if engine == "sglang":
                    assert all(argv[argv.index(flag) + 1] == pool for argv in servers)
                else:
                    config = json.loads(servers[0][servers[0].index(flag) + 1])
                    assert config == {"kv_connector": "NixlConnector", "kv_role": "kv_both"}
    manifest = json.loads((out / MANIFEST).read_text())["files"]
    for name in ("prefill-trtllm.yaml", "prefill-trtllm.sh", "decode-trtllm.yaml", "decode-trtllm.sh",
                 "disagg-trtllm.yaml", "router-trtllm.sh", "router-sglang.sh"):
        assert str(out / "launch" / name) in manifest, name
    router = (out / "launch" / "router-sglang.sh").read_text().splitlines()[-1].split()
    assert router[:3] == ["python", "-m", "sglang_router.launch_router"]
    used = {w for w in router if w.startswith("--")}
    assert used <= recorded["python -m sglang_router.launch_router"]
    assert router.count("--prefill") == plan["pools"]["prefill"]["instances"]
    assert router.count("--decode") == plan["pools"]["decode"]["instances"]
