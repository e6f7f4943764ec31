"""Where cards are found (issue 11): --cards folders and PARAPLAN_CARDS before the bundled cards;
unknown cards listed from every location; bad folders and bad user cards named."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from solver.cli import app
from solver.errors import InputError
from solver.importers.registry import import_source
from solver.inputs.card_library import (
    ENV_VAR,
    bundled_folder,
    command_folders,
    find_card,
    known_cards,
    searching,
)
from solver.inputs.condition import load_condition
from tests.paths import REPO as REPO_ROOT

ROOT = REPO_ROOT
CONDITION = ROOT / "conditions" / "llama70b-h100x8.yaml"
TRIO = ROOT / "tests" / "assets" / "seed-formats" / "json-trio"
runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_env_cards(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)


def _gpu_card(name: str, memory_gb: float = 96.0) -> dict[str, object]:
    data = yaml.safe_load((bundled_folder("GPU") / "h100-sxm-80gb.yaml").read_text(encoding="utf-8"))
    return {**data, "name": name, "memory_gb": memory_gb}


def _model_card(name: str) -> dict[str, object]:
    data = yaml.safe_load((bundled_folder("model") / "llama-3.1-8b.yaml").read_text(encoding="utf-8"))
    return {**data, "name": name}


def _write(path: Path, data: dict[str, object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _condition(tmp_path: Path, model: str = "llama-3.1-70b", gpu: str = "h100-sxm-80gb") -> Path:
    text = CONDITION.read_text(encoding="utf-8")
    text = text.replace("model: llama-3.1-70b", f"model: {model}")
    text = text.replace("gpu: h100-sxm-80gb", f"gpu: {gpu}")
    path = tmp_path / "condition.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_bundled_cards_are_found_without_user_folders() -> None:
    assert find_card("model", "llama-3.1-70b") == bundled_folder("model") / "llama-3.1-70b.yaml"
    known = known_cards("GPU")
    assert list(known) == ["bundled"] and "h100-sxm-80gb" in known["bundled"]
    assert len(known_cards("model")["bundled"]) == len(list(bundled_folder("model").glob("*.yaml")))


def test_subfolders_and_flat_files_are_told_apart(tmp_path: Path) -> None:
    cards = tmp_path / "cards"
    _write(cards / "hardware" / "gpu-a.yaml", _gpu_card("gpu-a"))
    _write(cards / "models" / "model-a.yaml", _model_card("model-a"))
    _write(cards / "gpu-b.yaml", _gpu_card("gpu-b"))  # flat: dense_tflops -> GPU
    _write(cards / "model-b.yaml", _model_card("model-b"))  # flat: num_hidden_layers -> model
    (cards / "a-condition.yaml").write_text(CONDITION.read_text(encoding="utf-8"), encoding="utf-8")
    with searching([cards]):
        gpus, models = known_cards("GPU"), known_cards("model")
        label = f"{cards.resolve()} (--cards)"
        assert gpus[label] == ["gpu-a", "gpu-b"] and models[label] == ["model-a", "model-b"]
        assert find_card("GPU", "model-b") is None and find_card("model", "gpu-b") is None
        assert find_card("GPU", "a-condition") is None
        condition = load_condition(_condition(tmp_path, model="model-b", gpu="gpu-a"))
    assert condition.model.name == "model-b" and condition.cluster.gpu.memory_gb == 96.0


def test_user_card_shadows_the_bundled_one_and_order_is_kept(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    _write(first / "hardware" / "h100-sxm-80gb.yaml", _gpu_card("h100-sxm-80gb", memory_gb=40.0))
    _write(second / "hardware" / "h100-sxm-80gb.yaml", _gpu_card("h100-sxm-80gb", memory_gb=50.0))
    with searching([first, second]):
        assert load_condition(_condition(tmp_path)).cluster.gpu.memory_gb == 40.0
    with searching([second, first]):
        assert load_condition(_condition(tmp_path)).cluster.gpu.memory_gb == 50.0
    assert load_condition(_condition(tmp_path)).cluster.gpu.memory_gb == 80.0  # context left


def test_environment_folders_come_after_cards_options(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    option, env_a, env_b = tmp_path / "option", tmp_path / "env-a", tmp_path / "env-b"
    _write(env_a / "gpu-x.yaml", _gpu_card("gpu-x", memory_gb=11.0))
    _write(env_b / "gpu-x.yaml", _gpu_card("gpu-x", memory_gb=22.0))
    _write(env_b / "gpu-y.yaml", _gpu_card("gpu-y", memory_gb=33.0))
    _write(option / "gpu-y.yaml", _gpu_card("gpu-y", memory_gb=44.0))
    monkeypatch.setenv(ENV_VAR, os.pathsep.join([str(env_a), "", str(env_b)]))
    with searching([option]):
        assert command_folders() == (str(option.resolve()), str(env_a.resolve()),
                                     str(env_b.resolve()))
        assert load_condition(_condition(tmp_path, gpu="gpu-x")).cluster.gpu.memory_gb == 11.0
        assert load_condition(_condition(tmp_path, gpu="gpu-y")).cluster.gpu.memory_gb == 44.0


def test_unknown_card_lists_every_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    option, env = tmp_path / "option", tmp_path / "env"
    _write(option / "hardware" / "my-gpu.yaml", _gpu_card("my-gpu"))
    _write(env / "their-gpu.yaml", _gpu_card("their-gpu"))
    monkeypatch.setenv(ENV_VAR, str(env))
    result = runner.invoke(app, ["solve", str(_condition(tmp_path, gpu="h100-sxm-800gb")),
                                 "--cards", str(option)])
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert "hardware.gpu: unknown GPU card 'h100-sxm-800gb' (did you mean 'h100-sxm-80gb'?)" in message
    assert f"{option.resolve()} (--cards): my-gpu" in message
    assert f"{env.resolve()} ({ENV_VAR}): their-gpu" in message
    assert "bundled: a100-sxm-80gb," in message and "mi300x" in message


@pytest.mark.parametrize("where", ["option", "environment"])
def test_missing_or_non_folder_card_locations_are_input_errors(
        where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    not_a_folder = tmp_path / "file.yaml"
    not_a_folder.write_text("x: 1\n", encoding="utf-8")
    for bad, reason in ((tmp_path / "nowhere", "no such folder"), (not_a_folder, "not a folder")):
        args = ["solve", str(_condition(tmp_path))]
        if where == "option":
            args += ["--cards", str(bad)]
        else:
            monkeypatch.setenv(ENV_VAR, str(bad))
        result = runner.invoke(app, args)
        assert result.exit_code == 1, result.output
        name = "--cards" if where == "option" else ENV_VAR
        assert f"error: {name}: {bad}: {reason}" in result.output
        assert not (tmp_path / "plans").exists()


def test_invalid_user_card_names_its_file_and_key(tmp_path: Path) -> None:
    cards = tmp_path / "cards"
    broken = {**_gpu_card("my-gpu"), "memory_gb": -1}
    path = _write(cards / "my-gpu.yaml", broken)
    with searching([cards]), pytest.raises(InputError) as info:
        load_condition(_condition(tmp_path, gpu="my-gpu"))
    assert str(info.value).startswith(f"{path}: memory_gb:")
    typo = {k: v for k, v in _gpu_card("typo-gpu").items() if k != "dense_tflops"}
    typo["dense_tflop"] = {"bf16": 900}
    path = _write(cards / "typo-gpu.yaml", typo)  # no marker key: read as the kind asked for
    with searching([cards]), pytest.raises(InputError) as info:
        load_condition(_condition(tmp_path, gpu="typo-gpu"))
    assert str(info.value).startswith(f"{path}: ") and "dense_tflop" in str(info.value)


def test_cli_solve_check_and_import_use_cards_folders(tmp_path: Path) -> None:
    cards = tmp_path / "cards"
    _write(cards / "hardware" / "h100-nvl-94gb.yaml", _gpu_card("h100-nvl-94gb", memory_gb=94.0))
    condition = _condition(tmp_path, gpu="h100-nvl-94gb")
    out = tmp_path / "plan"
    solved = runner.invoke(app, ["solve", str(condition), "--cards", str(cards), "-o", str(out)])
    assert solved.exit_code == 0, solved.output
    assert '"gpu": "h100-nvl-94gb"' in (out / "plan.json").read_text(encoding="utf-8")
    checked = runner.invoke(app, ["check", str(condition), str(out / "plan.json"), "--no-regret",
                                  "--cards", str(cards)])
    assert checked.exit_code == 0, checked.output
    assert runner.invoke(app, ["check", str(condition), str(out / "plan.json"),
                               "--no-regret"]).exit_code == 1  # without the folder: unknown card
    trio = tmp_path / "trio"
    trio.mkdir()
    for source in TRIO.iterdir():
        text = source.read_text(encoding="utf-8")
        text = text.replace('"NVIDIA_H100"', '"h100-nvl-94gb"')
        (trio / source.name).write_text(text.replace('"gpu_memory_gb": 80', '"gpu_memory_gb": 94'),
                                        encoding="utf-8")
    assert "h100-nvl-94gb" in (trio / "hardware_env.json").read_text(encoding="utf-8")
    with searching([cards]):
        imported = import_source(trio)
    assert imported.data["hardware"]["gpu"] == "h100-nvl-94gb"  # an exact card name wins
    printed = runner.invoke(app, ["import", str(trio), "--cards", str(cards)])
    assert printed.exit_code == 0 and 'gpu: "h100-nvl-94gb"' in printed.output


def test_batch_workers_search_the_drivers_cards_folders(tmp_path: Path) -> None:
    cards = tmp_path / "cards"
    _write(cards / "my-gpu.yaml", _gpu_card("my-gpu", memory_gb=88.0))
    conditions = tmp_path / "conditions"
    conditions.mkdir()
    for i in range(2):  # two conditions and --jobs 2: solved in worker processes
        text = _condition(tmp_path, gpu="my-gpu").read_text(encoding="utf-8")
        (conditions / f"c{i}.yaml").write_text(text.replace("name: ", f"name: c{i}-"),
                                               encoding="utf-8")
    out = tmp_path / "runs"
    result = runner.invoke(app, ["batch", str(conditions), "-o", str(out), "--jobs", "2",
                                 "--cards", str(cards)])
    assert result.exit_code == 0, result.output
    summary = (out / "summary.csv").read_text(encoding="utf-8")
    assert summary.count("optimal") == 2, summary
