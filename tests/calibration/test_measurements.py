"""measured.csv rows mapped onto cards, precision, load and canonical units; skipped rows and the split."""

from __future__ import annotations

import pytest

from solver.calibration.measurements import load_measured
from tests.calibration.sample import SAMPLE, row_at


def test_max_load_row_maps_to_cards_and_canonical_units(sample) -> None:
    rows, _ = sample
    r = row_at(rows, 0)  # Llama-3.1-8B, H200 SXM 141GB, TP1, FP8, 128/128, max-load, 29526.04 tok/s
    assert (r.model_card, r.gpu_card, r.precision, r.tp, r.isl, r.osl) == (
        "llama-3.1-8b", "h200-sxm-141gb", "fp8", 1, 128, 128)
    assert (r.load, r.metric, r.measured) == ("max", "throughput", 29526.04)
    assert r.software == "TensorRT-LLM v0.17" and not r.legacy
    assert row_at(rows, 2).gpu_card == "gh200"  # "GH200 (source label GH200 480GB)", not H200
    assert row_at(rows, 4).precision == "fp16"  # A100 rows are FP16


def test_per_gpu_throughput_is_multiplied_by_the_tp_group(sample) -> None:
    rows, _ = sample
    r = row_at(rows, 43)  # Llama-2-70B H100 TP2 FP8 static batch 1024: 2657 tok/s per GPU
    assert (r.model_card, r.load, r.load_value, r.metric) == (
        "llama-2-70b", "static", 1024, "throughput")
    assert r.measured == pytest.approx(2 * 2657)
    assert r.legacy and r.software == "TensorRT-LLM v0.6.1"


def test_latency_rows_map_to_their_load(sample) -> None:
    rows, _ = sample
    nim = row_at(rows, 35)  # NIM Llama-3.3-70B on 2 x H100, concurrency 1, TTFT 406.77 ms
    assert (nim.model_card, nim.gpu_card, nim.tp, nim.load, nim.load_value) == (
        "llama-3.1-70b", "h100-sxm-80gb", 2, "closed", 1)
    assert (nim.metric, nim.measured) == ("ttft", pytest.approx(0.40677))
    qps8 = row_at(rows, 21)  # QPS=8 with "Achieved request throughput 7 req/s", ITL 9 ms
    assert (qps8.load, qps8.load_value, qps8.metric) == ("open", 7.0, "itl")
    assert qps8.measured == pytest.approx(0.009)
    burst = row_at(rows, 32)  # QPS=INF: all 500 requests at once; "H200 131GB HBM3" label
    assert (burst.load, burst.requests, burst.gpu_card) == ("burst", 500, "h200-sxm-141gb")
    ttft = row_at(rows, 44)  # Llama-2-7B, 1 output token, batch 1: pure prefill
    assert (ttft.model_card, ttft.load, ttft.load_value, ttft.osl, ttft.metric) == (
        "llama-2-7b", "static", 1, 1, "ttft")


def test_unusable_rows_say_why(sample) -> None:
    _, skipped = sample
    reasons = {s.index: s.reason for s in skipped}
    assert "GPT-J" in reasons[41] and "Falcon" in reasons[42]
    assert "not stated" in reasons[46]  # "max TP/PP/DP config (not specified)"
    assert "per-GPU vs per-TP-group" in reasons[47]  # A100 table, TP4, unit not stated
    assert "offered load" in reasons[14]  # output throughput at QPS=2
    assert "input+output" in reasons[15]  # total_token_throughput
    assert set(reasons) == {14, 15, 18, 19, 22, 23, 27, 30, 31, 41, 42, 46, 47}


def test_split_is_deterministic_and_keeps_a_run_together(sample) -> None:
    rows, _ = sample
    again, _ = load_measured(SAMPLE)
    assert [r.split for r in rows] == [r.split for r in again]
    by_point: dict[str, set[str]] = {}
    for r in rows:
        by_point.setdefault(r.point, set()).add(r.split)
    assert all(len(s) == 1 for s in by_point.values())
    assert row_at(rows, 12).point == row_at(rows, 13).point  # TTFT and ITL of one QPS=2 run
