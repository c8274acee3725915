"""Schedule YAML read into plain values that remember their line and column, safely.

A schedule file comes from whoever uploads it, so reading it must stay cheap whatever it
holds: the tree is built iteratively from the parser's events (no recursive constructor, so
50,000 nested brackets cost one error, not a RecursionError), nesting is capped, aliases may
add only a small number of nodes in total (an alias bomb is refused at the alias that
exceeds the budget), integers are counted before they are converted, and NUL bytes and lone
surrogates are refused before the parser sees them.

Plain scalars resolve as the YAML 1.2 core schema does in ruamel.yaml, which read these
files before: ``on``/``yes`` stay text, ``08:30`` stays text, ``1e8`` is a float,
``017`` is 17, an impossible date (2022-05-32) stays text so it is reported where it stands.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import yaml

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it

MAX_CHARS = 8 * 1024 * 1024  # a 10,000-task list is about 1.5 MB
MAX_DEPTH = 64  # the format needs 6 levels; anything deeper is not a schedule
ALIAS_BUDGET = 10_000  # nodes all aliases together may add (a few shared policies fit)
MAX_NODES = 2_000_000  # values and containers in the whole file, after aliases
MAX_ENTRIES = 50_000  # items of one list or mapping (the people and tasks caps are lower)
MAX_DIGITS = 18  # every integer of the format fits; int() never sees a 4,000-digit number


class TreeError(Exception):
    """A problem that stops reading: ``key`` names the message, positions count from 0."""

    def __init__(self, line: int, column: int, what: str, /, **context: Any) -> None:
        super().__init__(what)
        self.line, self.column, self.key, self.context = line, column, what, context


class MarkedMap(dict):  # type: ignore[type-arg]
    """A mapping that knows where each key and each value stands in the file."""

    __slots__ = ("at", "keys_at", "values_at")

    def __init__(self, at: tuple[int, int]) -> None:
        super().__init__()
        self.at = at
        self.keys_at: dict[Any, tuple[int, int]] = {}
        self.values_at: dict[Any, tuple[int, int]] = {}

    def key_at(self, key: Any) -> tuple[int, int]:
        return self.keys_at.get(key, self.at)

    def value_at(self, key: Any) -> tuple[int, int]:
        return self.values_at.get(key, self.at)


class MarkedSeq(list):  # type: ignore[type-arg]
    """A sequence that knows where each item stands in the file."""

    __slots__ = ("at", "items_at")

    def __init__(self, at: tuple[int, int]) -> None:
        super().__init__()
        self.at = at
        self.items_at: list[tuple[int, int]] = []

    def item_at(self, index: int) -> tuple[int, int]:
        return self.items_at[index] if 0 <= index < len(self.items_at) else self.at


# -- YAML 1.2 core scalars, as ruamel.yaml's resolver has them ------------------------------
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_INT = re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?[0-9_]+|[-+]?0x[0-9a-fA-F_]+)$")
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_DATE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})$")
_TIMESTAMP = re.compile(
    r"""^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:[Tt]|[ \t]+)([0-9]{1,2})
    :([0-9]{2}):([0-9]{2})(?:\.([0-9]*))?
    (?:[ \t]*(Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?$""",
    re.X,
)
_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")
_CORE = "tag:yaml.org,2002:"


def _position(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index)
    return line, index - (text.rfind("\n", 0, index) + 1)


def check_characters(text: str) -> None:
    """NUL and lone surrogates break the parser, the encoder and PostgreSQL: refuse them here."""
    found = _BAD_CHARS.search(text)
    if found:
        line, column = _position(text, found.start())
        raise TreeError(line, column, "bad_character", code=f"U+{ord(found.group()):04X}")


def _int(text: str, at: tuple[int, int]) -> int:
    digits = text.replace("_", "")
    sign = -1 if digits[:1] == "-" else 1
    digits = digits.lstrip("+-")
    base = 10
    if digits[:2] in ("0b", "0x", "0o"):
        base = {"0b": 2, "0x": 16, "0o": 8}[digits[:2]]
        digits = digits[2:]
    if len(digits.lstrip("0")) > MAX_DIGITS:
        raise TreeError(*at, "number_too_long", value=text[:40], limit=MAX_DIGITS)
    if not digits:
        raise TreeError(*at, "bad_number", value=text)
    return sign * int(digits, base)


def _float(text: str) -> float:
    value = text.replace("_", "").lower()
    if value.endswith((".inf", ".nan")):
        return float(value.replace(".", ""))
    return float(value)


def _timestamp(text: str) -> Any:
    """A date (or a date and time); an impossible one stays text, reported as a bad date."""
    try:
        plain = _DATE.match(text)
        if plain:
            return date(int(plain[1]), int(plain[2]), int(plain[3]))
        full = _TIMESTAMP.match(text)
        if full is None:
            return text
        year, month, day, hour, minute, second = (int(full[i]) for i in range(1, 7))
        micro = int((full[7] or "0")[:6].ljust(6, "0"))
        zone = None
        if full[8]:
            if full[8] == "Z":
                zone = UTC
            else:
                hours, _, minutes = full[8][1:].partition(":")
                offset = timedelta(hours=int(hours), minutes=int(minutes or 0))
                zone = timezone(-offset if full[8][0] == "-" else offset)
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=zone)
    except ValueError:
        return text


def resolve_plain(text: str, at: tuple[int, int]) -> Any:
    """An untagged plain scalar's value under the YAML 1.2 core schema (ruamel's order)."""
    first = text[:1]
    if first in "tTfF" and first and _BOOL.match(text):
        return text in ("true", "True", "TRUE")
    if first and first in "-+0123456789.":
        if _FLOAT.match(text):
            return _float(text)
        if _INT.match(text):
            return _int(text, at)
    if first in ("", "~", "n", "N") and _NULL.match(text):
        return None
    if first and first in "0123456789" and (_DATE.match(text) or _TIMESTAMP.match(text)):
        return _timestamp(text)
    return text


def _scalar(event: Any, at: tuple[int, int]) -> Any:
    value = event.value
    if event.style == '"' and _BAD_CHARS.search(value):  # "\0" or "\ud800" escapes
        found = _BAD_CHARS.search(value)
        assert found is not None
        raise TreeError(*at, "bad_character", code=f"U+{ord(found.group()):04X}")
    tag = event.tag
    if tag is None:
        return resolve_plain(value, at) if event.implicit[0] and not event.style else value
    if tag in ("!", _CORE + "str"):
        return value
    if tag == _CORE + "int" and _INT.match(value):
        return _int(value, at)
    if tag == _CORE + "float" and (_FLOAT.match(value) or _INT.match(value)):
        return _float(value)
    if tag == _CORE + "bool" and _BOOL.match(value):
        return value in ("true", "True", "TRUE")
    if tag == _CORE + "null" and _NULL.match(value):
        return None
    if tag == _CORE + "timestamp" and (_DATE.match(value) or _TIMESTAMP.match(value)):
        return _timestamp(value)
    raise TreeError(*at, "bad_tag", tag=tag, value=value[:40])


class _Frame:
    """One open mapping or sequence while the tree is built."""

    __slots__ = ("anchor", "has_key", "key", "key_at", "key_is_merge", "merges", "node", "size")

    def __init__(self, node: Any, anchor: str | None) -> None:
        self.node = node
        self.key: Any = None
        self.key_at = (0, 0)
        self.has_key = False
        self.key_is_merge = False  # the pending key is the merge key `<<` (plain, untagged)
        self.size = 1
        self.anchor = anchor
        self.merges: list[tuple[MarkedMap, tuple[int, int]]] = []


_OPEN = object()  # an anchor whose node is still being read: an alias to it is recursive


def parse_tree(text: str) -> Any:
    """The file as MarkedMap / MarkedSeq / plain scalars; raises :class:`TreeError`."""
    if len(text) > MAX_CHARS:
        raise TreeError(0, 0, "file_too_large", limit=MAX_CHARS // (1024 * 1024))
    check_characters(text)
    try:
        return _build(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line, mark.column) if mark else (0, 0)
        raise TreeError(line, column, "yaml_error", detail=exc.problem or exc.context) from None
    except yaml.reader.ReaderError as exc:
        line, column = _position(text, max(exc.position, 0))
        raise TreeError(line, column, "yaml_error", detail=exc.reason) from None
    except yaml.YAMLError as exc:
        raise TreeError(0, 0, "yaml_error", detail=str(exc).splitlines()[0]) from None


def _build(text: str) -> Any:
    stack: list[_Frame] = []
    anchors: dict[str, Any] = {}
    sizes: dict[str, int] = {}
    root: Any = None
    documents = 0
    nodes = 0
    aliased = 0

    def place(value: Any, at: tuple[int, int], size: int) -> None:
        nonlocal root, nodes
        nodes += size
        if nodes > MAX_NODES:
            raise TreeError(*at, "too_many_nodes", limit=MAX_NODES)
        if not stack:
            root = value
            return
        frame = stack[-1]
        frame.size += size
        node = frame.node
        if len(node) >= MAX_ENTRIES:
            raise TreeError(*at, "too_many_entries", limit=MAX_ENTRIES)
        if isinstance(node, MarkedSeq):
            node.append(value)
            node.items_at.append(at)
        elif not frame.has_key:
            if isinstance(value, (MarkedMap, MarkedSeq)):
                raise TreeError(*at, "complex_key")
            frame.key, frame.key_at, frame.has_key = value, at, True
        else:
            key, frame.has_key = frame.key, False
            if key == "<<" and frame.key_is_merge:
                sources = value if isinstance(value, MarkedSeq) else [value]
                if not all(isinstance(s, MarkedMap) for s in sources):
                    raise TreeError(*frame.key_at, "bad_merge")
                frame.merges.extend((s, frame.key_at) for s in sources)
                return
            if key in node:
                raise TreeError(
                    *frame.key_at,
                    "duplicate_key",
                    key=str(key)[:40],
                    first=node.keys_at[key][0] + 1,
                )
            node[key] = value
            node.keys_at[key] = frame.key_at
            node.values_at[key] = at

    for event in yaml.parse(text, Loader=_Loader):
        kind = type(event)
        mark = event.start_mark
        at = (mark.line, mark.column) if mark is not None else (0, 0)
        if kind is yaml.ScalarEvent:
            value = _scalar(event, at)
            if stack and isinstance(stack[-1].node, MarkedMap) and not stack[-1].has_key:
                stack[-1].key_is_merge = (
                    event.tag is None and not event.style and event.value == "<<"
                )
            if event.anchor:
                anchors[event.anchor], sizes[event.anchor] = value, 1
            place(value, at, 1)
        elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
            if len(stack) >= MAX_DEPTH:
                raise TreeError(*at, "too_deep", limit=MAX_DEPTH)
            if event.tag not in (None, "!", _CORE + "map", _CORE + "seq", _CORE + "omap"):
                raise TreeError(*at, "bad_tag", tag=event.tag, value="")
            if stack and isinstance(stack[-1].node, MarkedMap) and not stack[-1].has_key:
                stack[-1].key_is_merge = False
            node = MarkedMap(at) if kind is yaml.MappingStartEvent else MarkedSeq(at)
            if event.anchor:
                anchors[event.anchor] = _OPEN
            stack.append(_Frame(node, event.anchor))
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            frame = stack.pop()
            node = frame.node
            for source, key_at in frame.merges:  # explicit keys win over merged ones
                for key, value in source.items():
                    if key not in node:
                        node[key] = value
                        node.keys_at[key] = source.keys_at.get(key, key_at)
                        node.values_at[key] = source.values_at.get(key, key_at)
            if frame.anchor:
                anchors[frame.anchor], sizes[frame.anchor] = node, frame.size
            nodes -= frame.size - 1  # its contents were counted as they came
            place(node, node.at, frame.size)
        elif kind is yaml.AliasEvent:
            target = anchors.get(event.anchor)
            if target is None and event.anchor not in anchors:
                raise TreeError(*at, "unknown_alias", name=event.anchor)
            if target is _OPEN:
                raise TreeError(*at, "recursive_alias", name=event.anchor)
            if stack and isinstance(stack[-1].node, MarkedMap) and not stack[-1].has_key:
                stack[-1].key_is_merge = False
            size = sizes[event.anchor]
            aliased += size
            if aliased > ALIAS_BUDGET:
                raise TreeError(*at, "alias_budget", name=event.anchor, limit=ALIAS_BUDGET)
            place(target, at, size)
        elif kind is yaml.DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise TreeError(*at, "several_documents")
    return root
