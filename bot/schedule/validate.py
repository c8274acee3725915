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
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.constructor import RoundTripConstructor

from bot.calendar import WorkCalendar
from bot.schedule.format import DIGEST_ROLES, PENDING_WORDS, ROLES, ScheduleFile
from bot.schedule.yamltree import MAX_CHARS, MarkedMap, MarkedSeq, TreeError, parse_tree
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
    """The round-trip tree, for editing a draft and writing it back with its comments.

    Validation reads files with :func:`bot.schedule.yamltree.parse_tree`, which is safe on
    hostile input; it reads the text first here too (raising :class:`TreeError`), so the
    round-trip loader never sees an alias bomb or 50,000 nested brackets."""
    parse_tree(text)
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
            if Path(path).stat().st_size > MAX_CHARS:  # refused before it is read
                too_large = TreeError(0, 0, "file_too_large", limit=MAX_CHARS // 2**20)
                return Loaded(name, None, [_tree_problem(name, too_large, lang)])
            text = Path(path).read_text(encoding="utf-8")
        except (FileNotFoundError, IsADirectoryError):
            return Loaded(name, None, [Problem(name, 1, 1, phrase("validation", "no_file", lang))])
        except UnicodeDecodeError as exc:
            line, column = _byte_position(Path(path).read_bytes(), exc.start)
            message = phrase("validation", "not_utf8", lang)
            return Loaded(name, None, [Problem(name, line, column, message)])
    try:
        tree = parse_tree(text)
    except TreeError as exc:
        return Loaded(name, None, [_tree_problem(name, exc, lang)])
    if not isinstance(tree, MarkedMap):
        return Loaded(name, None, [Problem(name, 1, 1, phrase("validation", "not_mapping", lang))])

    checker = _Checker(name, tree, lang)
    spec: ScheduleFile | None = None
    try:
        spec = ScheduleFile.model_validate(_plain(tree))
    except ValidationError as exc:
        for error in exc.errors():
            checker.pydantic_error(error)
    checker.cross_references()
    checker.bounds()
    if spec is not None and not any(p.severity == "error" for p in checker.problems):
        checker.calendar_warnings(spec)
    problems = sorted(set(checker.problems), key=lambda p: (p.line, p.column, p.message))
    return Loaded(
        name, spec if not any(p.severity == "error" for p in problems) else None, problems
    )


def _field_name(loc: tuple[Any, ...]) -> str:
    """``lead[2]`` rather than ``2`` for an item of a list."""
    if not loc:
        return ""
    if isinstance(loc[-1], int) and len(loc) > 1:
        return f"{loc[-2]}[{loc[-1] + 1}]"
    return str(loc[-1])


def _clip(value: Any, limit: int = 60) -> str:
    """A value as the message shows it: long text and big containers cut short."""
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _tree_problem(name: str, exc: TreeError, lang: str | None) -> Problem:
    message = phrase("validation", exc.key, lang, **exc.context)
    return Problem(name, exc.line + 1, exc.column + 1, message)


def _byte_position(data: bytes, index: int) -> tuple[int, int]:
    """LINE and COLUMN (from 1, in characters) of the first byte that is not UTF-8."""
    head = data[:index]
    line_start = head.rfind(b"\n") + 1
    column = len(head[line_start:].decode("utf-8", errors="replace"))
    return head.count(b"\n") + 1, column + 1


def _plain(node: Any) -> Any:
    """The marked containers as plain dicts and lists (keys as text, except numbers and dates)."""
    if isinstance(node, dict):
        return {
            str(k) if not isinstance(k, (int, float, date)) and k is not None else k: _plain(v)
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
    def __init__(self, file: str, tree: MarkedMap, lang: str | None) -> None:
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
            if isinstance(node, MarkedMap) and part not in node:
                # pydantic names a key that is not text (null:, 5:) by its text
                part = next((k for k in node if str(part) in (str(k), repr(k))), part)
            if isinstance(node, MarkedMap) and part in node:
                pos = node.key_at(part) if (last and of_key) else node.value_at(part)
                if isinstance(node[part], (MarkedMap, MarkedSeq)) and not (last and of_key):
                    # a block value's mark is its first entry; point at the key instead
                    pos = node.key_at(part)
                node = node[part]
            elif isinstance(node, MarkedSeq) and isinstance(part, int) and 0 <= part < len(node):
                pos = node.item_at(part)
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
        if "[key]" in error["loc"]:
            self.add(self.position(loc, of_key=True), "bad_key", key=str(loc[-1]))
        elif kind == "extra_forbidden":
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
        elif kind in ("less_than_equal", "less_than"):
            self.add(
                self.position(loc),
                "too_large",
                field=str(loc[-1]),
                value=value,
                limit=ctx.get("le", ctx.get("lt")),
            )
        elif kind in ("greater_than_equal", "greater_than"):
            self.add(
                self.position(loc),
                "too_small",
                field=str(loc[-1]),
                value=value,
                limit=ctx.get("ge", ctx.get("gt")),
            )
        elif kind.endswith(("_type", "_parsing")) or kind in ("int_from_float", "finite_number"):
            self.add(
                self.position(loc),
                "bad_type",
                field=_field_name(loc),
                value=_clip(value),
                expected="int"
                if kind in ("int_from_float", "finite_number")
                else kind.split("_")[0],
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
            self.add(self.tree["units"].key_at(name), "person_and_unit", name=name)
        for name, spec in self._mapping_items("people"):
            if isinstance(spec, MarkedMap) and isinstance(spec.get("reports_to"), str):
                self.person_ref(("people", name, "reports_to"), spec["reports_to"], people, units)
        for name, spec in self._mapping_items("units"):
            if isinstance(spec, MarkedMap):
                for i, contact in self._list_items(spec, "contacts"):
                    self.person_ref(("units", name, "contacts", i), contact, people, units)
        for i, admin in self._list_items(self.tree, "admins"):
            self.person_ref(("admins", i), admin, people, units)
        self.policy_refs(("policy",), self.tree.get("policy"), people, units)

        seen_refs: dict[str, int] = {}
        tasks = self.tree.get("tasks")
        for t, task in enumerate(tasks if isinstance(tasks, MarkedSeq) else []):
            if not isinstance(task, MarkedMap):
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

    def task_timing(self, t: int, task: MarkedMap) -> None:
        """Checked on the raw task too, so it is reported even when a field is also wrong."""
        given = [k for k in ("due", "every") if task.get(k) is not None]
        if task.get("ongoing") is True:
            given.append("ongoing")
        if len(given) != 1:
            self.add(self.position(("tasks", t)), "timing", given=given)
        elif given != ["every"] and ("times" in task or "by" in task):
            self.add(self.position(("tasks", t)), "times_without_every")

    def task_undated(self, t: int, task: MarkedMap) -> None:
        """``due: 待定`` is allowed, but nobody is chased until a date is set: say so."""
        due = task.get("due")
        if isinstance(due, str) and due.strip().lower() in PENDING_WORDS:
            ref = task.get("ref", t + 1)
            self.add(
                self.position(("tasks", t, "due")), "undated_task", severity="warning", ref=ref
            )

    def task_reachable(self, t: int, task: MarkedMap, people: list[str]) -> None:
        """Warn when the roster rule (unit contacts + responsible, else lead) finds nobody."""
        units = self.tree.get("units")
        contacts = [
            name
            for _, unit in self._list_items(task, "units")
            if isinstance(units, MarkedMap) and isinstance(units.get(unit), MarkedMap)
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
        if not isinstance(policy, MarkedMap):
            return
        steps = policy.get("escalate")
        for s, step in enumerate(steps if isinstance(steps, MarkedSeq) else []):
            if isinstance(step, MarkedMap):
                for i, name in self._list_items(step, "to"):
                    if name not in ROLES:
                        self.person_ref(
                            (*loc, "escalate", s, "to", i), name, people, units, roles=ROLES
                        )
        digest = policy.get("digest")
        if isinstance(digest, MarkedMap):
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
        return list(value.items()) if isinstance(value, MarkedMap) else []

    @staticmethod
    def _list_items(node: MarkedMap, key: str) -> list[tuple[Any, str]]:
        value = node.get(key)
        if isinstance(value, str):
            return [((), value)]  # a single name written as a scalar: position is the key's value
        if isinstance(value, MarkedSeq):
            return [(i, v) for i, v in enumerate(value) if isinstance(v, str)]
        return []

    # -- pass 3: bounds (README, "Schedule format extensions") -----------------------------
    def bounds(self) -> None:
        """Sizes, name lengths and dates that would stop planning or the store, as errors."""
        for key, limit in LIMITS.items():
            value = self.tree.get(key)
            if isinstance(value, (MarkedMap, MarkedSeq)) and len(value) > limit:
                self.add(
                    self.position((key,), of_key=True),
                    "too_many",
                    field=key,
                    count=len(value),
                    limit=limit,
                )
        for key, limit in (("people", NAME_LIMITS["person"]), ("units", NAME_LIMITS["unit"])):
            for name in self._names(key):
                if len(name) > limit:
                    self.add(
                        self.tree[key].key_at(name),
                        "name_too_long",
                        name=name[:40] + "…",
                        limit=limit,
                    )
        dated = list(self._dates())
        low, high = date_window(self._reference_year(dated))
        for loc, value in dated:
            if not low <= value <= high:
                self.add(
                    self.position(loc),
                    "date_out_of_range",
                    field=str(loc[-1] if isinstance(loc[-1], str) else loc[-2]),
                    value=value.isoformat(),
                    low=low.isoformat(),
                    high=high.isoformat(),
                )
        holidays = {v for loc, v in dated if loc[0] == "holidays"}
        for loc, value in dated:
            if loc[0] == "workdays" and value in holidays:
                self.add(self.position(loc), "holiday_and_workday", value=value.isoformat())
        tasks = self.tree.get("tasks")
        for t, task in enumerate(tasks if isinstance(tasks, MarkedSeq) else []):
            ref = task.get("ref") if isinstance(task, MarkedMap) else None
            if isinstance(ref, str) and len(ref) > NAME_LIMITS["ref"]:
                self.add(
                    self.position(("tasks", t, "ref")),
                    "name_too_long",
                    name=ref[:40] + "…",
                    limit=NAME_LIMITS["ref"],
                )

    def _dates(self) -> Iterator[tuple[tuple[Any, ...], date]]:
        """Every date the file gives, with where it stands."""
        if _is_date(self.tree.get("issued_on")):
            yield ("issued_on",), _day(self.tree["issued_on"])
        for key in ("holidays", "workdays"):
            values = self.tree.get(key)
            for i, value in enumerate(values if isinstance(values, MarkedSeq) else []):
                if _is_date(value):
                    yield (key, i), _day(value)
        tasks = self.tree.get("tasks")
        for t, task in enumerate(tasks if isinstance(tasks, MarkedSeq) else []):
            if isinstance(task, MarkedMap):
                for key in ("due", "from", "until"):
                    if _is_date(task.get(key)):
                        yield ("tasks", t, key), _day(task[key])

    def _reference_year(self, dated: list[tuple[tuple[Any, ...], date]]) -> int | None:
        """The schedule's year: issued_on's, else the year most of its task dates fall in."""
        issued = self.tree.get("issued_on")
        if _is_date(issued):
            return _day(issued).year
        years = Counter(v.year for loc, v in dated if loc[0] == "tasks")
        return max(years, key=lambda y: (years[y], -y)) if years else None

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


LIMITS = {"people": 20_000, "units": 5_000, "tasks": 20_000}
NAME_LIMITS = {"person": 100, "unit": 200, "ref": 20}  # the store's column widths
YEARS_BEFORE, YEARS_AFTER = 5, 10  # dates allowed around the schedule's year
FIRST_YEAR, LAST_YEAR = 2000, 2099  # and never outside these, whatever the schedule's year


def date_window(year: int | None) -> tuple[date, date]:
    """The dates a schedule of ``year`` may name: year-5 .. year+10, within 2000..2099."""
    low, high = FIRST_YEAR, LAST_YEAR
    if year is not None and FIRST_YEAR <= year <= LAST_YEAR:
        low, high = max(low, year - YEARS_BEFORE), min(high, year + YEARS_AFTER)
    return date(low, 1, 1), date(high, 12, 31)


def _is_date(value: Any) -> bool:
    return isinstance(value, date)


def _day(value: date) -> date:
    return value.date() if isinstance(value, datetime) else value


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
    "remind_range",
    "rrule_sub_daily",
    "rrule_count",
    "timing",
    "times_without_every",
    "range_with_due",
    "until_before_from",
}
