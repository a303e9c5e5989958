"""YAML with line numbers: every value knows the line it starts on, so errors can say `file:line`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from dr.errors import ConfigError


@dataclass
class Node:
    """A YAML value and its line; mappings hold dict[str, Node], sequences list[Node]."""

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


class Composer:
    """Turns YAML text into a Node tree; structural problems go to `problems` as (line, text)."""

    def __init__(self, source: str):
        self.source = source
        self.problems: list[tuple[int, str]] = []
        self._constructor = yaml.constructor.SafeConstructor()

    def load(self, text: str) -> Node | None:
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            where = f"{self.source}:{mark.line + 1}" if mark else self.source
            raise ConfigError(f"{where}: YAML syntax error: {e.problem or 'invalid YAML'}"
                              f"{' ' + e.context if e.context else ''}") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{self.source}: YAML syntax error: {e}") from None
        return None if root is None else self._tree(root, 0)

    def _tree(self, ynode: yaml.Node, depth: int) -> Node:
        line = ynode.start_mark.line + 1
        if depth > 50:
            self.problems.append((line, "nested too deeply (a recursive YAML alias?)"))
            return Node(None, line)
        if isinstance(ynode, yaml.MappingNode):
            return self._mapping(ynode, line, depth)
        if isinstance(ynode, yaml.SequenceNode):
            return Node([self._tree(n, depth + 1) for n in ynode.value], line)
        try:
            return Node(self._constructor.construct_object(ynode, deep=True), line)
        except yaml.YAMLError as e:
            self.problems.append((line, f"cannot read this value ({getattr(e, 'problem', None) or e})"))
            return Node(None, line)

    def _mapping(self, ynode: yaml.MappingNode, line: int, depth: int) -> Node:
        try:
            self._constructor.flatten_mapping(ynode)  # merge keys (<<: *base)
        except yaml.YAMLError as e:
            self.problems.append((line, f"cannot merge keys here ({getattr(e, 'problem', None) or e})"))
        node = Node({}, line)
        for knode, vnode in ynode.value:
            key_line = knode.start_mark.line + 1
            if not isinstance(knode, yaml.ScalarNode):
                self.problems.append((key_line, "expected a plain key name, got a mapping or list"))
                continue
            key = knode.value
            if key in node.value:
                self.problems.append((key_line, f"duplicate key {key!r} (already set on line "
                                                f"{node.key_lines[key]})"))
                continue
            node.value[key] = self._tree(vnode, depth + 1)
            node.key_lines[key] = key_line
        return node
