"""Read a schedule file and report every problem at once, each with its line and column.

Two passes over one parse: pydantic checks shapes and values (mapped back to positions
through the ruamel.yaml round-trip tree), then cross-reference checks (names, refs)
run on the raw tree, so one bad field never hides another problem.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from bot.calendar import WorkCalendar
from bot.schedule.format import DIGEST_ROLES, PENDING_WORDS, ROLES, ScheduleFile
from bot.texts import phrase

_SEPARATORS = re.compile(r"[、，,；;\s]+")


class _Constructor(RoundTripConstructor):
    """Keeps an impossible date (2022-05-32) as text so it is reported at its position."""

    def construct_yaml_timestamp(self, node: Any, values: Any = None) -> Any:
        try:
            return super().construct_yaml_timestamp(node, values)
        except ValueError:
            return str(self.construct_scalar(node))


_Constructor.add_constructor("tag:yaml.org,2002:timestamp", _Constructor.construct_yaml_timestamp)


def read_yaml(text: str) -> Any:
    """The round-trip tree, which knows the line and column of every key and value."""
    yaml = YAML(typ="rt")
    yaml.Constructor = _Constructor
    return yaml.load(text)


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int
    column: int
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


@dataclass
class Loaded:
    """A parsed file: the spec when it is valid, and everything found wrong with it."""

    path: str
    spec: ScheduleFile | None
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return self.spec is not None and not self.errors


def content_hash(spec: ScheduleFile) -> str:
    canonical = json.dumps(
        spec.model_dump(mode="json", by_alias=True), sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def load_schedule(path: str | Path, *, lang: str | None = None, text: str | None = None) -> Loaded:
    """Parse and validate; ``text`` lets chat uploads validate without a file on disk."""
    name = str(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            return Loaded(name, None, [Problem(name, 1, 1, phrase("validation", "no_file", lang))])
        except UnicodeDecodeError:
            return Loaded(name, None, [Problem(name, 1, 1, phrase("validation", "not_utf8", lang))])
    try:
        tree = read_yaml(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        detail = exc.problem or exc.context or str(exc)
        return Loaded(
            name,
            None,
            [Problem(name, line, col, phrase("validation", "yaml_error", lang, detail=detail))],
        )
    except YAMLError as exc:
        return Loaded(
            name,
            None,
            [Problem(name, 1, 1, phrase("validation", "yaml_error", lang, detail=str(exc)))],
        )
    if not isinstance(tree, CommentedMap):
        return Loaded(name, None, [Problem(name, 1, 1, phrase("validation", "not_mapping", lang))])

    checker = _Checker(name, tree, lang)
    spec: ScheduleFile | None = None
    try:
        spec = ScheduleFile.model_validate(_plain(tree))
    except ValidationError as exc:
        for error in exc.errors():
            checker.pydantic_error(error)
    checker.cross_references()
    if spec is not None and not any(p.severity == "error" for p in checker.problems):
        checker.calendar_warnings(spec)
    problems = sorted(set(checker.problems), key=lambda p: (p.line, p.column, p.message))
    return Loaded(
        name, spec if not any(p.severity == "error" for p in problems) else None, problems
    )


def _plain(node: Any) -> Any:
    """ruamel's round-trip containers and scalars as plain Python values."""
    if isinstance(node, dict):
        return {
            str(k) if not isinstance(k, (int, float, date)) else k: _plain(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, bool) or node is None or isinstance(node, date):
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


def _unwrap(annotation: Any) -> Iterator[Any]:
    """Every concrete type inside Optional/Union/Annotated/list/dict, for finding a model."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        yield from _unwrap(typing.get_args(annotation)[0])
    elif origin in (typing.Union, types.UnionType, list, dict):
        for arg in typing.get_args(annotation):
            yield from _unwrap(arg)
    else:
        yield annotation


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model whose keys are valid at ``loc`` (for "did you mean" hints on unknown keys)."""
    model: type[BaseModel] | None = ScheduleFile
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int) or part not in _aliases(model):
            continue  # list index or dict key: stay on the element's model found below
        annotation = model.model_fields[_aliases(model)[part]].annotation
        model = next(
            (t for t in _unwrap(annotation) if isinstance(t, type) and issubclass(t, BaseModel)),
            None,
        )
    return model


def _aliases(model: type[BaseModel]) -> dict[str, str]:
    return {(f.alias or n): n for n, f in model.model_fields.items()}


class _Checker:
    def __init__(self, file: str, tree: CommentedMap, lang: str | None) -> None:
        self.file = file
        self.tree = tree
        self.lang = lang
        self.problems: list[Problem] = []

    def add(
        self, pos: tuple[int, int], what: str, /, severity: str = "error", **context: Any
    ) -> None:
        message = phrase("validation", what, self.lang, **context)
        if severity == "warning":
            message = phrase("validation", "warning", self.lang, message=message)
        self.problems.append(Problem(self.file, pos[0] + 1, pos[1] + 1, message, severity))

    # -- positions ---------------------------------------------------------------
    def position(self, loc: tuple[Any, ...], *, of_key: bool = False) -> tuple[int, int]:
        node: Any = self.tree
        pos = (0, 0)
        for index, part in enumerate(loc):
            last = index == len(loc) - 1
            if isinstance(node, CommentedMap) and part in node:
                pos = node.lc.key(part) if (last and of_key) else node.lc.value(part)
                if isinstance(node[part], (CommentedMap, CommentedSeq)) and not (last and of_key):
                    # a block value's mark is its first entry; point at the key instead
                    pos = node.lc.key(part)
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
                pos = node.lc.item(part)
                node = node[part]
            else:
                break
        return pos

    # -- pass 1: shapes and values -------------------------------------------------
    def pydantic_error(self, error: Any) -> None:
        loc = tuple(part for part in error["loc"] if not (isinstance(part, str) and "[" in part))
        kind = error["type"]
        ctx = error.get("ctx") or {}
        value = error.get("input")
        if kind == "extra_forbidden":
            key = str(loc[-1])
            model = _model_at(loc[:-1])
            known = list(_aliases(model)) if model else []
            self.add(
                self.position(loc, of_key=True), "unknown_key", key=key, hint=_closest(key, known)
            )
        elif kind == "missing":
            self.add(self.position(loc[:-1]), "missing_key", key=str(loc[-1]))
        elif kind.startswith("date") or kind.startswith("datetime"):
            self.add(self.position(loc), "bad_date", value=value, field=str(loc[-1]))
        elif kind == "literal_error":
            self.add(
                self.position(loc),
                "bad_choice",
                value=value,
                field=str(loc[-1]),
                choices=ctx.get("expected", ""),
            )
        elif kind in ("too_short",) and isinstance(value, list):
            self.add(self.position(loc), "empty_list", field=str(loc[-1]))
        elif kind in ("greater_than_equal", "greater_than"):
            self.add(
                self.position(loc),
                "too_small",
                field=str(loc[-1]),
                value=value,
                limit=ctx.get("ge", ctx.get("gt")),
            )
        elif kind.endswith("_type") or kind.endswith("_parsing"):
            self.add(
                self.position(loc),
                "bad_type",
                field=str(loc[-1]) if loc else "",
                value=value,
                expected=kind.split("_")[0],
            )
        elif kind in _CUSTOM:
            self.add(
                self.position(loc),
                kind,
                **ctx,
            )
        else:
            self.add(
                self.position(loc), "other", field=".".join(map(str, loc)), detail=error["msg"]
            )

    # -- pass 2: cross references ----------------------------------------------------
    def cross_references(self) -> None:
        people = self._names("people")
        units = self._names("units")
        for name in set(people) & set(units):
            self.add(self.tree["units"].lc.key(name), "person_and_unit", name=name)
        for name, spec in self._mapping_items("people"):
            if isinstance(spec, CommentedMap) and isinstance(spec.get("reports_to"), str):
                self.person_ref(("people", name, "reports_to"), spec["reports_to"], people, units)
        for name, spec in self._mapping_items("units"):
            if isinstance(spec, CommentedMap):
                for i, contact in self._list_items(spec, "contacts"):
                    self.person_ref(("units", name, "contacts", i), contact, people, units)
        for i, admin in self._list_items(self.tree, "admins"):
            self.person_ref(("admins", i), admin, people, units)
        self.policy_refs(("policy",), self.tree.get("policy"), people, units)

        seen_refs: dict[str, int] = {}
        tasks = self.tree.get("tasks")
        for t, task in enumerate(tasks if isinstance(tasks, CommentedSeq) else []):
            if not isinstance(task, CommentedMap):
                continue
            ref = task.get("ref")
            if isinstance(ref, (str, int)) and not isinstance(ref, bool):
                ref = str(ref)
                if ref in seen_refs:
                    self.add(
                        self.position(("tasks", t, "ref")),
                        "duplicate_ref",
                        ref=ref,
                        first=seen_refs[ref],
                    )
                else:
                    seen_refs[ref] = self.position(("tasks", t, "ref"))[0] + 1
            self.task_timing(t, task)
            self.task_undated(t, task)
            self.task_reachable(t, task, people)
            for role in ("lead", "responsible"):
                for i, name in self._list_items(task, role):
                    self.person_ref(("tasks", t, role, i), name, people, units)
            for i, name in self._list_items(task, "units"):
                self.unit_ref(("tasks", t, "units", i), name, people, units)
            for i, name in self._list_items(task, "partners"):
                if name not in people and name not in units:
                    self.unknown(("tasks", t, "partners", i), name, people + units, "unknown_name")
            self.policy_refs(("tasks", t, "policy"), task.get("policy"), people, units)

    def task_timing(self, t: int, task: CommentedMap) -> None:
        """Checked on the raw task too, so it is reported even when a field is also wrong."""
        given = [k for k in ("due", "every") if task.get(k) is not None]
        if task.get("ongoing") is True:
            given.append("ongoing")
        if len(given) != 1:
            self.add(self.position(("tasks", t)), "timing", given=given)
        elif given != ["every"] and ("times" in task or "by" in task):
            self.add(self.position(("tasks", t)), "times_without_every")

    def task_undated(self, t: int, task: CommentedMap) -> None:
        """``due: 待定`` is allowed, but nobody is chased until a date is set: say so."""
        due = task.get("due")
        if isinstance(due, str) and due.strip().lower() in PENDING_WORDS:
            ref = task.get("ref", t + 1)
            self.add(
                self.position(("tasks", t, "due")), "undated_task", severity="warning", ref=ref
            )

    def task_reachable(self, t: int, task: CommentedMap, people: list[str]) -> None:
        """Warn when the roster rule (unit contacts + responsible, else lead) finds nobody."""
        units = self.tree.get("units")
        contacts = [
            name
            for _, unit in self._list_items(task, "units")
            if isinstance(units, CommentedMap) and isinstance(units.get(unit), CommentedMap)
            for _, name in self._list_items(units[unit], "contacts")
        ]
        chased = contacts + [n for _, n in self._list_items(task, "responsible")]
        chased = chased or [n for _, n in self._list_items(task, "lead")]
        if not any(name in people for name in chased):
            ref = task.get("ref", t + 1)
            self.add(self.position(("tasks", t)), "nobody_to_remind", severity="warning", ref=ref)

    def policy_refs(
        self, loc: tuple[Any, ...], policy: Any, people: list[str], units: list[str]
    ) -> None:
        if not isinstance(policy, CommentedMap):
            return
        steps = policy.get("escalate")
        for s, step in enumerate(steps if isinstance(steps, CommentedSeq) else []):
            if isinstance(step, CommentedMap):
                for i, name in self._list_items(step, "to"):
                    if name not in ROLES:
                        self.person_ref(
                            (*loc, "escalate", s, "to", i), name, people, units, roles=ROLES
                        )
        digest = policy.get("digest")
        if isinstance(digest, CommentedMap):
            for i, name in self._list_items(digest, "to"):
                if name not in DIGEST_ROLES:
                    self.person_ref(
                        (*loc, "digest", "to", i), name, people, units, roles=DIGEST_ROLES
                    )

    def person_ref(
        self,
        loc: tuple[Any, ...],
        name: str,
        people: list[str],
        units: list[str],
        roles: tuple[str, ...] = (),
    ) -> None:
        if name in people:
            return
        if name in units:
            self.add(self.position(loc), "unit_not_person", name=name)
        elif self._split_known(name, people):
            self.add(
                self.position(loc),
                "names_in_one_string",
                name=name,
                parts=self._split_known(name, people),
            )
        else:
            self.unknown(loc, name, [*people, *roles], "unknown_person")

    def unit_ref(
        self, loc: tuple[Any, ...], name: str, people: list[str], units: list[str]
    ) -> None:
        if name in units:
            return
        if name in people:
            self.add(self.position(loc), "person_not_unit", name=name)
        elif self._split_known(name, units):
            self.add(
                self.position(loc),
                "names_in_one_string",
                name=name,
                parts=self._split_known(name, units),
            )
        else:
            self.unknown(loc, name, units, "unknown_unit")

    def unknown(self, loc: tuple[Any, ...], name: str, known: list[str], key: str) -> None:
        self.add(self.position(loc), key, name=name, hint=_closest(name, known))

    @staticmethod
    def _split_known(name: str, known: list[str]) -> list[str]:
        parts = [p for p in _SEPARATORS.split(name) if p]
        return parts if len(parts) > 1 and all(p in known for p in parts) else []

    def _names(self, key: str) -> list[str]:
        return [str(k) for k, _ in self._mapping_items(key)]

    def _mapping_items(self, key: str) -> list[tuple[Any, Any]]:
        value = self.tree.get(key)
        return list(value.items()) if isinstance(value, CommentedMap) else []

    @staticmethod
    def _list_items(node: CommentedMap, key: str) -> list[tuple[Any, str]]:
        value = node.get(key)
        if isinstance(value, str):
            return [((), value)]  # a single name written as a scalar: position is the key's value
        if isinstance(value, CommentedSeq):
            return [(i, v) for i, v in enumerate(value) if isinstance(v, str)]
        return []

    # -- warnings --------------------------------------------------------------------------
    def calendar_warnings(self, spec: ScheduleFile) -> None:
        if spec.calendar != "cn":
            return
        calendar = WorkCalendar("cn")
        years = sorted({d.year for d in _spec_dates(spec)})
        unknown = [y for y in years if not calendar.known(y)]
        if unknown:
            self.add(
                (0, 0), "calendar_fallback", severity="warning", years="、".join(map(str, unknown))
            )


def _spec_dates(spec: ScheduleFile) -> Iterator[date]:
    for task in spec.tasks:
        for value in (task.due_date, task.start, task.until):
            if value is not None:
                yield value
    if spec.issued_on:
        yield spec.issued_on


def _closest(name: str, known: list[str]) -> str:
    matches = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    return matches[0] if matches else ""


_CUSTOM = {
    "ref_float",
    "bad_ref",
    "bad_every",
    "bad_rrule",
    "bad_by",
    "bad_slug",
    "bad_timezone",
    "bad_hours",
    "bad_window",
    "windows_overlap",
    "bad_time",
    "remind_positive",
    "timing",
    "times_without_every",
    "range_with_due",
    "until_before_from",
}
