"""Progress of a batch or sweep: a rich bar on a terminal, one plain line per task otherwise."""

from __future__ import annotations

from solver.runs.progress import progress


def test_rich_progress_bar_on_a_terminal() -> None:
    rows = [
        {
            "name": "a",
            "status": "optimal",
            "tp": 2,
            "pp": 1,
            "dp": 1,
            "ep": 1,
            "etp": 1,
            "attn_dp": 1,
            "sp": 1,
            "batch": 8,
            "gpus_used": 2,
            "gpus_available": 2,
            "throughput_per_gpu": 1.0,
        },
        {"name": "b", "status": "invalid", "error": "bad"},
    ]
    with progress(2, print, tty=True) as advance:
        for row in rows:
            advance(row)


def test_plain_progress_is_one_line_per_task() -> None:
    lines: list[str] = []
    with progress(2, lines.append, tty=False) as advance:
        advance({"name": "a", "status": "invalid", "error": "bad value\nmore", "solve_seconds": 0.5})
        advance({"name": "b", "status": "error", "error": ""})
    assert lines == ["[1/2] invalid    a: bad value more (0.50 s)", "[2/2] error      b: "]


def test_a_long_error_is_cut_between_words_and_says_where_the_rest_is() -> None:
    """Issue 15: progress lines cut messages mid-word ("...the usable memo")."""
    words = ("per-GPU memory (weights + KV cache + activations + overhead) exceeds the usable memory "
             "on every candidate; ") * 4
    lines: list[str] = []
    with progress(1, lines.append, tty=False) as advance:
        advance({"name": "a", "status": "infeasible", "error": words})
    message = lines[0].split("a: ", 1)[1]
    shown = message.removesuffix(" … (all of it in summary.csv)")
    assert shown != message and len(message) <= 160
    assert words.startswith(shown) and words[len(shown)] == " "  # cut at a space, not inside a word
