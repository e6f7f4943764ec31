"""The Input Data and Basic Performance Requirements sections of a seed markdown file."""

from __future__ import annotations

from solver.errors import InputError
from solver.importers import labels
from solver.importers.common import TIME_MS, Imported, as_int, numbers_in, origin, quantity
from solver.importers.seed_markdown_sections import SectionReader, states_none

DEFAULT_OUTPUT_TOKENS = 1024


def read_workload(imp: Imported, r: SectionReader) -> None:
    """The Input Data section: batch, prompt and output lengths (fixed; a range is noted)."""
    src = imp.source
    batch = r.meaning(labels.BATCH)
    if batch is None:
        raise InputError(src, "Input Data", "no Batch size line")
    imp.put(
        "workload.batch_size", r.integer(batch), f"{r.origin(batch)} -> fixed batch per replica"
    )
    # "Each batch consists of N sequences": fixed batches, prefilled and decoded together
    imp.put("serving.mode", "static", f"{r.origin(batch)} -> static batches")
    seq_in = r.meaning(labels.INPUT_LENGTH)
    seq_out = r.meaning(labels.OUTPUT_LENGTH)
    length = r.meaning(labels.LENGTH_RANGE)
    bounds: list[float] = []
    if length is not None:
        bounds = numbers_in(length.value)
        if len(bounds) not in (1, 2):
            raise InputError(src, r.where(length), "expected a length or a range [min, max]")
    if seq_in is not None:
        imp.put("workload.input_tokens", r.integer(seq_in), r.origin(seq_in))
    elif length is not None:
        longest = as_int(max(bounds), src, r.where(length))
        imp.put("workload.input_tokens", longest, f"{r.origin(length)} -> the longest prompt")
        imp.assumptions.append(
            f"workload.input_tokens = {longest}: no 'Sequence In' line; prompts "
            f"planned at the longest sequence length (TTFT and KV memory are worst case)"
        )
    else:
        raise InputError(src, "Input Data", "no Sequence Length or Sequence In line")
    if seq_out is not None:
        imp.put("workload.output_tokens", r.integer(seq_out), r.origin(seq_out))
    else:
        imp.assume(
            "workload.output_tokens",
            DEFAULT_OUTPUT_TOKENS,
            "no 'Sequence Out' line; output length assumed (sets decode steps and KV size)",
        )
    if length is not None and seq_in is not None:
        span = " to ".join(f"{b:g}" for b in bounds)
        imp.read_only.append(
            f"{origin(src, length.number, length.text)}: lengths vary ({span}); "
            "paraplan plans fixed lengths (Sequence In/Out)"
        )
        imp.assumptions.append(
            f"sequence lengths vary ({span} tokens); the plan uses the fixed "
            f"Sequence In/Out lengths ({imp.get('workload.input_tokens')}/"
            f"{imp.get('workload.output_tokens')})"
        )
    r.finish()


def read_requirements(imp: Imported, r: SectionReader) -> None:
    """Basic Performance Requirements: latency SLOs; a throughput target is noted, not enforced."""
    src = imp.source
    for key, label in (("ttft_ms", labels.TTFT), ("tpot_ms", labels.TPOT),
                       ("e2e_latency_ms", labels.E2E)):
        line = r.meaning(label)
        if line is None:
            continue
        if states_none(line.value):
            imp.read_only.append(f"{origin(src, line.number, line.text)}: no {key} SLO")
            continue
        imp.put(
            f"slo.{key}",
            quantity(line.value, TIME_MS, src, r.where(line), default_unit="ms"),
            r.origin(line),
        )
    tput = r.meaning(labels.THROUGHPUT)
    if tput is not None and not states_none(tput.value):
        per_s = quantity(
            tput.value.replace("tokens", "").replace("token", ""),
            {"/ms": 1000.0, "/s": 1.0, "/sec": 1.0, "/min": 1 / 60},
            src,
            r.where(tput),
            default_unit="/s",
        )
        gpu = labels.concepts_of(labels.normalize(f"{tput.key} {tput.value}"))
        scope = " per GPU" if "gpu" in gpu else ""
        imp.read_only.append(
            f"{origin(src, tput.number, tput.text)}: target {per_s:,.0f} tokens/s{scope}"
        )
        imp.assumptions.append(
            f"throughput target {per_s:,.0f} tokens/s{scope} (line {tput.number}) is not a hard "
            "constraint: the objective maximizes throughput; compare plan.md's throughput with it"
        )
    r.finish()
