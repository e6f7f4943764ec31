"""Every HTTP server the launch files start listens on all interfaces (render/launch_nodes.py): a
router, a front end or a client on another node has to reach it. SGLang binds 127.0.0.1 unless
told (--host, docs/advanced_features/server_arguments.md) and trtllm-serve localhost (--host,
tensorrt_llm/commands/serve.py), so every SGLang server and every trtllm-serve (under mpirun too)
carries --host 0.0.0.0; `vllm serve` binds every interface when --host is unset (cli_args.py FrontendArgs
host None, api_server.py binds (args.host or "", port)), so vLLM's commands keep that default.

Each script is run node by node with stub engines (tests/render/test_export_flags.py), aggregated
plans on one node and on several, and both pools of disaggregated plans."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from solver.inputs.condition import load_condition
from solver.render.export import render_launch
from solver.render.export_pools import render_pools_launch
from solver.review.check import ShortPlan, check_given
from tests.paths import REPO
from tests.render.pool_plans import PLANS as POOLED
from tests.render.test_export_flags import PLANS as AGGREGATED
from tests.render.test_export_flags import _condition, _run_node

ALL_INTERFACES = "0.0.0.0"
SERVERS = {"sglang": ("python", "-m", "sglang.launch_server"), "trtllm": ("trtllm-serve",),
           "vllm": ("vllm", "serve")}


def _aggregated(name: str):
    model, gpu, num_nodes, degrees = AGGREGATED[name]
    condition = _condition(model, gpu, num_nodes)
    return render_launch(condition, check_given(condition, ShortPlan(batch_size=32, **degrees)).plan)


def _one_node():
    condition = load_condition(REPO / "conditions" / "llama70b-h100x8.yaml")
    return render_launch(condition, check_given(condition, ShortPlan(tp=4, dp=2, batch_size=16)).plan)


CASES = {**{f"aggregated {name}": (lambda name=name: _aggregated(name)) for name in AGGREGATED},
         "aggregated llama70b TP4 DP2, 1 node": _one_node,
         **{f"disaggregated {name}": (lambda name=name: render_pools_launch(*POOLED[name]()))
            for name in POOLED}}


def _listening(files: dict[str, str], path: str, engine: str, tmp_path: Path) -> list[list[str]]:
    """The server commands of one script that serve HTTP (those given a --port), from the server
    program on, every node run with stub engines."""
    script = tmp_path / path.replace("/", "-")
    script.write_text(files[path])
    nodes = sorted(int(n) for n in re.findall(r"^  (\d+)\)$", files[path], re.MULTILINE)) or [0]
    program, out = SERVERS[engine], []
    for node in nodes:
        for argv in _run_node(script, node, nodes, tmp_path):
            starts = [i for i in range(len(argv)) if tuple(argv[i:i + len(program)]) == program]
            if starts and "--port" in argv:
                out.append(argv[starts[0]:])
    return out


def _host(argv: list[str]) -> str | None:
    """The last --host a command gives (the one its parser keeps), None without one."""
    hosts = [argv[i + 1] for i, word in enumerate(argv[:-1]) if word == "--host"]
    return hosts[-1] if hosts else None


@pytest.mark.parametrize("case", list(CASES))
def test_every_server_listens_on_all_interfaces(case, tmp_path) -> None:
    files = CASES[case]()
    for engine in SERVERS:
        paths = [p for p in files if p.endswith(f"{engine}.sh") and "router" not in p]
        assert paths, (case, engine)
        for path in paths:
            servers = _listening(files, path, engine, tmp_path)
            assert servers, (case, path)
            for argv in servers:
                expected = None if engine == "vllm" else ALL_INTERFACES  # vLLM's default binds all
                assert _host(argv) == expected, (case, path, argv)
