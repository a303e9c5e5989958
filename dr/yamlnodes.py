"""YAML with line numbers, and the problem collector: the one loader behind dr.yaml and runbooks.

Every value knows the line it starts on, so every problem can name its place. Problems are
collected, never raised one by one: `Problems.raise_if_any` raises one ConfigError (exit 2) that
lists them all in file order, one per line, each shaped

    <file>:<line>: <key path>: <what is wrong>

(`dr.yaml:14: rds[0].retention.daily: expected a whole number >= 0, got 'seven'`). Unknown keys
get a did-you-mean. The error's `problems` attribute holds the same lines as a list.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from dr.errors import ConfigError

__all__ = ["Node", "Problems", "did_you_mean", "join", "show"]


@dataclass
class Node:
    """A YAML value and the line it starts on; mappings hold dict[str, Node], lists list[Node]."""

    value: Any
    line: int
    key_lines: dict[str, int] = field(default_factory=dict)

    def plain(self) -> Any:
        """The value with the line numbers stripped (plain dicts, lists, scalars)."""
        if isinstance(self.value, dict):
            return {k: v.plain() for k, v in self.value.items()}
        if isinstance(self.value, list):
            return [v.plain() for v in self.value]
        return self.value


def join(path: str, key: str) -> str:
    """A key path one level down: `rds[0]` + `retention` -> `rds[0].retention`."""
    return f"{path}.{key}" if path else key


def show(value: Any) -> str:
    """A value as a problem message shows it (containers by kind, scalars by repr)."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def did_you_mean(word: str, choices: Sequence[str]) -> str | None:
    """`did you mean 'x'?` for the closest of `choices`, or None when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean {close[0]!r}?" if close else None


class Problems:
    """The problems of one file, as (line, order, message); and the line-numbered tree of its text.

    `file` is the name messages start with (dr.yaml shows its base name, a runbook its path)."""

    def __init__(self, file: str):
        self.file = file
        self.problems: list[tuple[int, int, str]] = []
        self._constructor = yaml.constructor.SafeConstructor()

    # -- collecting and raising --

    def add(self, path: str, line: int, text: str) -> None:
        """One problem at `line`; `path` (the key path, may be empty) leads the message."""
        what = f"{path}: {text}" if path else text
        self.problems.append((line, len(self.problems), f"{self.file}:{line}: {what}"))

    def bad(self, path: str, node: Node, expected: str) -> None:
        self.add(path, node.line, f"{expected}, got {show(node.value)}")

    def messages(self) -> list[str]:
        return [message for _, _, message in sorted(self.problems)]

    def raise_if_any(self, hint: str | None = None) -> None:
        if self.problems:
            lines = self.messages()
            error = ConfigError("\n".join(lines), hint=hint)
            error.problems = lines
            raise error

    # -- loading --

    def load(self, text: str) -> Node | None:
        """The document's root node (None for an empty document); a syntax error raises ConfigError
        at once, since nothing after it can be read."""
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as e:
            raise ConfigError(self._syntax_message(e)) from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{self.file}: YAML syntax error: {e}") from None
        return None if root is None else self._tree(root, "")

    def _syntax_message(self, e: yaml.MarkedYAMLError) -> str:
        mark = e.problem_mark or e.context_mark
        what = e.problem or "invalid YAML"
        if e.context:
            what = f"{what} {e.context}"
        if "alias" in what:
            what += "; quote values that start with '*', like schedule: \"*/15 * * * *\""
        if mark is None:
            return f"{self.file}: YAML syntax error: {what}"
        return f"{self.file}:{mark.line + 1}: YAML syntax error: {what} (column {mark.column + 1})"

    def _tree(self, ynode: yaml.Node, path: str, depth: int = 0) -> Node:
        line = ynode.start_mark.line + 1
        if depth > 50:
            self.add(path, line, "nested too deeply (a recursive YAML alias?)")
            return Node(None, line)
        if isinstance(ynode, yaml.MappingNode):
            return self._mapping_tree(ynode, path, line, depth)
        if isinstance(ynode, yaml.SequenceNode):
            return Node([self._tree(n, f"{path}[{i}]", depth + 1) for i, n in enumerate(ynode.value)], line)
        try:
            return Node(self._constructor.construct_object(ynode, deep=True), line)
        except yaml.YAMLError as e:
            self.add(path, line, f"cannot read this value ({getattr(e, 'problem', None) or e})")
            return Node(None, line)

    def _mapping_tree(self, ynode: yaml.MappingNode, path: str, line: int, depth: int) -> Node:
        try:
            self._constructor.flatten_mapping(ynode)  # YAML merge keys (<<: *base)
        except yaml.YAMLError as e:
            self.add(path, line, f"cannot merge keys here ({getattr(e, 'problem', None) or e})")
        node = Node({}, line)
        for knode, vnode in ynode.value:
            key_line = knode.start_mark.line + 1
            if not isinstance(knode, yaml.ScalarNode):
                self.add(path or "(top level)", key_line, "expected a plain key name, got a mapping or list as key")
                continue
            key = knode.value
            if key in node.value:
                self.add(join(path, key), key_line, f"duplicate key (already set on line {node.key_lines[key]})")
                continue
            node.value[key] = self._tree(vnode, join(path, key), depth + 1)
            node.key_lines[key] = key_line
        return node

    # -- shapes --

    def unknown_keys(self, path: str, node: Node, allowed: Sequence[str],
                     hints: dict[str, str] | None = None, where: str = "") -> None:
        """Report each key of mapping `node` not in `allowed`, with a did-you-mean (or the
        message in `hints` for that key); `where` names the mapping when a key path cannot
        (a runbook's `step 'db': `)."""
        for key, key_line in node.key_lines.items():
            if key not in allowed:
                hint = (hints or {}).get(key) or did_you_mean(key, allowed) or \
                    f"expected one of: {', '.join(allowed)}"
                self.add(where + join(path, key), key_line, f"unknown key; {hint}")

    def mapping(self, path: str, node: Node, allowed: Sequence[str], expected: str) -> dict[str, Node] | None:
        """node's mapping (unknown keys reported with a did-you-mean), or None after a type error."""
        if not isinstance(node.value, dict):
            self.bad(path, node, expected)
            return None
        self.unknown_keys(path, node, allowed)
        return node.value

    def required(self, path: str, node: Node, key: str) -> Node | None:
        """The child `key` of mapping `node`, or None after reporting it missing (at node's line)."""
        child = node.value.get(key)
        if child is None:
            self.add(join(path, key), node.line, "required key is missing")
        return child

    def section(self, top: Node, key: str, allowed: Sequence[str], expected: str,
                required: bool = True) -> tuple[Node | None, dict[str, Node] | None]:
        """A top-level mapping section: (node, its mapping) or (None, None) if absent/null/wrong."""
        node = self.required("", top, key) if required else top.value.get(key)
        if node is None or (node.value is None and not required):
            return None, None
        return node, self.mapping(key, node, allowed, expected)
