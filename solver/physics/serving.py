"""How an engine schedules work, and the serving metrics as linear forms of pipeline stage times.

A replica runs steps (a forward pass of one micro-batch); the cost model prices every step kind per
pipeline stage. The metrics are functions of two aggregates per step kind over the stages: the sum
S of the stage times and the slowest stage M. With m micro-batches in flight:

    fill(x)  = S_x + (m - 1) * M_x      the last of m micro-batches leaves the pipeline
    round(x) = max(S_x, m * M_x)        a micro-batch comes back to the first stage

Static batching (a fixed batch B, m = min(pp, B) micro-batches; docs/design.md, "Serving model"):

    TTFT = fill(prefill)                 (the last micro-batch's first token)
    TPOT = round(decode)                 (one token per sequence per round)
    e2e  = TTFT + output_tokens * TPOT
    throughput = B * output_tokens / e2e per replica

Every metric is a `LinearForm` over the aggregates, defined once here and used by the float
evaluator (physics/evaluate.py), the integer tables, the CP-SAT model, the exhaustive oracle and
the verifier.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from solver.physics.numeric import Num, ceil_div, vmax, vmin

SUM, MAX, ROUND = "sum", "max", "round"
STATIC = "static"


@dataclass(frozen=True)
class StepMix:
    """What one forward pass of one micro-batch holds, summed over the replica's attention groups.

    decode_seqs sequences generate one token each, attending to decode_context keys; prefill_tokens
    prompt tokens of prefill_seqs prompts (each prompt_tokens long, processed in prefill_chunks
    chunks, so a chunk also reads the KV cache of the prompt's earlier chunks).
    whole_sequences: sequences go to attention-DP groups as whole sequences (a static batch);
    otherwise the counts are steady-state averages and split evenly. Numbers may be arrays.
    """

    decode_seqs: Num
    decode_context: Num
    prefill_tokens: Num
    prefill_seqs: Num
    prompt_tokens: int
    prefill_chunks: Num = 1
    whole_sequences: bool = False
    decode_positions: Num = 1  # query positions per decoding sequence (speculative: drafts + 1)

    @property
    def decode_tokens(self) -> Num:
        """Query tokens of the decoding sequences (their KV is read once per sequence)."""
        return self.decode_seqs * self.decode_positions


def static_prefill(sequences: Num, input_tokens: int) -> StepMix:
    """All prompts of a static micro-batch prefilled in one pass."""
    return StepMix(0.0, 0.0, sequences * input_tokens * 1.0, sequences * 1.0, input_tokens,
                   whole_sequences=True)


def static_decode(sequences: Num, input_tokens: int, output_tokens: int,
                  positions: int = 1) -> StepMix:
    """One decode step of a static micro-batch at the mean context (prompt + half the output);
    `positions` query positions per sequence (speculative decoding verifies drafts + 1)."""
    return StepMix(sequences * 1.0, input_tokens + output_tokens / 2, 0.0, 0.0, input_tokens,
                   whole_sequences=True, decode_positions=positions)


@dataclass(frozen=True)
class StaticLoad:
    """A fixed batch of sequences per replica (numbers may be arrays: one per candidate)."""

    batch: Num


@dataclass(frozen=True)
class LinearForm:
    """sum of coefficient * aggregate, in seconds; terms keep the order they were written in.

    A term is (step kind, aggregate, coefficient) with aggregate "sum" (S), "max" (M) or "round"
    (max(S, m M)). Coefficients are never negative, so a form is monotone in every aggregate.
    """

    terms: tuple[tuple[str, str, float], ...] = ()

    def __add__(self, other: LinearForm) -> LinearForm:
        merged: dict[tuple[str, str], float] = {}
        for step, which, coefficient in self.terms + other.terms:
            merged[(step, which)] = merged.get((step, which), 0) + coefficient
        return LinearForm(tuple((s, w, c) for (s, w), c in merged.items()))

    def coefficient(self, step: str, which: str) -> Any:
        """The coefficient of one aggregate (0 when the form does not use it)."""
        return sum((c for s, w, c in self.terms if (s, w) == (step, which)), 0.0)

    def scaled(self, factor: float) -> LinearForm:
        return LinearForm(tuple((s, w, c * factor) for s, w, c in self.terms))

    def value(self, aggregates: PipelineAggregates) -> float:
        total = 0.0
        for step, which, coefficient in self.terms:
            total += coefficient * aggregates.get(step, which)
        return total


def fill(step: str, microbatches: int) -> LinearForm:
    return LinearForm(((step, SUM, 1), (step, MAX, microbatches - 1)))


def round_trip(step: str) -> LinearForm:
    return LinearForm(((step, ROUND, 1),))


@dataclass(frozen=True)
class PipelineAggregates:
    """S and M of every step kind over the stages of one pipeline (m micro-batches in flight)."""

    microbatches: int
    sums: dict[str, float]
    maxima: dict[str, float]

    @classmethod
    def of(cls, microbatches: int, stage_times: dict[str, list[float]]) -> PipelineAggregates:
        return cls(microbatches, {k: sum(v) for k, v in stage_times.items()},
                   {k: max(v) for k, v in stage_times.items()})

    def get(self, step: str, which: str) -> float:
        if which == SUM:
            return self.sums[step]
        if which == MAX:
            return self.maxima[step]
        return max(self.sums[step], self.microbatches * self.maxima[step])


@dataclass(frozen=True)
class ServingPoint:
    """One replica's operating point: its step kinds (in pricing order) and metrics as forms.

    `dp_step` and `scan_step` tell the exhaustive oracle which step's slowest stage it minimizes by
    dynamic programming and which one it scans by threshold (docs/design.md, "Exhaustive oracle").
    """

    mode: str
    sequences: Num  # concurrent sequences per replica (plan.json's batch_size)
    microbatches: Num
    sequences_per_microbatch: Num
    input_tokens: int
    output_tokens: int
    mixes: dict[str, StepMix]  # the step kinds, in pricing order
    ttft: LinearForm
    tpot: LinearForm
    e2e: LinearForm
    dp_step: str
    scan_step: str
    roles: dict[str, str]  # prefill | decode -> the step plan.json reports under that name
    ttft_mean: LinearForm = LinearForm()  # the means (the SLO forms above are at the percentile)
    tpot_mean: LinearForm = LinearForm()
    seconds_per_token: LinearForm | None = None  # per replica and scored token (None: e2e / B)
    active_sequences: Num = None  # mean active sequences per replica (None: the batch)
    state: Any = None  # continuous batching's steady state

    @property
    def steps(self) -> tuple[str, ...]:
        return tuple(self.mixes)

    @property
    def scored_tokens(self) -> int:
        """Tokens a request counts for throughput: its output, or its input when it has no
        decode (a prefill-only workload, output_tokens = 1)."""
        return self.input_tokens if self.output_tokens <= 1 else self.output_tokens

    def throughput(self, aggregates: PipelineAggregates, replicas: Num) -> float:
        """Scored tokens per second of `replicas` replicas."""
        if self.seconds_per_token is None:  # a static batch: B requests per e2e
            return replicas * self.sequences * self.scored_tokens / self.e2e.value(aggregates)
        return replicas / self.seconds_per_token.value(aggregates)

    def seconds_per_token_form(self) -> LinearForm:
        """Seconds per scored token of one replica, linear in the stage aggregates."""
        if self.seconds_per_token is not None:
            return self.seconds_per_token
        return self.e2e.scaled(1 / (self.sequences * self.scored_tokens))


def static_point(batch: Num, pp: Num, input_tokens: int, output_tokens: int,
                 tokens_per_step: float = 1.0, positions: int = 1) -> ServingPoint:
    """A static batch of `batch` sequences in min(pp, batch) micro-batches of ceil(batch / m);
    each decode round yields `tokens_per_step` tokens per sequence (speculative decoding)."""
    m = vmax(1, vmin(pp, batch))
    per_mb = ceil_div(batch, m)
    ttft = fill("prefill", m)
    tpot = round_trip("decode")
    if tokens_per_step != 1:  # fractional coefficients: priced like continuous batching's forms
        tpot = tpot.scaled(1 / tokens_per_step)
    mixes = {"prefill": static_prefill(per_mb, input_tokens),
             "decode": static_decode(per_mb, input_tokens, output_tokens, positions)}
    e2e = ttft + tpot.scaled(output_tokens)
    scored = input_tokens if output_tokens <= 1 else output_tokens
    per_token = None if tokens_per_step == 1 else e2e.scaled(1 / (batch * scored))
    return ServingPoint(STATIC, batch, m, per_mb, input_tokens, output_tokens, mixes, ttft, tpot,
                        e2e, dp_step="prefill", scan_step="decode",
                        roles={"prefill": "prefill", "decode": "decode"}, ttft_mean=ttft, tpot_mean=tpot,
                        seconds_per_token=per_token)
