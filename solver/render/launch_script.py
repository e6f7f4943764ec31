"""A launch script from per-node commands (launch_nodes.py): on one node the commands as they are;
on several nodes one `case "$NODE_RANK"` branch per node, every node's address a NODE_ADDR_<n>
variable the script asks for, so the same file runs on every node."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

from solver.render.launch_nodes import NodeCommand

_VARIABLE = re.compile(r"\$NODE_ADDR_(\d+)")


def shell_word(word: str) -> str:
    """A word as the shell must see it: `"$MODEL"` as given, words with a variable in double quotes
    (the variable expands), anything else quoted by shlex."""
    if len(word) > 1 and word.startswith('"') and word.endswith('"'):
        return word
    if "$" in word:
        return f'"{word}"'
    return shlex.quote(word)


def command_text(command: NodeCommand, indent: str, background: bool) -> str:
    """One command: the program and its leading words on the first line, then a `--flag value`
    per line."""
    env = [f"{k}={shlex.quote(v)}" for k, v in command.env]
    words = list(command.words)
    first = next((i for i, w in enumerate(words) if w.startswith("--")), len(words))
    lines = [" ".join(env + [shell_word(w) for w in words[:first]])]
    for word in words[first:]:
        if word.startswith("--"):
            lines.append(shell_word(word))
        else:
            lines[-1] += " " + shell_word(word)
    return indent + (" \\\n" + indent + "  ").join(lines) + (" &" if background else "")


def _node_lines(commands: Sequence[NodeCommand], indent: str) -> list[str]:
    servers = [c for c in commands if c.server and c.words]
    lines: list[str] = []
    for c in commands:
        if c.note:
            lines.append(f"{indent}# {c.note}")
        if not c.words:
            lines.append(f"{indent}echo {shlex.quote(c.note)}")
            continue
        lines.append(command_text(c, indent, background=c.server and len(servers) > 1))
    if len(servers) > 1:
        lines.append(f"{indent}wait")
    return lines


def script_body(commands: Sequence[NodeCommand]) -> list[str]:
    """The commands of every node; one node runs them directly, several choose by NODE_RANK."""
    nodes = sorted({c.node for c in commands})
    if len(nodes) == 1:
        return _node_lines(commands, "")
    addresses = sorted({int(m) for c in commands for w in c.words for m in _VARIABLE.findall(w)})
    lines = [f'NODE_RANK="${{NODE_RANK:?set NODE_RANK to the number of this node: '
             f'{", ".join(map(str, nodes))} (plan.md, per-GPU map)}}"']
    lines += [f'NODE_ADDR_{n}="${{NODE_ADDR_{n}:?set NODE_ADDR_{n} to the address of node {n}, '
              'reachable from every node}"' for n in addresses]
    lines.append('case "$NODE_RANK" in')
    for node in nodes:
        lines.append(f"  {node})")
        lines += _node_lines([c for c in commands if c.node == node], "    ")
        lines.append("    ;;")
    lines += ["  *)", f'    echo "NODE_RANK=$NODE_RANK: this plan runs on nodes '
              f'{", ".join(map(str, nodes))}" >&2', "    exit 1", "    ;;", "esac"]
    return lines


def node_summary(commands: Sequence[NodeCommand]) -> list[str]:
    """Header comment lines: what each node runs."""
    nodes = sorted({c.node for c in commands})
    if len(nodes) == 1:
        return []
    lines = [f"# Multi-node: run this script on each of nodes {', '.join(map(str, nodes))} with "
             "NODE_RANK set to the node's number and NODE_ADDR_<n> to the addresses it names:"]
    for node in nodes:
        notes = "; ".join(c.note for c in commands if c.node == node and c.note)
        lines.append(f"#   node {node}: {notes}")
    return lines
