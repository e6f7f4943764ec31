"""Disaggregated serving's decision: a prefill candidate x n_p instances and a decode candidate x
n_d instances, at the largest request rate R that every SLO allows.

Integers (the one place this problem is scaled): times in TIME_UNIT_S, rounded up; request rates
in 1 / RATE_SCALE requests/s, rounded down; limits rounded down. So a choice the integers accept,
the floats accept.

    one prefill candidate p and one decode candidate d (one-hot x_p, y_d)
    n_p >= 1 instances of p, n_d >= 1 of d (integers, 0 when not chosen)
    GPUs: n_p g_p + n_d g_d = G (every GPU, the aggregated rule; <= G with policy.use_all_gpus:
          false or ample GPUs), each pool whole nodes unless serving.pools.whole_nodes is false
    rate matching: R <= n_p cap_p and R <= n_d cap_d
    TTFT: ttft_p + max(send_p, recv_d) + latency + admit_d <= slo.ttft_ms   (at the percentile)
    e2e:  ttft_mean_p + max(send_p, recv_d) + latency + admit_mean_d + (O - 1) tpot_mean_d
          <= slo.e2e_latency_ms
    TPOT: tpot_d <= slo.tpot_ms (kept candidates only, optimize/pools.py)
    objective: goodput per GPU, R / GPUs used (= R / G when every GPU is used)

Every term is linear in the one-hot choices and the counts (max(send, recv) is a variable above
both sums, which only appears under a limit). With a free GPU count the ratio is maximized by
Dinkelbach's iteration: maximize G* R - R* GPUs with the incumbent R* / G*, until nothing beats it.
The oracle (`solve_by_enumeration`) enumerates every pair and every count without a solver.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np

from solver.inputs.condition import Condition
from solver.optimize.dominance import first_minimal
from solver.optimize.pools import PoolCandidate
from solver.physics.disaggregation import PoolLink
from solver.physics.numeric import Num, is_array
from solver.runtime.limits import Deadline, new_cp_solver

TIME_UNIT_S = 1e-6
RATE_SCALE = 1e4  # integer rate units per request/s
DISAGG_WORK = 20.0  # CP-SAT deterministic time per solve


def _finite(values: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(values)):
        raise OverflowError("cannot convert float infinity or NaN to integer")  # as math.ceil does
    return values


def time_units(seconds: Num) -> Num:
    """Seconds in TIME_UNIT_S, rounded up (an int, or an int64 array for an array)."""
    if is_array(seconds):
        return np.ceil(_finite(seconds / TIME_UNIT_S - 1e-9)).astype(np.int64)
    return math.ceil(seconds / TIME_UNIT_S - 1e-9)


def rate_units(requests_per_s: Num) -> Num:
    """Requests/s in 1 / RATE_SCALE, rounded down (an int, or an int64 array for an array)."""
    if is_array(requests_per_s):
        return np.floor(_finite(requests_per_s * RATE_SCALE + 1e-9)).astype(np.int64)
    return math.floor(requests_per_s * RATE_SCALE + 1e-9)


def _down_ms(ms: float | None) -> int | None:
    return None if ms is None else math.floor(ms * 1e-3 / TIME_UNIT_S + 1e-9)


@dataclass(frozen=True)
class DisaggTable:
    """The integer instance: per candidate (prefill list, decode list) its GPUs, rate, times."""

    prefill: list[PoolCandidate]
    decode: list[PoolCandidate]
    total_gpus: int
    gpus_per_node: int
    whole_nodes: bool
    use_all: bool
    max_instances: int
    latency: int
    ttft_limit: int | None
    e2e_limit: int | None
    output_tokens: int

    def rate(self, c: PoolCandidate) -> int:
        return rate_units(c.requests_per_s)

    def send(self, c: PoolCandidate, link: float) -> int:
        return time_units(c.kv_bytes_per_gpu / link)

    def ttft(self, p: PoolCandidate, d: PoolCandidate, xfer: int) -> int:
        return time_units(p.ttft_s) + xfer + self.latency + time_units(d.ttft_s)

    def e2e(self, p: PoolCandidate, d: PoolCandidate, xfer: int) -> int:
        return (time_units(p.ttft_mean_s) + xfer + self.latency + time_units(d.ttft_mean_s)
                + time_units((self.output_tokens - 1) * d.tpot_mean_s))

    def instances(self, c: PoolCandidate) -> int:
        return min(self.max_instances, self.total_gpus // c.gpus)

    def pool_gpus_ok(self, gpus: int) -> bool:
        return not self.whole_nodes or gpus % self.gpus_per_node == 0


@dataclass(frozen=True)
class DisaggChoice:
    """The decision: candidates by index, instance counts, the operating rate (integer units)."""

    prefill: int
    prefill_instances: int
    decode: int
    decode_instances: int
    rate: int
    status: str  # optimal | feasible

    def gpus(self, t: DisaggTable) -> int:
        return (self.prefill_instances * t.prefill[self.prefill].gpus
                + self.decode_instances * t.decode[self.decode].gpus)

    def goodput(self, t: DisaggTable) -> Fraction:
        return Fraction(self.rate, self.gpus(t))


def disagg_table(condition: Condition, prefill: list[PoolCandidate],
                 decode: list[PoolCandidate]) -> tuple[DisaggTable, float]:
    """The integer instance and the link bandwidth (bytes/s) its transfers use."""
    link = PoolLink.of(condition)
    pools = condition.serving.pool_spec
    cluster = condition.cluster
    table = DisaggTable(
        prefill, decode, cluster.num_gpus, cluster.gpus_per_node, pools.whole_nodes,
        cluster.fixed and condition.policy.use_all_gpus, pools.max_instances,
        time_units(link.latency_s), _down_ms(condition.slo.ttft_ms), _down_ms(condition.slo.e2e_latency_ms),
        condition.workload.output_tokens)
    return table, link.bytes_per_s


def pair_ok(t: DisaggTable, link: float, p: PoolCandidate, d: PoolCandidate) -> bool:
    """The pair meets TTFT and e2e with the KV transfer between them."""
    xfer = max(t.send(p, link), t.send(d, link))
    return ((t.ttft_limit is None or t.ttft(p, d, xfer) <= t.ttft_limit)
            and (t.e2e_limit is None or t.e2e(p, d, xfer) <= t.e2e_limit))


def _counts(t: DisaggTable, p: PoolCandidate, d: PoolCandidate) -> list[tuple[int, int]]:
    """Every (n_p, n_d) the GPU rules allow for the pair."""
    out = []
    for n_p in range(1, t.instances(p) + 1):
        left = t.total_gpus - n_p * p.gpus
        if left < d.gpus or not t.pool_gpus_ok(n_p * p.gpus):
            continue
        options = [left // d.gpus] if t.use_all else range(1, min(t.max_instances, left // d.gpus) + 1)
        for n_d in options:
            used = n_p * p.gpus + n_d * d.gpus
            if t.pool_gpus_ok(n_d * d.gpus) and (not t.use_all or used == t.total_gpus):
                out.append((n_p, n_d))
    return out


def solve_by_enumeration(t: DisaggTable, link: float) -> DisaggChoice | None:
    """The oracle: every pair meeting the SLOs, every allowed count; the largest R / GPUs (ties:
    the first pair in index order, then the fewest prefill instances)."""
    best: DisaggChoice | None = None
    for i, p in enumerate(t.prefill):
        for j, d in enumerate(t.decode):
            if not pair_ok(t, link, p, d):
                continue
            for n_p, n_d in _counts(t, p, d):
                rate = min(n_p * t.rate(p), n_d * t.rate(d))
                choice = DisaggChoice(i, n_p, j, n_d, rate, "optimal")
                if best is None or choice.goodput(t) > best.goodput(t):
                    best = choice
    return best


def key_columns(t: DisaggTable, link: float, rate: np.ndarray, ttft: np.ndarray, ttft_mean: np.ndarray,
                tpot_mean: np.ndarray, kv_bytes: np.ndarray, decode: bool) -> np.ndarray:
    """What candidates contribute to a pair, one row each, larger is worse: -rate, TTFT part, e2e
    part, KV shard time (integers, as the model counts them; arrays of the candidates' floats)."""
    tail = time_units((t.output_tokens - 1) * tpot_mean) if decode else 0
    return np.stack([-rate_units(rate), time_units(ttft), time_units(ttft_mean) + tail,
                     time_units(kv_bytes / link)], axis=1)


def undominated(t: DisaggTable, link: float, decode: bool) -> list[int]:
    """Indices of the candidates no other of the same GPU count matches or beats in every term
    (exact: a dominated candidate can be swapped for its dominator in any solution, same counts,
    same GPUs, no smaller rate, no larger latency). Ties keep the first index."""
    pool = t.decode if decode else t.prefill
    def column(name: str) -> np.ndarray:
        return np.array([getattr(c, name) for c in pool], dtype=float)

    keys = key_columns(t, link, column("requests_per_s"), column("ttft_s"), column("ttft_mean_s"),
                       column("tpot_mean_s"), column("kv_bytes_per_gpu"), decode)
    gpus = np.array([c.gpus for c in pool], dtype=np.int64)
    return np.flatnonzero(first_minimal(keys, gpus)).tolist()


def solve_by_cpsat(t: DisaggTable, link: float, deadline: Deadline | None = None,
                   workers: int = 1) -> DisaggChoice | None:
    """CP-SAT over the undominated candidates: R with every GPU used, Dinkelbach's iteration
    otherwise. Indices of the answer refer to the full table."""
    keep_p, keep_d = undominated(t, link, False), undominated(t, link, True)
    small = replace(t, prefill=[t.prefill[i] for i in keep_p], decode=[t.decode[j] for j in keep_d])
    best = _dinkelbach(small, link, deadline, workers)
    if best is None:
        return None
    return replace(best, prefill=keep_p[best.prefill], decode=keep_d[best.decode])


def _dinkelbach(t: DisaggTable, link: float, deadline: Deadline | None,
                workers: int) -> DisaggChoice | None:
    target: Fraction | None = None
    best: DisaggChoice | None = None
    for _ in range(64):
        choice = _solve_once(t, link, target, deadline, workers)
        if choice is None or (best is not None and choice.goodput(t) <= best.goodput(t)):
            break
        best, target = choice, choice.goodput(t)
        if t.use_all:
            break
    return best


def _solve_once(t: DisaggTable, link: float, target: Fraction | None, deadline: Deadline | None,
                workers: int) -> DisaggChoice | None:
    """One CP-SAT solve: the largest R (target None) or the largest den R - num GPUs."""
    from ortools.sat.python import cp_model

    m = cp_model.CpModel()
    x = [m.new_bool_var(f"prefill_{i}") for i in range(len(t.prefill))]
    y = [m.new_bool_var(f"decode_{j}") for j in range(len(t.decode))]
    n_p = [m.new_int_var(0, t.instances(c), f"n_prefill_{i}") for i, c in enumerate(t.prefill)]
    n_d = [m.new_int_var(0, t.instances(c), f"n_decode_{j}") for j, c in enumerate(t.decode)]
    m.add_exactly_one(x)
    m.add_exactly_one(y)
    for use, count in (*zip(x, n_p, strict=True), *zip(y, n_d, strict=True)):
        m.add(count >= use)  # a chosen candidate runs at least one instance
        m.add(count == 0).only_enforce_if(~use)  # an unchosen one none
    # exact GPU accounting: every GPU in at most one pool (exactly one when all must be used)
    gpus_p = sum(c.gpus * n for c, n in zip(t.prefill, n_p, strict=True))
    gpus_d = sum(c.gpus * n for c, n in zip(t.decode, n_d, strict=True))
    if t.whole_nodes:  # no node holds both pools
        nodes = t.total_gpus // t.gpus_per_node
        m.add(gpus_p == t.gpus_per_node * m.new_int_var(1, nodes, "prefill_nodes"))
        m.add(gpus_d == t.gpus_per_node * m.new_int_var(1, nodes, "decode_nodes"))
    m.add(gpus_p + gpus_d == t.total_gpus) if t.use_all else m.add(gpus_p + gpus_d <= t.total_gpus)
    # rate matching: both pools carry the operating rate
    top = max([t.rate(c) * t.instances(c) for c in t.prefill + t.decode] + [0])
    rate = m.new_int_var(0, top, "rate")
    m.add(rate <= sum(t.rate(c) * n for c, n in zip(t.prefill, n_p, strict=True)))
    m.add(rate <= sum(t.rate(c) * n for c, n in zip(t.decode, n_d, strict=True)))
    _add_latency(m, t, link, x, y)
    if target is None:
        m.maximize(rate)
    else:  # Dinkelbach: beat the incumbent's R / GPUs
        m.add(target.denominator * rate - target.numerator * (gpus_p + gpus_d) >= 1)
        m.maximize(target.denominator * rate - target.numerator * (gpus_p + gpus_d))
    solver = new_cp_solver(DISAGG_WORK, deadline, workers=workers)
    code = solver.solve(m)
    if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    i = next(k for k, v in enumerate(x) if solver.boolean_value(v))
    j = next(k for k, v in enumerate(y) if solver.boolean_value(v))
    status = "optimal" if code == cp_model.OPTIMAL else "feasible"
    return DisaggChoice(i, solver.value(n_p[i]), j, solver.value(n_d[j]), solver.value(rate), status)


def _add_latency(m: object, t: DisaggTable, link: float, x: list, y: list) -> None:
    """TTFT and e2e over the pair: the transfer is a variable above both sides' times."""
    from ortools.sat.python import cp_model

    assert isinstance(m, cp_model.CpModel)
    sends = [t.send(c, link) for c in t.prefill]
    receives = [t.send(c, link) for c in t.decode]
    xfer = m.new_int_var(0, max(sends + receives + [0]), "kv_transfer")
    m.add(xfer >= sum(s * v for s, v in zip(sends, x, strict=True)))
    m.add(xfer >= sum(s * v for s, v in zip(receives, y, strict=True)))
    if t.ttft_limit is not None:
        m.add(sum(time_units(c.ttft_s) * v for c, v in zip(t.prefill, x, strict=True)) + xfer + t.latency
              + sum(time_units(c.ttft_s) * v for c, v in zip(t.decode, y, strict=True)) <= t.ttft_limit)
    if t.e2e_limit is not None:
        tail = [time_units(c.ttft_mean_s) + time_units((t.output_tokens - 1) * c.tpot_mean_s)
                for c in t.decode]
        m.add(sum(time_units(c.ttft_mean_s) * v for c, v in zip(t.prefill, x, strict=True)) + xfer
              + t.latency + sum(a * v for a, v in zip(tail, y, strict=True)) <= t.e2e_limit)
