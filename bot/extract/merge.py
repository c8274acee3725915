"""The notice body and its attached table often list the same numbered items: join them.

Two items are one when their numbers match and their texts share enough wording
((一) in the body is 1. in the table).  The body's （…） tail and the table row then
both contribute owners; the body usually carries the deadline, the table the measures.
"""

from __future__ import annotations

from bot.extract.raw import RawItem, Unplaced

_MIN_OVERLAP = 0.3


def _bigrams(text: str) -> set[str]:
    text = "".join(ch for ch in text[:120] if "\u4e00" <= ch <= "\u9fff")
    return {text[i : i + 2] for i in range(len(text) - 1)}


def similar(a: str, b: str, threshold: float = _MIN_OVERLAP) -> bool:
    """Shared character pairs over the shorter text: robust to the light rewording between
    a notice body and its table ("是否", "各级")."""
    x, y = _bigrams(a), _bigrams(b)
    if not x or not y:
        return False
    return len(x & y) / min(len(x), len(y)) >= threshold


def merge_items(prose: list[RawItem], table: list[RawItem]) -> tuple[list[RawItem], list[Unplaced]]:
    """Table items in table order, each joined with its prose twin; lone prose items kept."""
    if not table:
        return prose, []
    if not prose:
        return table, []
    by_number: dict[int, list[RawItem]] = {}
    for item in table:
        if item.parent is None:
            by_number.setdefault(item.number, []).append(item)
    unplaced: list[Unplaced] = []
    lone: list[RawItem] = []
    for item in prose:
        if item.parent is not None:  # "3.(2)": its number is not the table's item 2
            lone.append(item)
            continue
        twins = [t for t in by_number.get(item.number, []) if t.other is None]
        twin = next((t for t in twins if similar(item.text, t.text)), None)
        if twin is not None:
            twin.other = item
        elif twins:
            unplaced.append(Unplaced(item.line, item.text, "number_taken"))
        else:
            lone.append(item)
    return [*table, *lone], unplaced
