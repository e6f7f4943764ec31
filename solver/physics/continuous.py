"""Continuous batching with chunked prefill, as vLLM, SGLang and TensorRT-LLM run it.

A replica holds at most C sequences (max-num-seqs); every engine step runs each decoding sequence
for one token plus prompt chunks up to a budget of T tokens (max-num-batched-tokens). With pp
pipeline stages, m = min(pp, C) micro-batches (virtual engines) take turns. In steady state at
utilization u, N = u C sequences are active; per micro-batch (I input, O output tokens):

    k  = ceil(I / (T - D))       steps a prompt takes (the budget left by the decodes)
    L  = k + O - 1               steps a request holds its slot (its first token ends its prefill)
    D  = (N / m) (O - 1) / L     decoding sequences per step
    P  = (N / m) I / L           prompt tokens per step, on average
    mix step                     D decodes + P prompt tokens (the average step)
    chunk step                   D decodes + min(T - D, max(P, I)) prompt tokens (a step that
                                 carries a given request's prompt chunk)
    f  = P / chunk tokens        share of steps that carry prompt tokens

and the metrics, in rounds R_x = max(S_x, m M_x) of those steps (physics/serving.py):

    TTFT_q  = k R_chunk + (r_q + W_q) R_mix        own prefill; the next step; a free slot
    ITL_q   = R_chunk if f >= 1 - q else R_mix     (mean: R_mix)
    e2e     = TTFT_mean + (O - 1) R_mix
    throughput per replica = N O / (L R_mix)       (input tokens when O = 1: N I / (L R_mix))

r_q and W_q: physics/queueing.py, for requests arriving at random (the planner's case). A closed
loop of N users (every slot busy, u = 1) waits W = (N - C) L rounds / C instead; a burst of R
requests at once (u = 1, or less when the budget cannot feed every slot) runs full steps (the chunk
step carries T - D prompt tokens) and waits for the prompts ahead of it, j I / (T - D) chunk
steps, and beyond C for a slot. A steady state exists only when the budget feeds the active
sequences (D + P <= T); `feasible` says where.

Disaggregated serving (physics/disaggregation.py) runs the same steps split over two instances:
a prefill instance is this model with O = 1 (no decodes: every step carries prompt chunks); a
decode instance (`decode_point`) runs only the decode step of its N = u C sequences, which hold a
slot for O - 1 steps (the first token comes from the prefill instance):

    TPOT    = R_decode                                   (every step is the same)
    admit_q = (r_q + W_q) R_decode                       (a transferred request waits for a slot)
    throughput per instance = N O / ((O - 1) R_decode)   (output tokens, the first one included)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solver.physics.numeric import Num, is_array, vmax, vmin
from solver.physics.queueing import (
    BURST,
    CLOSED,
    POISSON,
    Arrivals,
    burst_backlog_steps,
    burst_slot_wait_rounds,
    closed_wait_rounds,
    slot_wait_rounds,
    step_wait_rounds,
)
from solver.physics.serving import LinearForm, ServingPoint, StepMix, round_trip

CONTINUOUS = "continuous"
DECODE_ONLY = "decode-only"
# The grid the planner chooses the operating utilization from (mean active / max-num-seqs).
UTILIZATION_GRID = (0.1, 0.25, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99)
CHUNK_TOKENS_GRID = (2048, 4096, 8192, 16384)  # max-num-batched-tokens (8192: the engines' default)


@dataclass(frozen=True)
class ContinuousLoad:
    """max-num-seqs, the utilization of its slots and max-num-batched-tokens (arrays on a grid),
    and how requests arrive (physics/queueing.py; the planner: at random)."""

    slots: Num
    utilization: Num
    chunk_tokens: Num
    arrivals: Arrivals = Arrivals()


@dataclass(frozen=True)
class SteadyState:
    """Continuous batching in steady state, per micro-batch (numbers may be arrays)."""

    microbatches: Num
    budget: Num  # T: tokens of one step (max-num-batched-tokens)
    prefill_steps: Num  # k
    steps_per_request: Num  # L
    decode_seqs: Num  # D
    prefill_tokens: Num  # P
    chunk_tokens: Num  # prompt tokens of a step that carries a request's chunk
    feasible: Num  # the budget feeds the active sequences

    @property
    def prefill_step_share(self) -> Num:
        return vmin(1.0, self.prefill_tokens / vmax(self.chunk_tokens, 1.0))  # decode-only: 0


def _ceil(value: Num) -> Num:
    return np.ceil(value) if is_array(value) else float(np.ceil(value))


def steady_state(load: ContinuousLoad, pp: Num, input_tokens: int, output_tokens: int) -> SteadyState:
    """The steady state of `load` on a replica with `pp` stages."""
    i, o, t = input_tokens, output_tokens, load.chunk_tokens
    m = vmax(1, vmin(pp, load.slots))
    active = load.utilization * load.slots / m
    k = _ceil(i / (t * 1.0))
    for _ in range(8):  # k depends on the budget the decodes leave, which depends on k (monotone)
        decode = active * (o - 1) / (k + o - 1)
        room = t - decode
        again = _ceil(i / vmax(room, 1e-9))
        k = vmax(k, again)
    steps = k + o - 1
    decode = active * (o - 1) / steps
    prefill = active * i / steps
    room = t - decode
    feasible = (room > 0) & (decode + prefill <= t * (1 + 1e-12)) if is_array(room) else (
        room > 0 and decode + prefill <= t * (1 + 1e-12))
    chunk = vmax(room, 1.0)  # the prompt tokens a step can take: a burst's backlog fills them
    if load.arrivals.kind != BURST:  # else a step carries the average prompt load, or one chunk
        chunk = vmin(chunk, vmax(prefill, float(i)))
    return SteadyState(m, t, k, steps, decode, prefill, chunk, feasible)


def _mixes(state: SteadyState, input_tokens: int, output_tokens: int) -> dict[str, StepMix]:
    context = input_tokens + output_tokens / 2
    per_prompt = input_tokens / state.prefill_steps  # a prompt's tokens in one of its steps
    return {
        "mix": StepMix(state.decode_seqs, context, state.prefill_tokens,
                       state.prefill_tokens / per_prompt, input_tokens, state.prefill_steps),
        "chunk": StepMix(state.decode_seqs, context, state.chunk_tokens,
                         vmax(1.0, state.chunk_tokens / per_prompt), input_tokens, state.prefill_steps),
    }


def _waits(load: ContinuousLoad, state: SteadyState, input_tokens: int, q: str,
           service_cv2: float) -> tuple[Num, Num]:
    """A request's wait before its own prefill: (chunk steps, rounds of the mix step)."""
    arrivals, steps = load.arrivals, state.steps_per_request
    if arrivals.kind == POISSON:
        return 0.0, step_wait_rounds(q) + slot_wait_rounds(load.slots, load.utilization, steps, q,
                                                           service_cv2)
    if arrivals.kind == CLOSED:
        return 0.0, step_wait_rounds(q) + closed_wait_rounds(arrivals.count, load.slots, steps)
    backlog = burst_backlog_steps(arrivals.count, input_tokens, state.chunk_tokens, q)
    return backlog, step_wait_rounds(q) + burst_slot_wait_rounds(arrivals.count, load.slots, steps, q)


def continuous_point(load: ContinuousLoad, pp: Num, input_tokens: int, output_tokens: int,
                     percentile: str = "mean", service_cv2: float = 0.0) -> ServingPoint:
    """The operating point of `load`: its steps and metrics as forms (coefficients may be arrays)."""
    state = steady_state(load, pp, input_tokens, output_tokens)
    k, steps = state.prefill_steps, state.steps_per_request

    def ttft(q: str) -> LinearForm:
        chunk_steps, mix_rounds = _waits(load, state, input_tokens, q, service_cv2)
        return round_trip("chunk").scaled(k + chunk_steps) + round_trip("mix").scaled(mix_rounds)

    share = state.prefill_step_share
    q = {"mean": None, "p50": 0.5, "p90": 0.9, "p99": 0.99}[percentile]
    on_chunk = 0.0 if q is None else (share >= 1 - q) * 1.0
    decodes = 0.0 if output_tokens <= 1 else 1.0
    tpot = round_trip("chunk").scaled(decodes * on_chunk) + round_trip("mix").scaled(
        decodes * (1 - on_chunk))
    ttft_mean = ttft("mean")
    scored = input_tokens if output_tokens <= 1 else output_tokens
    active = load.utilization * load.slots
    return ServingPoint(
        mode=CONTINUOUS, sequences=load.slots, microbatches=state.microbatches,
        sequences_per_microbatch=load.slots / state.microbatches, input_tokens=input_tokens,
        output_tokens=output_tokens,
        mixes=_mixes(state, input_tokens, output_tokens),
        ttft=ttft(percentile), tpot=tpot, e2e=ttft_mean + round_trip("mix").scaled(output_tokens - 1),
        dp_step="chunk", scan_step="mix", roles={"prefill": "chunk", "decode": "mix"},
        ttft_mean=ttft_mean, tpot_mean=round_trip("mix").scaled(decodes),
        seconds_per_token=round_trip("mix").scaled(steps / (active * scored)),
        active_sequences=active, state=state,
    )


@dataclass(frozen=True)
class DecodeLoad:
    """A decode-only instance (disaggregated serving): max-num-seqs and the utilization of its
    slots; no prompt chunks, so its step budget is its decodes."""

    slots: Num
    utilization: Num


def decode_state(load: DecodeLoad, pp: Num, output_tokens: int) -> SteadyState:
    """A decode instance in steady state: N / m decodes per step, each request O - 1 steps."""
    m = vmax(1, vmin(pp, load.slots))
    active = load.utilization * load.slots / m
    steps = max(output_tokens - 1, 1)
    return SteadyState(m, load.slots / m, 0, steps, active, 0.0 * active, 0.0 * active,
                       True if not is_array(active) else np.ones_like(active, dtype=bool))


def decode_point(load: DecodeLoad, pp: Num, input_tokens: int, output_tokens: int,
                 percentile: str = "mean", service_cv2: float = 0.0) -> ServingPoint:
    """A decode-only instance's operating point; its `ttft` is the admission wait it adds to a
    request's TTFT (the prefill pool adds the rest: physics/disaggregation.py)."""
    state = decode_state(load, pp, output_tokens)
    steps = state.steps_per_request
    mix = StepMix(state.decode_seqs, input_tokens + output_tokens / 2, 0.0 * state.decode_seqs,
                  0.0 * state.decode_seqs, input_tokens)

    def admit(q: str) -> LinearForm:
        wait = step_wait_rounds(q) + slot_wait_rounds(load.slots, load.utilization, steps, q, service_cv2)
        return round_trip("decode").scaled(wait)

    tpot = round_trip("decode")
    active = load.utilization * load.slots
    return ServingPoint(
        mode=DECODE_ONLY, sequences=load.slots, microbatches=state.microbatches,
        sequences_per_microbatch=load.slots / state.microbatches, input_tokens=input_tokens,
        output_tokens=output_tokens, mixes={"decode": mix}, ttft=admit(percentile), tpot=tpot,
        e2e=admit("mean") + tpot.scaled(output_tokens - 1), dp_step="decode", scan_step="decode",
        roles={"prefill": "decode", "decode": "decode"}, ttft_mean=admit("mean"), tpot_mean=tpot,
        seconds_per_token=tpot.scaled(steps / (active * output_tokens)), active_sequences=active,
        state=state,
    )
