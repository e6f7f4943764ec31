"""Hugging Face config.json (solver/importers/hf_config.py): maps to the shipped cards; alone it is a
model card, not a condition; a condition may name it; unsupported layer patterns name the key."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from solver.cli import app
from solver.errors import InputError
from solver.importers.registry import import_source, load_any_condition
from solver.inputs.cards import ModelCard
from solver.inputs.condition import load_condition, load_model_card
from solver.inputs.loading import parse_mapping
from solver.physics.architecture import Architecture
from tests.paths import REPO as REPO_ROOT

ROOT = REPO_ROOT
HF = ROOT / "tests" / "hf_configs"
runner = CliRunner()


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


@pytest.mark.parametrize("model", ["./nothere/config.json", "nothere/", "config.json"])
def test_a_missing_config_names_the_condition_file_and_its_model_key(model, tmp_path):
    cond = tmp_path / "c.yaml"
    cond.write_text(f"model: {model}\nhardware: {{gpu: a100-sxm-80gb, num_nodes: 1, gpus_per_node: 4}}\n"
                    "workload: {input_tokens: 1024, output_tokens: 256, max_batch_size: 32}\n")
    result = runner.invoke(app, ["solve", str(cond), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert f"{cond}: model: '{model}': no such file" in result.stderr, result.stderr


def test_a_condition_may_name_the_configs_folder_and_the_model_is_named_by_what_it_is(tmp_path):
    """Before, a folder was 'unknown model card', and a config without a name was named after its
    folder (here 'snapshot-0f3a': a Hugging Face cache hash says nothing)."""
    folder = tmp_path / "snapshot-0f3a"
    folder.mkdir()
    shutil.copy(HF / "mixtral-8x7b" / "config.json", folder / "config.json")
    cond = tmp_path / "c.yaml"
    cond.write_text("model: snapshot-0f3a\nhardware: {gpu: a100-sxm-80gb, num_nodes: 1, gpus_per_node: 4}\n"
                    "workload: {input_tokens: 1024, output_tokens: 256, max_batch_size: 32}\n")
    c = load_any_condition(cond)
    assert c.model.name == "mixtral-46.7b" and c.model.num_experts == 8
