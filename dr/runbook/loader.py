"""Runbook YAML -> a validated Runbook. Everything is checked before anything runs.

Every problem is collected (dr.yamlnodes, the loader dr.yaml uses too), then one
ConfigError lists them all in file order as `<file>:<line>: <key path>: <what is wrong>`
(exit 2). Checked: the file's shape and keys, step ids (format, duplicates), step types
(did-you-mean), parameters (unknown with did-you-mean, missing, wrong type, the type's own
`validate`), `needs` (unknown ids), `${...}` references
(syntax; unknown steps, outputs, config paths, run keys and params), and cycles (named).
A `${steps.X...}` reference makes the step depend on X: it is added to `needs` for you.
The format is documented in runbooks/FORMAT.md.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dr.errors import ConfigError
from dr.runbook import dag, params as step_params
from dr.runbook.model import PHASES, Runbook, Step
from dr.runbook.refs import Deferred, Ref, RefError, find_refs, resolve, scan, undefer
from dr.runbook.scope import RUN_KEYS, Scope, as_seconds, check_config_type_path, config_value
from dr.runbook.steps.base import DYNAMIC_OUTPUTS, StepType
from dr.yamlnodes import Node, Problems

TOP_KEYS = ("version", "name", "description", "params", "steps")
STEP_KEYS = ("id", "type", "needs", "with", "timeout", "retries", "retry_delay", "teardown",
             "rto_end", "description")
_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_NAME = re.compile(r"[a-z][a-z0-9-]{0,39}")


def load_runbook(path: str | Path, config: Any = None,
                 registry: Mapping[str, type[StepType]] | None = None) -> Runbook:
    """Read and validate a runbook file. With `config` (a dr.Config), `${config...}` values
    and each type's `validate` are checked against it; without, config paths are checked
    against the Config model only."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"runbook {path} not found",
                          hint="pass --runbook PATH (the shipped ones are in runbooks/)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read runbook {path}: {e}") from None
    return parse_runbook(text, str(path), config, registry)


def parse_runbook(text: str, source: str = "runbook.yaml", config: Any = None,
                  registry: Mapping[str, type[StepType]] | None = None) -> Runbook:
    if registry is None:
        from dr.runbook.steps import REGISTRY as registry
    return _Loader(source, config, registry).load(text)


class _Loader:
    def __init__(self, source: str, config: Any, registry: Mapping[str, type[StepType]]):
        self.source, self.config, self.registry = source, config, registry
        self.problems = Problems(source)
        self.runbook_params: dict[str, Any] = {}
        self.with_lines: dict[str, tuple[int, dict[str, int]]] = {}  # step id -> (with line, key lines)
        self.declared: dict[str, int] = {}  # every step id in the file -> its line

    def add(self, line: int, text: str) -> None:
        self.problems.add("", line, text)

    def raise_if_any(self) -> None:
        self.problems.raise_if_any(hint="`dr runbook describe TYPE` shows a step type's parameters and an example")

    def keys(self, node: Node, allowed: tuple[str, ...], where: str) -> None:
        hints = {key: "a step's parameters go under 'with'" for key in ("params", "parameters", "args")
                 if "with" in allowed}
        self.problems.unknown_keys("", node, allowed, hints, where)

    # -- the file -----------------------------------------------------------------------------

    def load(self, text: str) -> Runbook:
        root = self.problems.load(text)
        if root is None or not isinstance(root.value, dict):
            self.add(root.line if root else 1, "expected a mapping with version, name and steps")
            self.raise_if_any()
        self.keys(root, TOP_KEYS, "")
        top = root.value
        self._version(root)
        name = self._name(root)
        params = self.runbook_params = self._runbook_params(top.get("params"))
        nodes = self._step_nodes(root)
        self.declared = self._declared_ids(nodes)
        built = [s for s in map(self._step, nodes) if s is not None]
        steps = [s for s in built if self.declared.get(s.id) == s.line]  # the first of duplicates
        self._graph(steps)
        self.raise_if_any()
        dag_steps = tuple(s for s in steps if s.phase is None)
        hooks = tuple(s for s in steps if s.phase is not None)
        description = top.get("description")
        return Runbook(name=name, source=self.source, steps=dag_steps, hooks=hooks, params=params,
                       description=str(description.value) if description and description.value else "",
                       digest=hashlib.sha256(text.encode()).hexdigest())

    def _version(self, root: Node) -> None:
        node = root.value.get("version")
        if node is None:
            self.add(root.line, "required key 'version' is missing (write version: 1)")
        elif type(node.value) is not int or node.value != 1:
            self.add(node.line, f"version: expected 1 (the only runbook version), got {node.value!r}")

    def _name(self, root: Node) -> str:
        node = root.value.get("name")
        if node is None:
            self.add(root.line, "required key 'name' is missing (e.g. name: drill)")
            return ""
        if not (isinstance(node.value, str) and _NAME.fullmatch(node.value)):
            self.add(node.line, f"name: expected lowercase letters, digits and '-', got {node.value!r}")
            return ""
        return node.value

    def _runbook_params(self, node: Node | None) -> dict[str, Any]:
        if node is None or node.value is None:
            return {}
        if not isinstance(node.value, dict):
            self.add(node.line, "params: expected a mapping of names to default values")
            return {}
        for key, child in node.value.items():
            if not _ID.fullmatch(key):
                self.add(node.key_lines[key], f"params: {key!r} is not a valid name (letters, digits, '_', '-')")
            try:
                has_refs = bool(find_refs(child.plain()))
            except RefError:
                has_refs = True
            if has_refs:
                self.add(child.line, f"params.{key}: a default is a literal value, not a reference")
        return node.plain()

    def _step_nodes(self, root: Node) -> list[Node]:
        node = root.value.get("steps")
        if node is None:
            self.add(root.line, "required key 'steps' is missing")
            return []
        if not isinstance(node.value, list) or not node.value:
            self.add(node.line, "steps: expected a non-empty list of steps")
            return []
        good = []
        for item in node.value:
            if isinstance(item.value, dict):
                good.append(item)
            else:
                self.add(item.line, "a step is a mapping with at least id and type")
        return good

    # -- one step -----------------------------------------------------------------------------

    def _step(self, node: Node) -> Step | None:
        items = node.value
        id_node = items.get("id")
        step_id = id_node.value if id_node is not None else None
        where = f"step {step_id!r}: " if isinstance(step_id, str) else "step: "
        self.keys(node, STEP_KEYS, where)
        if id_node is None:
            self.add(node.line, "step: required key 'id' is missing")
        elif not (isinstance(step_id, str) and _ID.fullmatch(step_id)):
            self.add(id_node.line, f"step id {step_id!r}: expected a letter then letters, digits, '_' or '-'")
        type_cls = self._type(node, where)
        with_node = items.get("with")
        given = self._with(with_node, where)
        options = self._options(items, where)
        needs = self._needs(items.get("needs"), where)
        if type_cls is None or not isinstance(step_id, str):
            return None
        if step_id not in self.with_lines:
            self.with_lines[step_id] = (with_node.line if with_node is not None else node.line,
                                        dict(with_node.key_lines) if with_node is not None else {})
        try:
            phase = type_cls.phase({k: v.plain() for k, v in given.items()})
        except Exception:  # noqa: BLE001 - the type's own validation reports bad values
            phase = None
        return Step(id=step_id, type=type_cls.name, type_cls=type_cls,
                    params={k: v.plain() for k, v in given.items()}, needs=tuple(needs),
                    explicit_needs=tuple(needs), phase=phase if phase in PHASES else None,
                    line=node.line, **options)

    def _type(self, node: Node, where: str) -> type[StepType] | None:
        type_node = node.value.get("type")
        if type_node is None:
            self.add(node.line, f"{where}required key 'type' is missing")
            return None
        name = type_node.value
        if name in self.registry:
            return self.registry[name]
        close = difflib.get_close_matches(str(name), list(self.registry), n=1)
        hint = f"did you mean {close[0]!r}?" if close else "`dr runbook describe` lists the types"
        self.add(type_node.line, f"{where}unknown step type {name!r}; {hint}")
        return None

    def _with(self, node: Node | None, where: str) -> dict[str, Node]:
        if node is None or node.value is None:
            return {}
        if not isinstance(node.value, dict):
            self.add(node.line, f"{where}with: expected a mapping of parameters")
            return {}
        return node.value

    def _options(self, items: dict[str, Node], where: str) -> dict[str, Any]:
        options: dict[str, Any] = {}
        for key in ("timeout", "retry_delay"):
            if key in items and items[key].value is not None:
                try:
                    options[key] = as_seconds(items[key].value)
                except (ValueError, TypeError) as e:
                    self.add(items[key].line, f"{where}{key}: {e}")
        for key in ("teardown", "rto_end"):
            if key in items:
                if isinstance(items[key].value, bool):
                    options[key] = items[key].value
                else:
                    self.add(items[key].line, f"{where}{key}: expected true or false, got {items[key].value!r}")
        if "retries" in items:
            value = items["retries"].value
            if type(value) is int and 0 <= value <= 20:
                options["retries"] = value
            else:
                self.add(items["retries"].line, f"{where}retries: expected a whole number from 0 to 20, got {value!r}")
        if "description" in items and items["description"].value is not None:
            options["description"] = str(items["description"].value)
        return options  # bad values are reported; the defaults stand in so checking goes on

    def _needs(self, node: Node | None, where: str) -> list[str]:
        if node is None or node.value is None:
            return []
        values = [node] if isinstance(node.value, str) else node.value if isinstance(node.value, list) else None
        if values is None or not all(isinstance(v.value, str) for v in values):
            self.add(node.line, f"{where}needs: expected a step id or a list of step ids")
            return []
        return list(dict.fromkeys(v.value for v in values))

    def _declared_ids(self, nodes: list[Node]) -> dict[str, int]:
        """Every step id in the file (even of steps with other problems) -> its first line;
        a second use is reported."""
        first: dict[str, int] = {}
        for node in nodes:
            id_node = node.value.get("id")
            if id_node is None or not isinstance(id_node.value, str):
                continue
            if id_node.value in first:
                self.add(id_node.line, f"duplicate step id {id_node.value!r} (first used on line "
                                       f"{first[id_node.value]})")
            else:
                first[id_node.value] = node.line
        return first

    # -- across steps: needs, references, parameters, cycles ---------------------------------

    def _graph(self, steps: list[Step]) -> None:
        by_id = {s.id: s for s in steps}
        for i, s in enumerate(steps):
            for dep in s.explicit_needs:
                if dep not in by_id and dep in self.declared:
                    continue  # that step has problems of its own, reported there
                if dep not in by_id:
                    close = difflib.get_close_matches(dep, list(self.declared), n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    self.add(s.line, f"step {s.id!r}: needs unknown step {dep!r}{hint}")
                elif by_id[dep].phase is not None:
                    self.add(s.line, f"step {s.id!r}: needs {dep!r}, a hook (at: {by_id[dep].phase}) "
                                     "that runs outside the DAG")
            if s.phase is not None and s.explicit_needs:
                self.add(s.line, f"step {s.id!r}: a hook (at: {s.phase}) cannot have needs")
            implied = self._refs(s, by_id)
            needs = tuple(dict.fromkeys((*[d for d in s.explicit_needs if d in by_id], *implied)))
            steps[i] = s = dataclasses.replace(s, needs=needs)
            self._step_params(s)
        graph = {s.id: s.needs for s in steps if s.phase is None}
        for cycle in dag.find_cycles(graph):
            self.add(by_id[cycle[0]].line, f"cycle in needs: {' -> '.join(cycle)}")

    def _refs(self, step: Step, by_id: dict[str, Step]) -> list[str]:
        """Check every reference in `with`; return the steps it implies a dependency on."""
        implied = []
        for line, ref in self._ref_nodes(step):
            problem = self._ref_problem(step, ref, by_id)
            if problem:
                self.add(line, f"step {step.id!r}: {problem}")
            elif ref.namespace == "steps":
                implied.append(ref.path[0])
        return implied

    def _line(self, step: Step, param: str | None = None) -> int:
        with_line, key_lines = self.with_lines.get(step.id, (step.line, {}))
        return key_lines.get(param, with_line) if param else with_line

    def _ref_nodes(self, step: Step) -> list[tuple[int, Ref]]:
        found = []
        for name, value in step.params.items():
            line = self._line(step, name)
            refs, errors = scan(value)
            for error in errors:
                self.add(line, f"step {step.id!r}: with.{name}: {error}")
            found.extend((line, ref) for ref in refs)
        return found

    def _ref_problem(self, step: Step, ref: Ref, by_id: dict[str, Step]) -> str | None:
        if ref.namespace == "steps":
            target = by_id.get(ref.path[0])
            if target is None and ref.path[0] in self.declared:
                return None  # that step has problems of its own, reported there
            if target is None:
                close = difflib.get_close_matches(ref.path[0], list(self.declared), n=1)
                return f"{ref.text} names unknown step {ref.path[0]!r}" + \
                    (f"; did you mean {close[0]!r}?" if close else "")
            if step.phase is not None:
                return f"{ref.text}: a hook (at: {step.phase}) cannot use step outputs"
            if target.phase is not None:
                return f"{ref.text}: {ref.path[0]!r} is a hook; hooks have no outputs to use"
            declared = self._output_names(target)
            if len(ref.path) > 1 and DYNAMIC_OUTPUTS not in declared and ref.path[1] not in declared:
                close = difflib.get_close_matches(ref.path[1], list(declared), n=1)
                hint = f"did you mean {close[0]!r}?" if close else \
                    f"its outputs: {', '.join(declared) or 'none'}"
                return f"{ref.text}: step {target.id!r} ({target.type}) has no output {ref.path[1]!r}; {hint}"
            return None
        if ref.namespace == "config":
            if self.config is None:
                return check_config_type_path(ref.path)
            try:
                config_value(self.config, ref.path)
            except RefError as e:
                return str(e) if str(e).startswith("${") else f"{ref.text}: {e}"
            return None
        if ref.namespace == "run" and ref.path[0] not in RUN_KEYS:
            close = difflib.get_close_matches(ref.path[0], RUN_KEYS, n=1)
            return f"{ref.text}: run has no {ref.path[0]!r}" + \
                (f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(RUN_KEYS)})")
        if ref.namespace == "params" and ref.path[0] not in self.runbook_params:
            known = list(self.runbook_params)
            close = difflib.get_close_matches(ref.path[0], known, n=1)
            return f"{ref.text}: no runbook param {ref.path[0]!r}" + \
                (f"; did you mean {close[0]!r}?" if close else
                 f" (declare it under params:{' known: ' + ', '.join(known) if known else ''})")
        return None

    def _output_names(self, step: Step) -> tuple[str, ...]:
        if self.config is None:
            return tuple(step.type_cls.outputs)
        preview = {k: undefer(self._preview(v)[0]) for k, v in step.params.items()
                   if not self._has_error(v)}
        try:
            return tuple(step.type_cls().output_names(preview, self.config))
        except Exception:  # noqa: BLE001 - a bad parameter is reported by _step_params
            return tuple(step.type_cls.outputs)

    def _has_error(self, value: Any) -> bool:
        try:
            self._preview(value)
        except RefError:
            return True
        return False

    def _step_params(self, step: Step) -> None:
        """Unknown, missing and mistyped parameters, then the type's own cross-field checks,
        on a preview where step outputs are still Deferred."""
        where = f"step {step.id!r} ({step.type}): "
        for name, hint in step_params.unknown_names(step.type_cls, step.params).items():
            self.add(self._line(step, name), f"{where}unknown parameter {name!r}; {hint}")
        preview, deferred = {}, set()
        for name, value in step.params.items():
            try:
                value, has_deferred = self._preview(value)
            except RefError as e:
                if not scan(value)[1]:  # malformed references are reported already
                    self.add(self._line(step, name), f"{where}with.{name}: {e}")
                value, has_deferred = Deferred(Ref("run", ("id",))), True
            preview[name] = value
            if has_deferred and isinstance(value, str):
                deferred.add(name)  # text around a run-time value: checked when the step runs
        converted, problems = step_params.apply(step.type_cls, preview, skip=frozenset(deferred))
        for name, problem in problems.items():
            self.add(self._line(step, name if name in step.params else None), f"{where}{name}: {problem}")
        if problems or self.config is None:
            return  # cross-field checks need well-typed values and the config
        try:
            messages = step.type_cls().validate(undefer(converted), self.config)
        except Exception as e:  # noqa: BLE001 - a validator bug must not hide the other problems
            messages = [f"validation failed: {type(e).__name__}: {e}"]
        for message in messages:
            self.add(self._line(step), f"{where}{message}")

    def _preview(self, value: Any) -> tuple[Any, bool]:
        seen = []
        scope = Scope(config=self.config, params=self.runbook_params, preview=True)

        def lookup(ref: Ref) -> Any:
            try:
                found = scope.lookup(ref)
            except RefError:
                found = Deferred(ref)  # already reported by _refs
            if isinstance(found, Deferred):
                seen.append(ref)
            return found

        return resolve(value, lookup), bool(seen)
