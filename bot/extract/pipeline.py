"""Document → :class:`Extraction`: meta, items with their facts, and what was left over."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from bot.extract.blocks import Document, Para
from bot.extract.dates import find_dates
from bot.extract.frequency import find_frequencies
from bot.extract.items import ROLE_NAMES, Item, Note, build_item
from bot.extract.labels import OWNER_ROLES
from bot.extract.limits import MAX_ITEMS, DocumentRefused
from bot.extract.merge import merge_items
from bot.extract.meta import FOUND, Meta, document_meta
from bot.extract.numbering import parse_number
from bot.extract.owners import Kind, classify, split_joined, split_names
from bot.extract.prose import prose_items
from bot.extract.raw import RawItem, Unplaced
from bot.extract.reader import read_document
from bot.extract.tables import table_items

Progress = Callable[[str, int, int], None]


@dataclass
class Extraction:
    name: str
    meta: Meta
    items: list[Item]
    unplaced: list[Unplaced] = field(default_factory=list)
    size: int = 0  # paragraphs + table rows read
    year_found: bool = True


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


def extract_file(
    path: Path,
    *,
    year: int | None = None,
    fallback_year: int = 2022,
    progress: Progress | None = None,
) -> Extraction:
    """Read and extract a file; see :func:`extract_document`."""
    return extract_document(
        read_document(path), year=year, fallback_year=fallback_year, progress=progress
    )


def extract_document(
    doc: Document,
    *,
    year: int | None = None,
    fallback_year: int = 2022,
    progress: Progress | None = None,
) -> Extraction:
    """Find the items of a read document and read each one's facts.

    ``year`` (given by the user) beats the year found in the document; ``fallback_year``
    is used only when neither exists, and the draft says so.
    """
    report = progress or _no_progress
    meta = document_meta(doc, year)
    year_found = meta.year_source in FOUND
    if meta.year is None:
        meta = replace(meta, year=fallback_year)
    use_year = meta.year or fallback_year
    tabled, unplaced = table_items(doc.tables)
    # beside a table of items, numbered prose without owners is narrative about the table
    prose, prose_leftovers = prose_items(doc.paras, strict=bool(tabled))
    raws, taken = merge_items(prose, tabled)
    if len(raws) > MAX_ITEMS:
        raise DocumentRefused("items", count=len(raws), limit=MAX_ITEMS)
    unplaced = [*unplaced, *taken]
    read_names = _name_reader(raws)
    items: list[Item] = []
    for index, raw in enumerate(raws, 1):
        items.append(build_item(raw, use_year, read_names, year_known=year_found))
        report("items", index, len(raws))
    _settle_kinds(items)
    _flag_unsure_names(items)
    _assign_refs(items)
    if items:
        # numbered paragraphs anywhere; plain ones only after the first item (not the
        # preamble, whose dates are the notice's own)
        first = min(i.lines[0] for i in items)
        kept = [p for p in prose_leftovers if p.line > first or parse_number(p.text)]
        unplaced.extend(_leftovers(kept, use_year))
    else:
        unplaced.extend(
            Unplaced(p.line, p.text, "no_items") for p in prose_leftovers if parse_number(p.text)
        )
    unplaced.sort(key=lambda u: u.line)
    return Extraction(doc.name, meta, items, unplaced, doc.size, year_found)


def _name_reader(raws: list[RawItem]) -> Callable[[str], list[tuple[str, Kind]]]:
    """Split owner fields, then split names run together ("委安委办办公室") using the names
    the document writes separately elsewhere."""
    known: set[str] = set()
    for raw in raws:
        for item in (raw, raw.other) if raw.other else (raw,):
            for fields in [item.fields, *(p.fields for p in item.parts)]:
                for role in OWNER_ROLES:
                    for value in fields.get(role, []):
                        known.update(split_names(value))

    def read(value: str) -> list[tuple[str, Kind]]:
        out: list[tuple[str, Kind]] = []
        for name in split_names(value):
            for piece in split_joined(name, known):
                out.append((piece, classify(piece)))
        return out

    return read


def _settle_kinds(items: list[Item]) -> None:
    """One name is a person or a unit throughout: a name used both ways follows its form."""
    as_person = {n for i in items for r in ("lead", "responsible") for n in i.owners.get(r)}
    as_unit = {n for i in items for n in i.owners.units}
    for name in as_person & as_unit:
        to_units = classify(name) is Kind.UNIT
        for item in items:
            owners = item.owners
            if to_units:
                for role in ("lead", "responsible"):
                    if name in owners.get(role):
                        owners.get(role).remove(name)
                        owners.add("units", name)
            elif name in owners.units:
                owners.units.remove(name)
                owners.add("responsible", name)


def _flag_unsure_names(items: list[Item]) -> None:
    """Names that read as neither a person nor a unit: the reviewer decides."""
    for item in items:
        unsure = [n for n in item.owners.names() if classify(n) is Kind.UNKNOWN]
        if unsure:
            item.notes.append(Note("name_kind_unsure", (("names", "、".join(unsure)),)))


def _assign_refs(items: list[Item]) -> None:
    """Refs are the numbers as written; where numbers repeat, the main sequence keeps them.

    The main sequence is the numbering form most items use; if that form itself restarts
    in each part, the part holding most of its items (at least 60 %) is the main one
    ("二、重点任务" 1.–8. beside "三、保障措施" 1.–3.).  Every other item whose number is
    taken becomes "part.number" ("3.2", part 三、; the part is the numbered heading right
    above, （二） when 1. numbers again under each （一）).  When no part dominates, every ref is
    "part.number".
    """
    qualified = {i.ref for i in items if "." in i.ref}  # measures under a heading: "3.2"
    items = [i for i in items if "." not in i.ref]
    numbers = [i.number for i in items]
    if len(set(numbers)) == len(numbers) or not items:
        return
    main_level = Counter(i.level for i in items).most_common(1)[0][0]
    at_level = [i for i in items if i.level == main_level]
    main = at_level
    if len({i.number for i in at_level}) != len(at_level):
        section, size = Counter(i.part for i in at_level).most_common(1)[0]
        main = [i for i in at_level if i.part == section]
        if size < 0.6 * len(at_level) or len({i.number for i in main}) != len(main):
            main = []
    keep = {id(i) for i in main}
    seen: set[str] = {str(i.number) for i in main} | qualified
    # a part whose numbers collide with the main ones is qualified as a whole
    colliding = {(i.part, i.level) for i in items if id(i) not in keep and str(i.number) in seen}
    for item in items:
        if id(item) in keep:
            continue
        if main and (item.part, item.level) not in colliding and str(item.number) not in seen:
            seen.add(str(item.number))
            continue
        ref = f"{item.part or 0}.{item.number}"
        while ref in seen:
            ref += ".1"
        item.ref = ref
        seen.add(ref)
        item.notes.append(Note("ref_with_section"))


def _leftovers(paras: list[Para], year: int) -> list[Unplaced]:
    """Numbered paragraphs outside the items that still state a date or a frequency."""
    out = []
    for para in paras:
        if find_dates(para.text, year) or find_frequencies(para.text):
            out.append(Unplaced(para.line, para.text, "not_an_item"))
    return out


__all__ = ["ROLE_NAMES", "Extraction", "extract_document", "extract_file"]
