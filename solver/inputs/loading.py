"""Safe reading of YAML/JSON files into plain data, and pydantic errors turned into user messages.

Hostile input is expected: files are size-capped, YAML anchors/aliases (billion-laughs) and
non-standard tags are refused, nesting depth is bounded, and every failure is an InputError that
names the file, the key path and the reason.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from solver.errors import InputError

MAX_FILE_BYTES = 2_000_000
MAX_NESTING_DEPTH = 32
MAX_YAML_NODES = 100_000  # a real condition has hundreds; per-layer expert loads some ten thousand
MAX_REPORTED_PROBLEMS = 20
PRESCAN_MIN_CHARS = 20_000  # below this the pure-Python parser refuses in milliseconds anyway

_MERGE_TAG = "tag:yaml.org,2002:merge"
# SafeLoader extras with no place in a condition: refused like any unknown tag.
_REFUSED_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("binary", "set", "omap", "pairs")}


class _NoAliasSafeLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors and aliases (the vehicle of YAML expansion bombs), merge
    keys, duplicate keys, !!binary/!!set/!!omap/!!pairs, nesting deeper than MAX_NESTING_DEPTH
    (before Python's recursion limit is reached) and documents of more than MAX_YAML_NODES nodes
    (the pure-Python parser needs seconds for a 2 MB flow list). Dates stay strings."""

    yaml_constructors = {tag: constructor
                         for tag, constructor in yaml.SafeLoader.yaml_constructors.items()
                         if tag not in _REFUSED_TAGS}

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        event, refuse = self.peek_event(), yaml.composer.ComposerError
        if isinstance(event, yaml.AliasEvent):
            raise refuse(None, None, "aliases are not allowed", event.start_mark)
        if getattr(event, "anchor", None) is not None:
            raise refuse(None, None, "anchors are not allowed", event.start_mark)
        self._nodes += 1
        if self._nodes > MAX_YAML_NODES:
            raise refuse(None, None, f"more than {MAX_YAML_NODES} values in one file",
                         event.start_mark)
        if self._depth > MAX_NESTING_DEPTH:
            raise refuse(None, None, f"nesting deeper than {MAX_NESTING_DEPTH} levels",
                         event.start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    raise yaml.constructor.ConstructorError(
                        None, None, "merge keys (<<) are not allowed", key_node.start_mark)
                key = self.construct_object(key_node, deep=deep)
                try:
                    first = seen.get(key)
                except TypeError:
                    continue  # unhashable: SafeConstructor reports it
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (first given on line {first})",
                        key_node.start_mark)
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _max_int_digits() -> int:
    """Python's limit on the digits of an integer read from text (0: none, before 3.11)."""
    return int(getattr(sys, "get_int_max_str_digits", lambda: 0)())


def _too_long_integer(digits: int) -> str:
    return f"an integer of {digits} digits (the limit is {_max_int_digits()})"


def _construct_int(loader: _NoAliasSafeLoader, node: Any) -> Any:
    try:
        return yaml.SafeLoader.construct_yaml_int(loader, node)
    except ValueError:
        digits = sum(ch.isdigit() for ch in str(node.value))
        raise yaml.constructor.ConstructorError(None, None, _too_long_integer(digits),
                                                node.start_mark) from None


_NoAliasSafeLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_NoAliasSafeLoader.add_constructor("tag:yaml.org,2002:timestamp",
                                   yaml.SafeLoader.construct_yaml_str)
# YAML 1.1 (PyYAML) reads 1e30 and 5e-1 as strings; YAML 1.2 and JSON read them as numbers.
_NoAliasSafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def _refuse_before_parsing(text: str) -> None:
    """Refuse what _NoAliasSafeLoader.compose_node refuses (anchors, aliases, more than
    MAX_YAML_NODES values, nesting deeper than MAX_NESTING_DEPTH), with the same messages, by
    walking libyaml's C event stream first: it reaches the 100,001st value of a 2 MB file in about
    60 ms where the pure-Python parser needs 2-3 s. Malformed YAML is left to the full parser, whose
    messages are the ones users see; without libyaml this step is skipped."""
    c_loader = getattr(yaml, "CSafeLoader", None)
    if c_loader is None or len(text) < PRESCAN_MIN_CHARS:
        return
    refuse = yaml.composer.ComposerError
    nodes = depth = 0
    node_events = (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent, yaml.AliasEvent)
    try:
        for event in yaml.parse(text, Loader=c_loader):
            if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
                continue
            if not isinstance(event, node_events):
                continue
            if isinstance(event, yaml.AliasEvent):
                raise refuse(None, None, "aliases are not allowed", event.start_mark)
            if getattr(event, "anchor", None) is not None:
                raise refuse(None, None, "anchors are not allowed", event.start_mark)
            nodes += 1
            if nodes > MAX_YAML_NODES:
                raise refuse(None, None, f"more than {MAX_YAML_NODES} values in one file",
                             event.start_mark)
            if depth > MAX_NESTING_DEPTH:
                raise refuse(None, None, f"nesting deeper than {MAX_NESTING_DEPTH} levels",
                             event.start_mark)
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
    except refuse:
        raise
    except yaml.YAMLError:
        return  # malformed: the full parser reports it


def _check_depth(value: Any, source: str, depth: int = 0, path: str = "") -> None:
    """Nesting depth, string keys and finite numbers, each error with its key path."""
    if depth > MAX_NESTING_DEPTH:
        raise InputError(source, path, f"nesting deeper than {MAX_NESTING_DEPTH} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InputError(source, f"{path}.{key!r}" if path else repr(key),
                                 "keys must be strings")
            _check_depth(item, source, depth + 1, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_depth(item, source, depth + 1, f"{path}[{i}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise InputError(source, path, f"non-finite number {value!r} is not allowed")


def read_text(path: Path) -> str:
    source = str(path)
    if not path.exists():
        raise InputError(source, "", "file not found")
    if not path.is_file():
        raise InputError(source, "", "not a regular file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise InputError(source, "", f"file is {size} bytes; the limit is {MAX_FILE_BYTES}")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(source, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise InputError(source, "", f"cannot read: {exc.strerror}") from None


def parse_mapping(text: str, source: str) -> dict[str, Any]:
    """Parse YAML (JSON is YAML) into a dict, refusing anything that is not a plain mapping."""
    if "\x00" in text:
        raise InputError(source, "", "binary content (NUL bytes) is not a condition file")
    is_json = source.endswith(".json")
    try:
        if is_json:
            data = json.loads(text, object_pairs_hook=_refuse_duplicates)
        else:
            _refuse_before_parsing(text)
            data = yaml.load(text, Loader=_NoAliasSafeLoader)  # noqa: S506 - safe loader subclass
    except json.JSONDecodeError as exc:
        raise InputError(source, f"line {exc.lineno}", f"invalid JSON: {exc.msg}") from None
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else "?"
        raise InputError(source, f"line {line}", f"invalid YAML: {exc.problem}") from None
    except (RecursionError, ValueError) as exc:
        if not is_json:
            raise InputError(source, "", f"invalid YAML: {exc}") from None
        raise _json_limit_error(text, source, exc) from None
    except (yaml.YAMLError, OverflowError) as exc:
        raise InputError(source, "", f"invalid {'JSON' if is_json else 'YAML'}: {exc}") from None
    if data is None:
        raise InputError(source, "", "the file is empty")
    if not isinstance(data, dict):
        raise InputError(source, "", f"expected a mapping of keys at the top, got {type(data).__name__}")
    _check_depth(data, source)
    return data


def _json_limit_error(text: str, source: str, exc: Exception) -> InputError:
    """A JSON document beyond Python's limits (nesting, integer digits), with the line where it
    first goes beyond them; the decoder itself does not say where."""
    limit = _max_int_digits()
    too_long = re.search(rf"\d{{{limit + 1},}}", text) if limit else None
    if too_long and not isinstance(exc, RecursionError):
        line = text.count("\n", 0, too_long.start()) + 1
        return InputError(source, f"line {line}",
                          f"invalid JSON: {_too_long_integer(too_long.end() - too_long.start())}")
    depth, quoted, escaped = 0, False, False
    for at, ch in enumerate(text):
        if escaped:  # the character after a backslash inside a string
            escaped = False
        elif quoted:
            escaped, quoted = ch == "\\", ch != '"'
        elif ch == '"':
            quoted = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_NESTING_DEPTH:
                line = text.count("\n", 0, at) + 1
                return InputError(source, f"line {line}",
                                  f"invalid JSON: nesting deeper than {MAX_NESTING_DEPTH} levels")
        elif ch in "]}":
            depth -= 1
    return InputError(source, "", f"invalid JSON: {exc}")


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise ValueError(f"duplicate key {key!r}")
        data[key] = value
    return data


def read_mapping(path: Path) -> dict[str, Any]:
    return parse_mapping(read_text(path), str(path))


def _location(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for part in loc:
        if isinstance(part, str) and not part.isprintable():
            part = repr(part)  # no raw control characters (terminal escapes) in messages
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif parts:
            parts.append(f".{part}")
        else:
            parts.append(str(part))
    return "".join(parts)


def _field_names(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Valid keys at `loc` (the parent of an unknown key) by walking the pydantic model."""
    current: Any = model
    for part in loc:
        fields = getattr(current, "model_fields", None)
        if fields is None or not isinstance(part, str) or part not in fields:
            return []
        annotation = fields[part].annotation
        current = _first_model(annotation)
        if current is None:
            return []
    fields = getattr(current, "model_fields", None)
    return list(fields) if fields else []


def _first_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _first_model(arg)
        if found is not None:
            return found
    return None


def _clean_location(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The key path without pydantic's union-branch and validator tags."""
    loc = tuple(p for p in loc if not (isinstance(p, str) and p.startswith("function-")))
    return tuple(p for p in loc if p not in ("str", "int", "float", "dict[str,any]"))


def _without_other_branches(errors: list[Any]) -> list[Any]:
    """A union (`gpu: NAME | {card}`) reports every branch; when one branch got further (an inline
    mapping whose field is wrong), the other branch's type error at the same key (`Input should be
    a valid string`) is noise: only the deeper errors are kept."""
    locations = [_clean_location(e["loc"]) for e in errors]
    return [e for e, loc in zip(errors, locations, strict=True)
            if not (e["type"].endswith("_type") and isinstance(e.get("input"), dict)
                    and any(len(other) > len(loc) and other[:len(loc)] == loc
                            for other in locations))]


def validation_error(exc: ValidationError, source: str, model: type[BaseModel]) -> InputError:
    """One InputError listing every problem, each with its key path and a did-you-mean hint."""
    lines: list[str] = []
    first_key = ""
    errors = _without_other_branches(exc.errors())
    for error in errors[:MAX_REPORTED_PROBLEMS]:
        loc = _clean_location(error["loc"])
        key = _location(loc) or "(top level)"
        reason = error["msg"]
        if error["type"] == "extra_forbidden":
            valid = _field_names(model, loc[:-1])
            guess = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.6)
            reason = "unknown key"
            if guess:
                reason += f"; did you mean '{guess[0]}'?"
            elif valid:
                reason += f"; valid keys here: {', '.join(valid)}"
        elif error["type"] == "missing":
            reason = "required key is missing"
        elif "input" in error and error["type"] not in ("value_error",):
            shown = repr(error["input"])
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            reason = f"{reason} (got {shown})"
        reason = reason.removeprefix("Value error, ")
        first_key = first_key or key
        lines.append(f"{key}: {reason}")
    if len(errors) > len(lines):
        lines.append(f"... and {len(errors) - len(lines)} more")
    if len(lines) == 1:
        return InputError(source, first_key, lines[0].split(": ", 1)[1])
    return InputError(source, first_key, "invalid values:\n  " + "\n  ".join(lines))
