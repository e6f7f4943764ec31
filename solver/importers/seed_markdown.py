"""Import the markdown condition files of the seed (tests/assets/seed-formats/markdown).

Layout: `## **Section**` headings, then `* **Field**: value` bullets. Sections read: Environment
Condition, Model Configuration, Input Data, Basic Performance Requirements and, when present,
Parallelism Strategy (imported as a short plan for `paraplan check`). Every bullet must be
understood: an unknown field or an unreadable value is an InputError quoting the line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from solver.errors import InputError
from solver.importers.common import (
    GB,
    TB_PER_S,
    TFLOPS,
    TIME_MS,
    Imported,
    as_int,
    fraction,
    numbers_in,
    one_number,
    origin,
    precision_of,
    quantity,
)

AMPLE_MAX_GPUS = 1024  # "Ample GPU resources, no limits": the planner chooses up to this many
DEFAULT_GPUS_PER_NODE = 8
DEFAULT_INTRA_NODE_GB_PER_S = 450.0  # NVLink-4 class, per GPU per direction
DEFAULT_INTER_NODE_GB_PER_S = 50.0  # one 400 Gb/s NIC per GPU
DEFAULT_VOCAB = 32_000
DEFAULT_TOP_K = 2
DEFAULT_OUTPUT_TOKENS = 1024

_HEADING = re.compile(r"^\s*#{1,6}\s+\**\s*(?P<title>[^*]+?)\s*\**\s*$")
_BULLET = re.compile(r"^\s*[*-]\s+\*\*(?P<key>[^*]+?)\*\*\s*(?P<value>.*)$")
_IGNORED = re.compile(r"^\s*(```.*|-{3,}|\*{3,}|_{3,}|#\S.*)?\s*$")  # fences, rules, #tags, blank


@dataclass(frozen=True)
class Line:
    number: int
    text: str
    key: str  # normalized field name
    value: str


SECTIONS = {
    "environment": ("environment", "hardware", "cluster"),
    "model": ("model",),
    "input": ("input", "workload"),
    "requirements": ("performance", "requirement", "slo"),
    "strategy": ("parallel", "strategy"),
}


def _section_of(title: str) -> str | None:
    lowered = title.lower()
    for name, words in SECTIONS.items():
        if any(w in lowered for w in words):
            return name
    return None


def _normalize(key: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9%/+-]+", " ", key.lower().rstrip(":")).split())


def parse_sections(text: str, source: str) -> dict[str, list[Line]]:
    sections: dict[str, list[Line]] = {}
    current: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        heading = _HEADING.match(raw)
        if heading:
            current = _section_of(heading.group("title"))
            if current is None:
                raise InputError(
                    source,
                    f'line {number} "{raw.strip()}"',
                    "unknown section; expected Environment Condition, Model "
                    "Configuration, Input Data, Basic Performance Requirements or "
                    "Parallelism Strategy",
                )
            if current in sections:
                raise InputError(source, f'line {number} "{raw.strip()}"', "section given twice")
            sections[current] = []
            continue
        if _IGNORED.match(raw):
            continue
        bullet = _BULLET.match(raw)
        if bullet is None or current is None:
            reason = (
                "not a '* **Field**: value' line"
                if current
                else "text before the first section heading"
            )
            raise InputError(source, f'line {number} "{raw.strip()}"', reason)
        value = bullet.group("value").strip().lstrip(":").strip()
        sections[current].append(Line(number, raw.strip(), _normalize(bullet.group("key")), value))
    if not sections:
        raise InputError(
            source, "", "no '## **Section**' headings found: not a seed markdown condition"
        )
    return sections


class _Reader:
    """Reads one section's lines by field-name patterns; every line must be claimed by a reader."""

    def __init__(self, imported: Imported, section: str, lines: list[Line]) -> None:
        self.imp, self.section, self.lines = imported, section, lines
        self.claimed: set[int] = set()

    @property
    def source(self) -> str:
        return self.imp.source

    def where(self, line: Line) -> str:
        return f'line {line.number} "{line.text}"'

    def origin(self, line: Line) -> str:
        return origin(self.imp.source, line.number, line.text)

    def find(self, *patterns: str, exclude: tuple[str, ...] = ()) -> Line | None:
        for line in self.lines:
            if line.number in self.claimed:
                continue
            if any(re.search(p, line.key) for p in patterns) and not any(
                re.search(x, line.key) for x in exclude
            ):
                self.claimed.add(line.number)
                return line
        return None

    def read(
        self,
        patterns: tuple[str, ...],
        parse: Callable[[Line], object],
        exclude: tuple[str, ...] = (),
    ) -> tuple[object, Line] | None:
        line = self.find(*patterns, exclude=exclude)
        if line is None:
            return None
        return parse(line), line

    def finish(self) -> None:
        for line in self.lines:
            if line.number not in self.claimed:
                raise InputError(
                    self.source,
                    self.where(line),
                    f"field not understood in the {self.section} section",
                )

    # ---- value parsers bound to a line (errors quote it) ----
    def number(self, line: Line) -> float:
        return one_number(line.value, self.source, self.where(line))

    def integer(self, line: Line) -> int:
        return as_int(self.number(line), self.source, self.where(line))


def _is_none(value: str) -> bool:
    return value.strip().rstrip(".").lower() in ("none", "n/a", "na", "-", "no requirement", "")


# ---- Environment Condition -----------------------------------------------------------------------


def _environment(imp: Imported, r: _Reader, compute_precision: str) -> None:
    src = imp.source
    count = r.find(
        r"^(gpus?|npus?|cards?|accelerators?|devices?)( count| number)?$",
        r"number of (gpus|npus|cards)",
    )
    if count is None:
        raise InputError(
            src, "Environment Condition", "no GPUs/NPUs line (a number, or 'Ample ..., no limits')"
        )
    lowered = count.value.lower()
    if "ample" in lowered or "no limit" in lowered or "unlimited" in lowered:
        imp.put(
            "hardware.max_gpus",
            AMPLE_MAX_GPUS,
            f"{r.origin(count)} -> the planner chooses up to {AMPLE_MAX_GPUS} GPUs",
        )
        imp.assumptions.append(
            f"hardware.max_gpus = {AMPLE_MAX_GPUS}: 'ample GPUs, no limits' read as "
            f"'the planner chooses the count, up to {AMPLE_MAX_GPUS}'"
        )
    else:
        total = r.integer(count)
        per_node_line = r.find(r"(gpus|npus|cards) per (node|server|machine)")
        if per_node_line is not None:
            per_node = r.integer(per_node_line)
            imp.put("hardware.gpus_per_node", per_node, r.origin(per_node_line))
        else:
            per_node = max(d for d in range(1, DEFAULT_GPUS_PER_NODE + 1) if total % d == 0)
            imp.assume(
                "hardware.gpus_per_node",
                per_node,
                f"not stated; nodes of {per_node} GPUs (the largest divisor of {total} up to "
                f"{DEFAULT_GPUS_PER_NODE})",
            )
        if total % per_node:
            raise InputError(
                src, r.where(count), f"{total} GPUs is not a whole number of {per_node}-GPU nodes"
            )
        imp.put(
            "hardware.num_nodes",
            total // per_node,
            f"{r.origin(count)} -> {total} GPUs / {per_node} per node",
        )
    card = "hardware.gpu"
    tflops = r.find(r"computing power", r"tflops", r"compute")
    memory = r.find(
        r"memory capacity", r"video memory", r"vram capacity", r"hbm capacity", r"^memory$"
    )
    hbm = r.find(r"(vram|memory|hbm) bandwidth$", r"^(vram|hbm) bw$")
    missing = [
        n
        for n, v in (
            ("single-card computing power", tflops),
            ("single-card memory capacity", memory),
            ("memory bandwidth", hbm),
        )
        if v is None
    ]
    if missing:
        raise InputError(src, "Environment Condition", f"missing: {', '.join(missing)}")
    assert tflops is not None and memory is not None and hbm is not None
    tf = quantity(tflops.value, TFLOPS, src, r.where(tflops), default_unit="tflops")
    gb = quantity(memory.value, GB, src, r.where(memory), default_unit="gb")
    tb = quantity(hbm.value, TB_PER_S, src, r.where(hbm), default_unit="tbps")
    name = f"seed-card-{tf:g}tflops-{gb:g}gb"
    imp.put(f"{card}.name", name, "named by the importer from the card's numbers")
    imp.put(f"{card}.memory_gb", gb, r.origin(memory))
    imp.put(
        f"{card}.dense_tflops",
        {compute_precision: tf},
        f"{r.origin(tflops)} -> the dense {compute_precision} rate (the card states one rate)",
    )
    imp.put(f"{card}.hbm_tb_per_s", tb, r.origin(hbm))
    imp.assumptions.append(
        f"the stated {tf:g} TFLOPS is used as the dense {compute_precision} rate "
        "(the source gives one rate for every precision)"
    )
    mfu = r.find(r"\bmfu\b", r"compute utili[sz]ation")
    if mfu is not None:
        imp.put("hardware.mfu", fraction(mfu.value, src, r.where(mfu)), r.origin(mfu))
    mbu = r.find(r"bandwidth utili[sz]ation", r"\bmbu\b")
    if mbu is not None:
        imp.put(
            "hardware.memory_bandwidth_utilization",
            fraction(mbu.value, src, r.where(mbu)),
            r.origin(mbu),
        )
    _links(imp, r)
    r.finish()


def _links(imp: Imported, r: _Reader) -> None:
    src = imp.source
    for key, patterns, default, what in (
        (
            "intra_node_gb_per_s",
            (r"intra.?node", r"nvlink", r"\bhccs\b", r"scale.?up"),
            DEFAULT_INTRA_NODE_GB_PER_S,
            "NVLink-4 class, per GPU per direction",
        ),
        (
            "inter_node_gb_per_s",
            (r"inter.?node", r"network", r"\brdma\b", r"scale.?out"),
            DEFAULT_INTER_NODE_GB_PER_S,
            "one 400 Gb/s NIC per GPU",
        ),
    ):
        line = r.find(*patterns)
        if line is not None:
            value = quantity(
                line.value,
                {
                    "gb/s": 1.0,
                    "gbps": 1.0,
                    "tb/s": 1000.0,
                    "tbps": 1000.0,
                    "gbit/s": 0.125,
                    "gb": 1.0,
                },
                src,
                r.where(line),
                default_unit="gb/s",
            )
            imp.put(f"hardware.{key}", value, r.origin(line))
        else:
            imp.assume(f"hardware.{key}", default, f"interconnect not stated; {what}")


# ---- Model Configuration -------------------------------------------------------------------------


def _model(imp: Imported, r: _Reader, default_name: str) -> None:
    src, m = imp.source, "model"
    name = r.find(r"^(model )?name$")
    imp.put(
        f"{m}.name",
        name.value.strip() if name else default_name,
        r.origin(name) if name else "the file name (no name line)",
    )
    layers = r.find(r"^(number of )?layers$", r"^num layers$")
    if layers is None:
        raise InputError(src, "Model Configuration", "no Layers line")
    found = numbers_in(layers.value)  # "94-layer, ... each layer has 128 experts": the first number
    if not found:
        raise InputError(src, r.where(layers), "no number of layers")
    num_layers = as_int(found[0], src, r.where(layers))
    imp.put(f"{m}.num_hidden_layers", num_layers, r.origin(layers))
    hidden = r.find(
        r"token dimension",
        r"^hidden( size)?$",
        r"^d model$",
        r"model dimension",
        exclude=(r"moe", r"expert", r"ffn"),
    )
    if hidden is None:
        raise InputError(src, "Model Configuration", "no Token Dimension (hidden size) line")
    imp.put(f"{m}.hidden_size", r.integer(hidden), r.origin(hidden))
    _attention(imp, r, layers)
    experts = _experts(imp, r, layers)
    vocab = r.find(r"vocab")
    if vocab is not None:
        imp.put(f"{m}.vocab_size", r.integer(vocab), r.origin(vocab))
    else:
        imp.assume(
            f"{m}.vocab_size",
            DEFAULT_VOCAB,
            "vocabulary not stated (Llama-2/Mixtral size); affects only the embedding and LM head",
        )
    imp.put(f"{m}.tie_word_embeddings", False, "ASSUMED: separate embedding and LM head")
    weights = r.find(r"^(weights|parameters|params|model size)$")
    if weights is not None:
        billions = quantity(
            weights.value,
            {"b": 1.0, "m": 1e-3, "t": 1000.0},
            src,
            r.where(weights),
            default_unit="b",
        )
        imp.put(f"{m}.published_params_b", billions, r.origin(weights))
    imp.data[m]["source"] = f"imported from {src.rsplit('/', 1)[-1]}"
    if not experts and imp.get(f"{m}.intermediate_size") is None:
        raise InputError(
            src,
            r.where(layers),
            "a dense model needs an FFN hidden size line "
            "('FFN hidden size' or 'Intermediate size')",
        )
    r.finish()


def _attention(imp: Imported, r: _Reader, layers: Line) -> None:
    src, m = imp.source, "model"
    att = r.find(r"dimension of (mha|attention|gqa|mla)", r"^attention", r"^heads$", r"^(mha|gqa)")
    if att is None:
        raise InputError(
            src, "Model Configuration", "no attention line (number of heads and head dimension)"
        )
    text = att.value.lower()
    heads = re.search(r"(?:number of )?heads?\s*(?:is|=|:)\s*(\d+)", text)
    dim = re.search(
        r"dimension of each heads?\s*(?:is|=|:)\s*(\d+)|head.?dim\w*\s*(?:is|=|:)\s*(\d+)", text
    )
    if heads and dim:
        n_heads, head_dim = int(heads.group(1)), int(dim.group(1) or dim.group(2))
    else:
        found = numbers_in(att.value)
        if len(found) != 2:
            raise InputError(
                src, r.where(att), "expected the number of heads and the dimension of each head"
            )
        n_heads, head_dim = (as_int(v, src, r.where(att)) for v in found)
    imp.put(f"{m}.num_attention_heads", n_heads, r.origin(att))
    imp.put(f"{m}.head_dim", head_dim, r.origin(att))
    kv = r.find(r"kv heads", r"key value heads", r"kv head")
    gqa = "gqa" in layers.value.lower() or "gqa" in att.key or "group" in layers.value.lower()
    if kv is not None:
        imp.put(f"{m}.num_key_value_heads", r.integer(kv), r.origin(kv))
    elif gqa:
        raise InputError(
            src,
            r.where(layers),
            "GQA attention but no 'kv heads' line gives the number of key/value heads",
        )
    else:
        imp.put(
            f"{m}.num_key_value_heads",
            n_heads,
            f"{origin(src, layers.number, layers.text)} -> multi-head attention: one KV head "
            "per head",
        )


def _experts(imp: Imported, r: _Reader, layers: Line) -> bool:
    src, m = imp.source, "model"
    count = re.search(r"(\d+)\s+(?:routed\s+)?experts", layers.value.lower())
    line = r.find(r"^(number of )?(routed )?experts$")
    if line is not None:
        imp.put(f"{m}.num_experts", r.integer(line), r.origin(line))
    elif count:
        imp.put(f"{m}.num_experts", int(count.group(1)), origin(src, layers.number, layers.text))
    moe_hidden = r.find(
        r"hidden size of moe", r"moe (hidden|intermediate)", r"expert (hidden|intermediate|ffn)"
    )
    ffn = r.find(r"ffn hidden", r"intermediate size", r"^ffn( dimension)?$", r"mlp hidden")
    if ffn is not None:
        imp.put(f"{m}.intermediate_size", r.integer(ffn), r.origin(ffn))
    is_moe = imp.get(f"{m}.num_experts") is not None
    if not is_moe:
        if moe_hidden is not None:
            raise InputError(
                src, r.where(moe_hidden), "an MoE hidden size but no number of experts"
            )
        return False
    if moe_hidden is None:
        raise InputError(src, r.where(layers), "an MoE model needs a 'Hidden size of MOE' line")
    imp.put(f"{m}.moe_intermediate_size", r.integer(moe_hidden), r.origin(moe_hidden))
    top_k = r.find(r"top.?k", r"experts per token", r"activated experts")
    if top_k is not None:
        imp.put(f"{m}.num_experts_per_tok", r.integer(top_k), r.origin(top_k))
    else:
        imp.assume(
            f"{m}.num_experts_per_tok",
            DEFAULT_TOP_K,
            "top-k gate not stated; 2 experts per token (Mixtral/GShard default)",
        )
    shared = r.find(r"shared experts?")
    if shared is not None:
        imp.put(f"{m}.num_shared_experts", r.integer(shared), r.origin(shared))
    dense = r.find(r"dense layers", r"first k dense")
    if dense is not None:
        imp.put(f"{m}.first_k_dense_layers", r.integer(dense), r.origin(dense))
    return True


# ---- Input Data and requirements -----------------------------------------------------------------


def _workload(imp: Imported, r: _Reader) -> None:
    src = imp.source
    batch = r.find(r"batch")
    if batch is None:
        raise InputError(src, "Input Data", "no Batch size line")
    imp.put(
        "workload.batch_size", r.integer(batch), f"{r.origin(batch)} -> fixed batch per replica"
    )
    seq_in = r.find(r"sequence in$", r"input (length|tokens)", r"prompt (length|tokens)", r"^isl$")
    seq_out = r.find(
        r"sequence out$", r"output (length|tokens)", r"generat\w* (length|tokens)", r"^osl$"
    )
    length = r.find(r"sequence length", r"context length", r"seq len")
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


def _requirements(imp: Imported, r: _Reader) -> None:
    src = imp.source
    for key, patterns in (
        ("ttft_ms", (r"ttft", r"first token")),
        ("tpot_ms", (r"tpot", r"per output token")),
        ("e2e_latency_ms", (r"e2e", r"end to end", r"end-to-end")),
    ):
        line = r.find(*patterns)
        if line is None:
            continue
        if _is_none(line.value):
            imp.read_only.append(f"{origin(src, line.number, line.text)}: no {key} SLO")
            continue
        imp.put(
            f"slo.{key}",
            quantity(line.value, TIME_MS, src, r.where(line), default_unit="ms"),
            r.origin(line),
        )
    tput = r.find(r"throughput")
    if tput is not None and not _is_none(tput.value):
        per_s = quantity(
            tput.value.replace("tokens", "").replace("token", ""),
            {"/ms": 1000.0, "/s": 1.0, "/sec": 1.0, "/min": 1 / 60},
            src,
            r.where(tput),
            default_unit="/s",
        )
        scope = " per GPU" if "gpu" in tput.key or "gpu" in tput.value.lower() else ""
        imp.read_only.append(
            f"{origin(src, tput.number, tput.text)}: target {per_s:,.0f} tokens/s{scope}"
        )
        imp.assumptions.append(
            f"throughput target {per_s:,.0f} tokens/s{scope} (line {tput.number}) is not a hard "
            "constraint: the objective maximizes throughput; compare plan.md's throughput with it"
        )
    r.finish()


# ---- Parallelism Strategy -> short plan ----------------------------------------------------------

_DEGREES = (
    ("etp", (r"expert tensor",)),
    ("attn_dp", (r"attention data", r"attention dp")),
    ("tp", (r"tensor",)),
    ("pp", (r"pipeline",)),
    ("dp", (r"^data", r"data parallel")),
    ("ep", (r"expert",)),
    ("sp", (r"sequence", r"context parallel")),
)


def _strategy(imp: Imported, lines: list[Line], batch: int | None) -> Imported:
    plan = Imported(source=imp.source, kind="plan")
    r = _Reader(plan, "Parallelism Strategy", lines)
    total = r.find(r"^(gpus?|npus?|cards?)( count| number| total)?$", r"total (gpus|npus)")
    for name, patterns in _DEGREES:
        line = r.find(*patterns)
        if line is not None:
            plan.put(name, r.integer(line), r.origin(line))
    if not plan.data:
        raise InputError(imp.source, "Parallelism Strategy", "no parallel degree found")
    if batch is not None:
        plan.put("batch_size", batch, "the Input Data batch size")
    r.finish()
    if total is not None:
        stated = r.integer(total)
        d = plan.data
        stage = d.get("tp", 1) * d.get("attn_dp", 1) * d.get("sp", 1)
        implied = d.get("dp", 1) * d.get("pp", 1) * stage
        plan.read_only.append(
            f"{origin(imp.source, total.number, total.text)}: {stated} GPUs stated; the "
            f"degrees give dp x pp x tp x attn_dp x sp = {implied}"
            + ("" if implied == stated else " (they disagree: check grades the degrees)")
        )
    return plan


# ---- entry point ---------------------------------------------------------------------------------


def _precision(imp: Imported, model_lines: list[Line]) -> str:
    """Read the model precision line first: it decides the compute precision of the GPU card."""
    src = imp.source
    line = next(
        (ln for ln in model_lines if re.search(r"^precision$|dtype|data type", ln.key)), None
    )
    if line is None:
        imp.assume("precision.weights", "bf16", "precision not stated")
        stated = "bf16"
    else:
        stated = precision_of(line.value, src, f'line {line.number} "{line.text}"')
        imp.put("precision.weights", stated, origin(src, line.number, line.text))
    if stated in ("fp32", "bf16", "fp16"):
        imp.put("precision.kv_cache", stated, "same as the weights")
        imp.put("precision.activations", stated, "same as the weights")
        return stated
    kv = stated if stated in ("fp8", "int8") else "fp8"
    imp.put("precision.kv_cache", kv, f"ASSUMED: {kv} KV cache with {stated} weights")
    imp.put("precision.activations", "bf16", "ASSUMED: bf16 activations and collectives")
    imp.assumptions.append(
        f"precision: {stated} weights, {kv} KV cache, bf16 activations/collectives "
        "(the source states one precision)"
    )
    return "bf16"


MAX_NUMBER_DIGITS = 30  # far above any real figure; longer digit runs overflow int() and float()


def _refuse_huge_numbers(text: str, source: str) -> None:
    for number, line in enumerate(text.splitlines(), start=1):
        digits = re.search(rf"\d{{{MAX_NUMBER_DIGITS + 1},}}", line)
        if digits:
            raise InputError(source, f"line {number}", f"a number of {len(digits.group())} digits "
                             f"(paraplan reads at most {MAX_NUMBER_DIGITS})")


def import_markdown(text: str, source: str, default_name: str) -> Imported:
    _refuse_huge_numbers(text, source)
    sections = parse_sections(text, source)
    for needed in ("environment", "model", "input"):
        if needed not in sections:
            title = {
                "environment": "Environment Condition",
                "model": "Model Configuration",
                "input": "Input Data",
            }[needed]
            raise InputError(source, "", f"no '{title}' section")
    imp = Imported(source=source, kind="condition")
    imp.data = {
        "name": default_name,
        "model": {},
        "precision": {},
        "hardware": {"gpu": {}},
        "workload": {},
    }
    imp.origins["name"] = "the file name"
    compute = _precision(imp, sections["model"])
    _environment(imp, _Reader(imp, "Environment Condition", sections["environment"]), compute)
    model_reader = _Reader(imp, "Model Configuration", sections["model"])
    model_reader.find(r"^precision$", r"dtype", r"data type")  # read by _precision
    _model(imp, model_reader, default_name)
    _workload(imp, _Reader(imp, "Input Data", sections["input"]))
    if "requirements" in sections:
        _requirements(imp, _Reader(imp, "Basic Performance Requirements", sections["requirements"]))
    if "strategy" in sections:
        imp.plan = _strategy(imp, sections["strategy"], imp.get("workload.batch_size"))
    _check_params(imp)
    return imp


def _check_params(imp: Imported) -> None:
    """Compare the stated parameter count with the one the dimensions give (a reviewer's check)."""
    from pydantic import ValidationError

    from solver.inputs.cards import ModelCard
    from solver.physics.architecture import Architecture

    stated = imp.get("model.published_params_b")
    try:
        card = ModelCard.model_validate(imp.data["model"])
    except ValidationError:
        return  # build_condition reports it with key paths
    computed = Architecture(card).total_params / 1e9
    if stated is None:
        return
    if abs(computed - stated) > 0.15 * stated:
        imp.assumptions.append(
            f"the stated {stated:g} B parameters do not match the {computed:.2f} B the stated "
            "dimensions give; the dimensions are used"
        )
