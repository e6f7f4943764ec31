"""Every malformed, missing, out-of-range or hostile input: exit code 1, a message on stderr naming
the file, the key path and the reason, never a traceback, never an output folder.

Bad condition files live in tests/assets/bad/ (one per mistake; the first line says what is
wrong); those that cannot be plain text files (binary, huge, directories, FIFOs, ...) are made in
tmp_path.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from solver.cli import app
from solver.errors import InputError, ParaplanError
from solver.inputs.condition import load_condition
from tests.paths import ASSETS
from tests.paths import REPO as REPO_ROOT

BAD = ASSETS / "bad"
BAD_PLANS = ASSETS / "bad_plans"
GOOD = ASSETS / "good"
GOOD_CONDITION = GOOD / "llama8b-l40sx2.yaml"
LLAMA70B = REPO_ROOT / "conditions" / "llama70b-h100x8.yaml"

# asset -> substrings the error message must contain (the key path first, where there is one)
EXPECTED: dict[str, list[str]] = {
    "malformed.yaml": ["line 4", "invalid YAML"],
    "empty.yaml": ["empty"],
    "list-at-top.yaml": ["mapping", "list"],
    "scalar-at-top.yaml": ["mapping", "str"],
    "typo-top-level.yaml": ["worklaod", "unknown key", "did you mean 'workload'"],
    "typo-nested.yaml": ["hardware.gpus_per_nod", "did you mean 'gpus_per_node'"],
    "typo-slo.yaml": ["slo.tpot_sm", "did you mean 'tpot_ms'"],
    "missing-input-tokens.yaml": ["workload.input_tokens", "required"],
    "missing-hardware.yaml": ["hardware", "required"],
    "negative-input-tokens.yaml": ["workload.input_tokens", "greater than 0"],
    "zero-gpus-per-node.yaml": ["hardware.gpus_per_node", "greater than 0"],
    "zero-max-batch.yaml": ["workload.max_batch_size", "greater than 0"],
    "negative-request-rate.yaml": ["workload.request_rate", "greater than 0"],
    "request-rate-disaggregated.yaml": ["workload.request_rate", "serving.mode disaggregated"],
    "nan-slo.yaml": ["slo.tpot_ms", "nan"],
    "inf-mfu.yaml": ["hardware.mfu", "inf"],
    "huge-float.yaml": ["slo.ttft_ms", "less than or equal"],
    "huge-int.yaml": ["workload.output_tokens", "less than or equal"],
    "huge-cluster.yaml": ["hardware.num_nodes", "limit"],
    "tiny-bandwidth.yaml": ["hardware.intra_node_gb_per_s", "greater than or equal"],
    "tiny-mfu.yaml": ["hardware.mfu", "greater than or equal"],
    "huge-max-gpus.yaml": ["hardware.max_gpus", "less than or equal"],
    "string-for-number.yaml": ["workload.input_tokens", "integer", "lots"],
    "quoted-number.yaml": ["workload.input_tokens", "integer"],
    "bool-for-number.yaml": ["hardware.num_nodes", "integer"],
    "fraction-for-int.yaml": ["workload.max_batch_size", "integer"],
    "date-for-number.yaml": ["workload.input_tokens", "integer"],
    "list-for-number.yaml": ["workload.input_tokens", "integer"],
    "unknown-model.yaml": ["model", "unknown model card", "did you mean 'llama-3.1-8b'"],
    "unknown-gpu.yaml": ["hardware.gpu", "unknown GPU card", "did you mean 'h100-sxm-80gb'"],
    "traversal-model.yaml": ["model", "unknown model card", "llama-3.1-8b"],
    "traversal-gpu.yaml": ["hardware.gpu", "unknown GPU card", "l40s"],
    "absolute-path-model.yaml": ["model", "unknown model card"],
    "dot-model.yaml": ["model", "unknown model card", "did you mean 'llama-3.1-8b'"],
    "long-card-name.yaml": ["model", "unknown model card"],
    "null-model.yaml": ["model"],
    "precision-fp7.yaml": ["precision.weights", "fp7", "bf16"],
    "activations-fp4-on-l40s.yaml": ["precision.activations", "fp4"],
    "both-batch-sizes.yaml": ["workload", "batch_size", "max_batch_size"],
    "static-without-batch-size.yaml": ["workload.batch_size", "static serving", "max_batch_size"],
    "serving-mode-typo.yaml": ["serving.mode", "disaggregated", "auto"],
    "pools-without-disaggregation.yaml": ["serving", "pools", "disaggregated"],
    "pools-zero-link.yaml": ["serving.pools.link_gb_per_s", "greater than or equal"],
    "disaggregated-no-decode.yaml": ["workload.output_tokens", "decode"],
    "both-cluster-modes.yaml": ["hardware", "num_nodes", "max_gpus"],
    "neither-cluster-mode.yaml": ["hardware", "num_nodes", "max_gpus"],
    "objective-zero-weights.yaml": ["objective", "latency_weight"],
    "policy-empty-list.yaml": ["policy", "tp", "empty"],
    "policy-zero-degree.yaml": ["policy", "pp"],
    "hardware-is-list.yaml": ["hardware"],
    "name-too-long.yaml": ["name", "200 characters"],
    "non-string-key.yaml": ["hardware.8", "keys must be strings"],
    "anchors-aliases.yaml": ["line 4", "anchors are not allowed"],
    "billion-laughs.yaml": ["anchors are not allowed"],
    "python-object-tag.yaml": ["python/object/apply"],
    "python-name-tag.yaml": ["python/name"],
    "custom-tag.yaml": ["!card"],
    "binary-tag.yaml": ["binary"],
    "set-tag.yaml": ["set"],
    "merge-key.yaml": ["merge keys"],
    "duplicate-top-key.yaml": ["line 6", "duplicate key 'model'", "first given on line 3"],
    "duplicate-nested-key.yaml": ["duplicate key 'num_nodes'"],
    "two-documents.yaml": ["another document"],
    "tab-indent.yaml": ["invalid YAML"],
    "deep-nesting.yaml": ["nesting deeper than"],
    "control-character-key.yaml": ["unknown key", "\\x1b[2Jwipe"],
    "expert-load-on-dense.yaml": ["workload.expert_load"],
    "malformed.json": ["line 2", "invalid JSON"],
    "duplicate-key.json": ["invalid JSON", "duplicate key 'model'"],
    "nan.json": ["hardware.mfu", "nan"],
    "overflow.json": ["slo.tpot_ms", "inf"],
    "array.json": ["mapping", "list"],
    "typo.json": ["modle", "did you mean 'model'"],
}


def _solve(path: Path, out: Path):
    return CliRunner().invoke(app, ["solve", str(path), "-o", str(out), "--time-limit", "5"])


def assert_rejected(result, path: Path, out: Path | None, expect: list[str] = ()) -> None:
    shown = f"exit {result.exit_code}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    assert result.exit_code == 1, shown
    assert "Traceback" not in result.output, shown
    assert "internal error" not in result.output, shown  # an unexpected exception, caught late
    assert result.stderr.startswith("error: "), shown
    assert path.name in result.stderr, shown
    for text in expect:
        assert text in result.stderr, f"{text!r} not in the message\n{shown}"
    if out is not None:
        assert not out.exists(), f"{out} was written\n{shown}"
        assert not list(out.parent.glob(f".{out.name}*")), f"staging folder left\n{shown}"


def test_every_bad_asset_has_expectations() -> None:
    on_disk = {p.name for p in BAD.iterdir()}
    assert on_disk == set(EXPECTED), on_disk ^ set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_condition_asset(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a stray default output folder (plans/...) would land here
    path = BAD / name
    out = tmp_path / "out"
    assert_rejected(_solve(path, out), path, out, EXPECTED[name])
    assert not (tmp_path / "plans").exists()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_condition_asset_library(name: str) -> None:
    """The library raises InputError (never another exception) naming the file and the key."""
    with pytest.raises(InputError) as info:
        load_condition(BAD / name)
    error = info.value
    assert error.source.endswith(name)
    assert str(error).startswith(str(BAD / name))
    assert EXPECTED[name][0] in str(error)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_condition_is_refused_by_check_too(name: str) -> None:
    path = BAD / name
    result = CliRunner().invoke(app, ["check", str(path), str(GOOD / "plan-tp4-pp2.yaml")])
    assert_rejected(result, path, None, EXPECTED[name][:1])


def test_python_tag_does_not_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.yaml"
    rest = GOOD_CONDITION.read_text(encoding="utf-8").split("\n", 2)[2]  # all but comment, name
    path.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\n{rest}",
                    encoding="utf-8")
    assert_rejected(_solve(path, tmp_path / "out"), path, tmp_path / "out", ["python/object"])
    assert not marker.exists()


def test_error_names_the_closest_keys_for_several_typos(tmp_path: Path) -> None:
    path = tmp_path / "typos.yaml"
    path.write_text("name: t\nmodle: llama-3.1-8b\nhardware: {gpu: l40s, num_node: 1}\n"
                    "workload: {input_token: 1, output_tokens: 1, batch_size: 1}\n",
                    encoding="utf-8")
    result = _solve(path, tmp_path / "out")
    assert_rejected(result, path, tmp_path / "out", [
        "modle", "did you mean 'model'", "hardware.num_node", "did you mean 'num_nodes'",
        "workload.input_token", "did you mean 'input_tokens'"])


def test_thousands_of_errors_are_summarised(tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text("".join(f"unknown_{i}: {i}\n" for i in range(5000)), encoding="utf-8")
    result = _solve(path, tmp_path / "out")
    assert_rejected(result, path, tmp_path / "out", ["more"])
    assert len(result.stderr.splitlines()) < 40


@pytest.mark.parametrize("field, value", [
    ("hbm_tb_per_s", 1e-300), ("intra_node_gb_per_s", 1e-300),
    ("memory_bandwidth_utilization", 1e-300), ("dense_tflops", {"bf16": 1e308})])
def test_inline_gpu_card_extremes(field: str, value: object, tmp_path: Path) -> None:
    gpu = {"name": "g", "memory_gb": 80, "hbm_tb_per_s": 3.35, "dense_tflops": {"bf16": 989}}
    gpu[field] = value
    data = {"model": "llama-3.1-8b", "hardware": {"gpu": gpu, "num_nodes": 1, "gpus_per_node": 2},
            "workload": {"input_tokens": 1024, "output_tokens": 128, "batch_size": 8}}
    path = tmp_path / "inline-gpu.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    out = tmp_path / "out"
    assert_rejected(_solve(path, out), path, out, [f"hardware.gpu.{field}"])


# ------------------------------------------------------------------------------------------------
# inputs that are not plain text files, made on the fly


def _bytes(content: bytes, suffix: str = ".yaml") -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / f"input{suffix}"
        path.write_bytes(content)
        return path
    return make


def _directory(tmp: Path) -> Path:
    path = tmp / "a-directory.yaml"
    path.mkdir()
    return path


def _missing(tmp: Path) -> Path:
    return tmp / "no-such-file.yaml"


def _fifo(tmp: Path) -> Path:
    path = tmp / "a-pipe.yaml"
    os.mkfifo(path)
    return path


def _symlink_loop(tmp: Path) -> Path:
    path = tmp / "loop.yaml"
    path.symlink_to(tmp / "loop.yaml")
    return path


def _dangling_symlink(tmp: Path) -> Path:
    path = tmp / "dangling.yaml"
    path.symlink_to(tmp / "nowhere.yaml")
    return path


def _symlink_to_passwd(tmp: Path) -> Path:
    path = tmp / "passwd.yaml"
    path.symlink_to("/etc/passwd")
    return path


_GOOD_TEXT = GOOD_CONDITION.read_bytes()
_DEEP_FLOW = b"model: " + b"[" * 1000 + b"]" * 1000 + b"\n"
_DEEP_BLOCK = b"".join(b"  " * i + b"k%d:\n" % i for i in range(1000)) + b"  " * 1000 + b"v\n"
_DEEP_MAP = b"a: " + b"{b: " * 1000 + b"1" + b"}" * 1000 + b"\n"
_DEEP_JSON = b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"

GENERATED: dict[str, tuple[Callable[[Path], Path], list[str]]] = {
    "binary-junk": (_bytes(bytes(range(256)) * 8), ["not UTF-8"]),
    "random-bytes": (_bytes(bytes((i * 7919 + 13) % 256 for i in range(4096))), []),
    "latin-1": (_bytes(_GOOD_TEXT.replace(b"tiny-llama8b", "café".encode("latin-1"))),
                ["not UTF-8"]),
    "utf-16": (_bytes(_GOOD_TEXT.decode().encode("utf-16")), ["not UTF-8"]),
    "nul-bytes": (_bytes(_GOOD_TEXT + b"\x00\x00"), ["NUL"]),
    "control-characters": (_bytes(_GOOD_TEXT + b"x: \x07\x1b\n"), ["invalid YAML"]),
    "five-megabytes": (_bytes(b"name: " + b"x" * 5_000_000 + b"\n"), ["bytes", "limit"]),
    "deep-nesting-flow-1000": (_bytes(_DEEP_FLOW), ["nesting deeper than"]),
    "deep-nesting-block-1000": (_bytes(_DEEP_BLOCK), ["nesting deeper than"]),
    "deep-nesting-map-1000": (_bytes(_DEEP_MAP), ["nesting deeper than"]),
    "deep-nesting-json": (_bytes(_DEEP_JSON, ".json"), ["line 1", "nesting deeper than 32"]),
    "wide-list": (_bytes(b"policy: {tp: [" + b",".join([b"1"] * 150_000) + b"]}\n"),
                  ["more than"]),
    "many-keys": (_bytes(b"".join(b"k%d: 1\n" % i for i in range(120_000))), ["more than"]),
    "5000-digit-int": (_bytes(_GOOD_TEXT.replace(b"1024", b"9" * 5000)), ["line 5", "5000 digits"]),
    "5000-digit-json-int": (_bytes(json.dumps(json.loads(json.dumps({"model": 1}))).replace(
        "1", "9" * 5000).encode(), ".json"), ["line 1", "invalid JSON", "5000 digits"]),
    "json-with-yaml-content": (_bytes(_GOOD_TEXT, ".json"), ["invalid JSON"]),
    "only-whitespace": (_bytes(b"   \n\n\t\n"), []),
    "bom-then-junk": (_bytes(b"\xef\xbb\xbf\xff"), ["not UTF-8"]),
    "directory": (_directory, []),  # may be a JSON trio folder: the message says what is missing
    "missing-file": (_missing, ["file not found"]),
    "fifo": (_fifo, ["not a regular file"]),
    "symlink-loop": (_symlink_loop, []),
    "dangling-symlink": (_dangling_symlink, ["file not found"]),
    "symlink-to-etc-passwd": (_symlink_to_passwd, []),
}


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_bad_input(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if name in ("fifo", "symlink-loop", "dangling-symlink", "symlink-to-etc-passwd") and (
            sys.platform == "win32"):
        pytest.skip("POSIX file types")
    if name == "symlink-to-etc-passwd" and not Path("/etc/passwd").is_file():
        pytest.skip("no /etc/passwd")
    monkeypatch.chdir(tmp_path)
    make, expect = GENERATED[name]
    path = make(tmp_path)
    out = tmp_path / "out"
    assert_rejected(_solve(path, out), path, out, expect)
    assert not (tmp_path / "plans").exists()
    with pytest.raises(ParaplanError):
        load_condition(path)


def test_unreadable_file(tmp_path: Path) -> None:
    if sys.platform == "win32" or os.geteuid() == 0:
        pytest.skip("root reads anything; POSIX permissions only")
    path = tmp_path / "secret.yaml"
    path.write_bytes(_GOOD_TEXT)
    path.chmod(0)
    assert_rejected(_solve(path, tmp_path / "out"), path, tmp_path / "out", ["cannot read"])


# ------------------------------------------------------------------------------------------------
# bad plan files for `paraplan check`

BAD_PLAN_EXPECTED: dict[str, list[str]] = {
    "missing-batch-size.yaml": ["batch_size", "required"],
    "typo-degree.yaml": ["tpp", "did you mean 'tp'"],
    "zero-degree.yaml": ["tp", "greater than or equal to 1"],
    "negative-batch.yaml": ["batch_size", "greater than or equal to 1"],
    "string-degree.yaml": ["pp", "integer"],
    "float-degree.yaml": ["tp", "integer"],
    "layers-not-a-list.yaml": ["layers_per_stage", "list"],
    "malformed.yaml": ["invalid YAML"],
    "empty.yaml": ["empty"],
    "list-at-top.yaml": ["mapping"],
    "anchors.yaml": ["anchors are not allowed"],
    "duplicate-degree.yaml": ["duplicate key 'tp'"],
    "nan-batch.yaml": ["batch_size", "nan"],
    "python-tag.yaml": ["python/object"],
    "truncated-plan.json": ["invalid JSON"],
    "plan-missing-fields.json": ["required"],
}


def test_every_bad_plan_asset_has_expectations() -> None:
    on_disk = {p.name for p in BAD_PLANS.iterdir()}
    assert on_disk == set(BAD_PLAN_EXPECTED), on_disk ^ set(BAD_PLAN_EXPECTED)


@pytest.mark.parametrize("name", sorted(BAD_PLAN_EXPECTED))
def test_bad_plan_file(name: str) -> None:
    path = BAD_PLANS / name
    result = CliRunner().invoke(app, ["check", str(LLAMA70B), str(path)])
    assert_rejected(result, path, None, BAD_PLAN_EXPECTED[name])


@pytest.mark.parametrize("make", [_missing, _directory, _bytes(b"\xff\xfe\x00junk")],
                         ids=["missing", "directory", "binary"])
def test_unreadable_plan_file(make: Callable[[Path], Path], tmp_path: Path) -> None:
    path = make(tmp_path)
    result = CliRunner().invoke(app, ["check", str(LLAMA70B), str(path)])
    assert_rejected(result, path, None)


def test_tampered_plan_json(tmp_path: Path) -> None:
    """A real plan.json with a wrong-typed field is an input error, not a crash."""
    out = tmp_path / "out"
    solved = CliRunner().invoke(app, ["solve", str(GOOD_CONDITION), "-o", str(out)])
    assert solved.exit_code == 0, solved.output
    plan = json.loads((out / "plan.json").read_text(encoding="utf-8"))
    plan["parallelism"]["tp"] = "two"
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps(plan), encoding="utf-8")
    result = CliRunner().invoke(app, ["check", str(GOOD_CONDITION), str(path)])
    assert_rejected(result, path, None, ["parallelism.tp"])


def test_bool_degree_in_short_plan(tmp_path: Path) -> None:
    path = tmp_path / "bool.yaml"
    path.write_text("tp: true\nbatch_size: 8\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["check", str(LLAMA70B), str(path)])
    assert_rejected(result, path, None, ["tp"])


def test_absurd_degrees_in_short_plan(tmp_path: Path) -> None:
    path = tmp_path / "absurd.yaml"
    path.write_text("tp: 1000000\ndp: 1000000\nbatch_size: 1\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["check", str(LLAMA70B), str(path)])
    assert result.exit_code == 3
    assert "gpu_count" in result.output


_BIG = "".join(f"k{i}: [{i}, {i + 1}]\n" for i in range(1_500))  # 6,001 values (4 a line), 27 kB
_LIMIT_CASES = {
    "too many values": _BIG + "extra: [1, 2, 3]\n",
    "too deep late in the file": _BIG + "deep: " + "[" * 40 + "]" * 40 + "\n",
    "anchor late in the file": _BIG + "a: &x 1\n",
    "alias late in the file": _BIG + "b: *x\n",
    "malformed late in the file": _BIG + "c: [1, 2\n",
    "within every limit": _BIG,
}


@pytest.mark.parametrize("case", sorted(_LIMIT_CASES))
def test_prescan_refuses_exactly_what_the_full_parser_refuses(
        case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Large YAML is refused by libyaml's event stream before the pure-Python parser runs
    (loading._refuse_before_parsing); the outcome and message are the full parser's own."""
    from solver.inputs import loading

    text = _LIMIT_CASES[case]
    assert len(text) >= loading.PRESCAN_MIN_CHARS
    monkeypatch.setattr(loading, "MAX_YAML_NODES", 6_001)

    def outcome() -> str:
        try:
            return repr(sorted(loading.parse_mapping(text, "big.yaml")))[:80]
        except InputError as exc:
            return str(exc)

    with_prescan = outcome()
    monkeypatch.setattr(loading, "PRESCAN_MIN_CHARS", 10**12)
    assert with_prescan == outcome()
    if case == "within every limit":
        assert with_prescan.startswith("['k0', 'k1'")
    else:
        assert with_prescan.startswith("big.yaml: line ")


@pytest.mark.parametrize("key, card, field", [
    ("gpu", {"name": "g", "memory_gb": -80, "hbm_tb_per_s": 3.35, "dense_tflops": {"bf16": 989}},
     "hardware.gpu.memory_gb: Input should be greater than or equal to"),
    ("model", {"name": "m", "num_hidden_layers": 2, "hidden_size": "x", "num_attention_heads": 8,
               "vocab_size": 100}, "model.hidden_size: Input should be a valid integer"),
])
def test_an_inline_card_with_a_bad_field_gets_the_fields_own_error(key: str, card: dict, field: str,
                                                                   tmp_path: Path) -> None:
    """`gpu: NAME | {card}` is a union: before, the first line was the other branch's
    'Input should be a valid string (got {...})'."""
    data = {"model": "llama-3.1-8b", "hardware": {"gpu": "h100-sxm-80gb", "num_nodes": 1,
                                                  "gpus_per_node": 2},
            "workload": {"input_tokens": 1024, "output_tokens": 128, "batch_size": 8}}
    if key == "gpu":
        data["hardware"]["gpu"] = card
    else:
        data["model"] = card
    path = tmp_path / "inline.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    result = _solve(path, tmp_path / "out")
    assert_rejected(result, path, tmp_path / "out", [field])
    assert "valid string" not in result.stderr
