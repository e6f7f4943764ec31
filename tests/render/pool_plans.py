"""Disaggregated plans the launch-file tests share: DeepSeek's published units on 176 H800 and a
small dense plan (Llama-3.1-8B on 2 x 2 L40S)."""

from __future__ import annotations

from solver.inputs.condition import Condition, build_condition, load_condition
from solver.review.check import check_given, load_plan_file
from solver.review.check_pools import PoolsShortPlan
from tests.paths import REPO

PUBLISHED = REPO / "conditions" / "published"
DEEPSEEK_176 = "deepseek-v3-disagg-h800x176"


def deepseek_condition() -> Condition:
    return load_condition(PUBLISHED / f"{DEEPSEEK_176}.yaml")


def deepseek(condition: Condition | None = None):  # noqa: ANN201 - (Condition, Plan)
    """DeepSeek's published prefill and decode units as one plan (on `condition` if given)."""
    condition = condition if condition is not None else deepseek_condition()
    return condition, check_given(condition, load_plan_file(PUBLISHED / f"{DEEPSEEK_176}.plan.yaml")).plan


def dense_condition() -> Condition:
    return build_condition({
        "model": "llama-3.1-8b", "hardware": {"gpu": "l40s", "num_nodes": 2, "gpus_per_node": 2},
        "workload": {"input_tokens": 1024, "output_tokens": 128},
        "serving": {"mode": "disaggregated"}}, "c.yaml", "c")


def dense():  # noqa: ANN201 - (Condition, Plan)
    """Llama-3.1-8B on 2 x 2 L40S: two TP1 prefill instances, one TP2 decode instance."""
    condition = dense_condition()
    short = PoolsShortPlan.model_validate({"prefill": {"tp": 1, "instances": 2, "batch_size": 16},
                                           "decode": {"tp": 2, "instances": 1, "batch_size": 384}})
    return condition, check_given(condition, short).plan


PLANS = {"deepseek-v3 published, 176 x H800": deepseek, "llama-3.1-8b, 4 x L40S": dense}
