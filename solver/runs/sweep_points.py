"""The points of a sweep: `--set KEY=V1,V2,...` parsed and checked against the condition schema,
the cross product applied to the base condition, and every point validated before solving."""

from __future__ import annotations

import copy
import difflib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel

from solver.errors import InputError, ParaplanError
from solver.inputs.condition import ConditionFile, build_condition
from solver.runs.discovery import safe_name, unique_folder

MAX_POINTS = 10_000


@dataclass(frozen=True)
class Axis:
    key: str
    values: tuple[Any, ...]
    texts: tuple[str, ...]  # as typed, for names and the table


def split_values(text: str) -> list[str]:
    """Split on commas that are not inside [] or {} or quotes."""
    parts: list[str] = []
    current: list[str] = []
    depth, quote = 0, ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    parts.append("".join(current).strip())
    return parts


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in getattr(annotation, "__args__", ()) or ():
        found += _models_in(arg)
    return found


def check_key(key: str) -> None:
    """The dotted key must name a field of the condition file (descending into nested sections and
    inline cards); otherwise an InputError with a did-you-mean."""
    parts = key.split(".")
    if not key or any(not p for p in parts):
        raise InputError(
            "--set", key or "(empty)", "expected a dotted key such as hardware.num_nodes"
        )
    models: list[type[BaseModel]] = [ConditionFile]
    for depth, part in enumerate(parts):
        fields = {name: f for m in models for name, f in m.model_fields.items()}
        if part not in fields:
            where = ".".join(parts[:depth]) or "the top level"
            guess = difflib.get_close_matches(part, list(fields), n=1, cutoff=0.6)
            hint = (
                f"; did you mean '{'.'.join([*parts[:depth], guess[0]])}'?"
                if guess
                else (f"; keys under {where}: {', '.join(sorted(fields))}")
            )
            raise InputError("--set", key, f"unknown key{hint}")
        models = _models_in(fields[part].annotation)
        if depth < len(parts) - 1 and not models:
            raise InputError(
                "--set",
                key,
                f"'{'.'.join(parts[: depth + 1])}' holds a value, not a "
                "section: nothing below it can be set",
            )


def parse_set(spec: str) -> Axis:
    key, sep, values = spec.partition("=")
    key = key.strip()
    if not sep:
        raise InputError("--set", spec, "expected KEY=V1,V2,... (e.g. hardware.num_nodes=1,2,4)")
    check_key(key)
    texts = split_values(values)
    if any(not t for t in texts):
        raise InputError("--set", key, f"empty value in {values!r}")
    parsed = []
    for text in texts:
        try:
            parsed.append(yaml.safe_load(text))
        except yaml.YAMLError as exc:
            raise InputError(
                "--set", key, f"value {text!r} is not valid YAML: {getattr(exc, 'problem', exc)}"
            ) from None
    if len(set(texts)) != len(texts):
        raise InputError("--set", key, f"a value is repeated in {values!r}")
    return Axis(key, tuple(parsed), tuple(texts))


def apply(data: dict[str, Any], key: str, value: Any) -> None:
    """Set data[a][b][c] = value for key 'a.b.c' (creating missing sections); None deletes."""
    parts = key.split(".")
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise InputError(
                "--set",
                key,
                f"'{'.'.join(parts[: depth + 1])}' is {child!r} in the "
                "condition, not a mapping (set the whole value instead)",
            )
        node = child
    if value is None:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value


def short_keys(keys: Sequence[str]) -> dict[str, str]:
    """The shortest dotted suffix of each key that no other key shares (names stay readable)."""
    out = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            suffix = ".".join(parts[-n:])
            if sum(1 for k in keys if k == suffix or k.endswith("." + suffix)) == 1:
                out[key] = suffix
                break
        else:
            out[key] = key
    return out


@dataclass
class SweepPoint:
    name: str
    folder: str
    values: dict[str, Any]  # swept key -> value
    texts: dict[str, str]
    data: dict[str, Any]


def expand(base: dict[str, Any], base_name: str, axes: Sequence[Axis]) -> list[SweepPoint]:
    count = 1
    for axis in axes:
        count *= len(axis.values)
    if count > MAX_POINTS:
        raise InputError("--set", "", f"{count} points; the limit is {MAX_POINTS}")
    short = short_keys([a.key for a in axes])
    points: list[SweepPoint] = []
    used: set[str] = set()
    for combo in itertools.product(*[range(len(a.values)) for a in axes]):
        data = copy.deepcopy(base)
        values, texts = {}, {}
        for axis, k in zip(axes, combo, strict=True):
            apply(data, axis.key, copy.deepcopy(axis.values[k]))
            values[axis.key], texts[axis.key] = axis.values[k], axis.texts[k]
        suffix = "_".join(f"{short[a.key]}={texts[a.key]}" for a in axes)
        name = f"{base_name}_{suffix}"
        points.append(SweepPoint(name, unique_folder(safe_name(name), used), values, texts, data))
    return points


def _matching_axis(key: str, axes: Sequence[Axis]) -> str | None:
    for axis in axes:
        if key == axis.key or key.startswith((axis.key + ".", axis.key + "[")):
            return axis.key
    return None


def _problems(exc: ParaplanError) -> list[tuple[str, str]]:
    """(key, reason) pairs of a validation error; one InputError may list several keys."""
    if not isinstance(exc, InputError):
        return [("", str(exc))]
    lines = exc.reason.splitlines()
    if len(lines) > 1:  # "invalid values:" then "  key: reason" per problem
        pairs = [tuple(line.strip().split(": ", 1)) for line in lines[1:] if ": " in line]
        if pairs:
            return [(k, r) for k, r in pairs]
    return [(exc.key, exc.reason)]


def validate(
    points: Sequence[SweepPoint], axes: Sequence[Axis], source: str, default_name: str
) -> None:
    """build_condition on every point before solving; the first failures, naming the key."""
    problems: list[str] = []
    first_key = ""
    for point in points:
        try:
            build_condition(point.data, f"{source} [{point.name}]", default_name)
        except ParaplanError as exc:
            for key, reason in _problems(exc):
                swept = _matching_axis(key, axes)
                if swept is not None:
                    value = point.values[swept]
                    message = (
                        f"--set {key}: value {point.texts[swept]} "
                        f"({type(value).__name__}): {reason}"
                    )
                else:
                    where = ", ".join(f"{k}={v}" for k, v in point.texts.items())
                    message = f"point {where}: {key + ': ' if key else ''}{reason}"
                if message not in problems:
                    problems.append(message)
                    first_key = first_key or swept or key
        if len(problems) >= 8:
            break
    if problems:
        raise InputError("sweep", first_key, "invalid sweep point(s):\n  " + "\n  ".join(problems))
