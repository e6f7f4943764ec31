"""Waiting for a slot: requests arriving at random into a replica's max-num-seqs slots.

A continuous-batching replica holds at most C sequences (its slots); a request holds a slot for
the L engine steps of its prefill and decode. With Poisson arrivals the replica is an M/G/C queue
whose offered load is the mean number of active sequences a = u C. Erlang C gives the chance an
arrival finds every slot busy; the wait is then exponential with rate (C - a) / S, S the mean time
a request holds its slot (M/M/C), scaled by the Allen-Cunneen factor (1 + cv^2) / 2 for the
variability of that time (cv = 0: every request has the condition's prompt and output lengths).

    P(W > w) = ErlangC(C, a) exp(-(C - a) w / S)
    mean W   = ErlangC(C, a) S / (C - a) * (1 + cv^2) / 2
    W_q      = ln(ErlangC / (1 - q)) S / (C - a) * (1 + cv^2) / 2     (0 when ErlangC <= 1 - q)

Waits are returned in units of S / L (one round of the average step), so they multiply a stage-
time aggregate linearly (physics/serving.py).

Two other arrival processes describe how benchmarks load an engine (`Arrivals`):

    closed loop, N users    each user sends its next request when its last one ends (no think
                            time): every slot is busy once N >= C, and Little's law on the loop
                            (N = X (W + S), X = C / S) gives W = (N - C) S / C; no wait when N <= C
    burst of R requests     all arrive at once: the prompts are prefilled in arrival order at the
                            room the decodes leave in each step (T - D tokens), so the request at
                            position j waits for j I / (T - D) full steps (mean j = (R - 1) / 2);
                            beyond C requests each also waits for a slot, (j - C) S / C
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from solver.physics.numeric import Num, distinct, is_array

PERCENTILES: dict[str, float | None] = {"mean": None, "p50": 0.5, "p90": 0.9, "p99": 0.99}
POISSON, CLOSED, BURST = "poisson", "closed", "burst"


@dataclass(frozen=True)
class Arrivals:
    """How requests reach a replica: `poisson` (at random times; the load's utilization is the
    offered load), `closed` (`count` users with no think time) or `burst` (`count` requests at
    once). The planner serves Poisson arrivals; calibration also meets the other two."""

    kind: str = POISSON
    count: int = 0


def _position(percentile: str) -> float:
    """A uniform position in [0, 1] (a phase within a step, a place in a burst): the mean, 1/2, or
    the q-quantile, q."""
    q = PERCENTILES[percentile]
    return 0.5 if q is None else q


@lru_cache(maxsize=65536)
def erlang_c(servers: int, offered_load: float) -> float:
    """Probability that an arrival waits in an M/M/c queue with `servers` and offered load a.

    Erlang B by its stable recurrence B_k = a B_(k-1) / (k + a B_(k-1)), then
    C = c B / (c - a (1 - B)). 1 when a >= c, 0 when a <= 0.
    """
    if offered_load >= servers:
        return 1.0
    if offered_load <= 0:
        return 0.0
    blocking = 1.0
    for k in range(1, servers + 1):
        blocking = offered_load * blocking / (k + offered_load * blocking)
    return servers * blocking / (servers - offered_load * (1 - blocking))


def _slot_wait(slots: int, utilization: float, steps: float, percentile: str, cv2: float) -> float:
    if utilization >= 1:
        return math.inf
    load = utilization * slots
    waits = erlang_c(int(slots), float(load))
    scale = (1 + cv2) / 2 * steps / (slots - load)
    q = PERCENTILES[percentile]
    if q is None:
        return waits * scale
    return math.log(waits / (1 - q)) * scale if waits > 1 - q else 0.0


def slot_wait_rounds(slots: Num, utilization: Num, steps: Num, percentile: str,
                     cv2: float = 0.0) -> Num:
    """Wait for a free slot, in rounds of the average step (W / round(mix)); one per candidate
    when the arguments are arrays."""
    if not is_array(slots, utilization, steps):
        return _slot_wait(slots, utilization, steps, percentile, cv2)
    rows = np.stack(np.broadcast_arrays(np.asarray(slots, dtype=float), np.asarray(utilization, dtype=float),
                                        np.asarray(steps, dtype=float)), axis=-1)
    rows = rows.reshape(-1, 3)
    triples, where = distinct(rows)  # few (C, u, L) triples
    waits = np.array([_slot_wait(int(c), float(u), float(n), percentile, cv2) for c, u, n in triples])
    return waits[where.reshape(-1)]


def step_wait_rounds(percentile: str) -> float:
    """Wait for the next step of the request's micro-batch, in rounds (a uniform arrival phase:
    half a round on average, q of a round at the q-quantile)."""
    return _position(percentile)


def closed_wait_rounds(users: int, slots: int, steps: float) -> float:
    """A closed loop of `users` on `slots`: W = (N - C) S / C, in rounds (S = L rounds); the same
    for every request, so for every percentile."""
    return max(0, users - slots) * steps / slots


def burst_backlog_steps(requests: int, prompt_tokens: int, room_tokens: float,
                        percentile: str) -> float:
    """A burst's wait for the prompts ahead, in full steps of `room_tokens` prompt tokens."""
    return _position(percentile) * (requests - 1) * prompt_tokens / room_tokens


def burst_slot_wait_rounds(requests: int, slots: int, steps: float, percentile: str) -> float:
    """A burst's wait for a free slot, in rounds: the request at position j > C waits (j - C) S / C;
    the mean over all R requests is (R - C)(R - C + 1) / (2 R C) S."""
    beyond = max(0, requests - slots)
    if PERCENTILES[percentile] is None:
        return beyond * (beyond + 1) / (2 * requests * slots) * steps
    return max(0.0, _position(percentile) * requests - slots) * steps / slots
