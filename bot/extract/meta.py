"""What the document says about itself: title, issuer, date of issue, year, an id."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date

from bot.extract.blocks import Document, Para, Table
from bot.extract.dates import find_dates

_DATE = (
    r"(?:(?:20\d\d|二[〇零][一二三四五六七八九〇零]{2})\s*年\s*[\d一二三四五六七八九十]{1,3}\s*月"
    r"\s*[\d一二三四五六七八九十]{1,3}\s*日"
    # as a web page or a converted file writes it: 2023-03-05, 2023/3/5, 2023.3.5
    r"|20\d\d-[01]?\d-[0-3]?\d|20\d\d/[01]?\d/[0-3]?\d|20\d\d\.[01]?\d\.[0-3]?\d)"
)
# the signature's date line, or the 版记's "某某办公室　2023年2月16日印发"
DATE_LINE = re.compile(
    rf"^\s*(?:{_DATE}|(?:\S{{2,40}}[\s\u3000]+)?{_DATE}\s*(?:印发|签发|发布))\s*$"
)
_DOC_NUMBER_YEAR = re.compile(r"[〔［\[（(【]\s*(20\d\d)\s*[〕］\]）)】]")
_YEAR = re.compile(r"(20\d\d)\s*年")
_ISSUER_END = re.compile(
    r"(委员会|人民政府|政府|办公室|局|委|办|中心|党委|党组|厅|院|公司|街道办事处|管委会)$"
)
_TITLE_WORDS = re.compile(
    r"清单|分工|分解|任务表|责任表|一览表|台账|任务措施|方案|通知|意见|要点|计划|安排|细则|办法"
)
_TITLE_BEFORE = re.compile(r"关于|落实|贯彻|印发|推进|开展")
_HEADING = re.compile(r"^[#\s]+")


@dataclass(frozen=True)
class Meta:
    title: str
    issued_by: str | None
    issued_on: date | None
    year: int | None
    schedule_id: str
    year_source: str = "fallback"  # see document_year


def schedule_id(name: str) -> str:
    """A stable ASCII id from the file name (000_69e3….txt → 000-69e3…), to be edited by the
    reviewer; a name without ASCII letters or digits gets a short hash instead."""
    stem = name.rsplit(".", 1)[0] if "." in name else name
    slug = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")[:80]
    if not slug or not slug[0].isalnum():
        slug = "draft-" + hashlib.sha1(stem.encode("utf-8")).hexdigest()[:8]
    return slug


def _issue_date(paras: list[Para], year_hint: int) -> tuple[int, date] | None:
    """The last paragraph that is only a date (the signature's date line): (index, date)."""
    found = None
    for index, para in enumerate(paras):
        if DATE_LINE.match(para.text):
            hits = find_dates(para.text, year_hint, field=True)
            if hits:
                found = (index, hits[0].value)
    return found


_PUBLISHED = re.compile(r"(?:发布|印发|成文|公开)(?:日期|时间)\s*[：:]\s*(20\d\d)\s*[-/.年]")
_TITLE_YEAR = re.compile(r"(20\d\d)\s*年")
_YEAR_RANGE = re.compile(r"20\d\d\s*年?\s*[—\-－~～至]")

# Where the year came from.  The first five are the document's own word; the rest are
# guesses, which the draft says (header and per-task notes).
GIVEN, TITLE, ISSUED, NUMBER, PUBLISHED = "given", "title", "issued", "number", "published"
METADATA, MENTIONED, FALLBACK = "metadata", "mentioned", "fallback"
FOUND = frozenset({GIVEN, TITLE, ISSUED, NUMBER, PUBLISHED})


def document_year(doc: Document, title: str = "") -> tuple[int | None, str]:
    """The year the list is for, and where it was read.

    A year in the title ("2023年安全生产重点任务清单") names the plan's year even when it
    was issued the December before; then the issue date, the document number (〔2022〕), a
    web page's 发布时间; never the latest date in a cell.  Without any of these: the file's
    creation year (.docx/.xlsx), else the most mentioned year — both guesses.
    """
    paras = doc.paras
    years_in_title = set(_TITLE_YEAR.findall(title)) if _TITLE_WORDS.search(title) else set()
    if len(years_in_title) == 1 and not _YEAR_RANGE.search(title):
        return int(years_in_title.pop()), TITLE
    dated = _issue_date(paras, 2000)
    if dated:
        return dated[1].year, ISSUED
    head = "\n".join(p.text for p in paras[:40])
    number = _DOC_NUMBER_YEAR.search(head)
    if number:
        return int(number.group(1)), NUMBER
    published = _PUBLISHED.search("\n".join(p.text for p in paras[:60]))
    if published:
        return int(published.group(1)), PUBLISHED
    if doc.metadata_year:
        return doc.metadata_year, METADATA
    everything = "\n".join(_all_text(doc))
    years = Counter(int(y) for y in _YEAR.findall(everything))
    if years:
        return years.most_common(1)[0][0], MENTIONED
    return None, FALLBACK


def _all_text(doc: Document) -> list[str]:
    out: list[str] = []
    for block in doc.blocks:
        if isinstance(block, Table):
            out.extend(c.text for r in block.rows for c in r.cells)
        else:
            out.append(block.text)
    return out


def _title(doc: Document) -> str:
    before_table: Para | None = None
    for block in doc.blocks:
        if isinstance(block, Table):
            break
        text = _HEADING.sub("", block.text)
        if (
            _TITLE_WORDS.search(text)
            and len(text) <= 80
            and not text.startswith("附件")
            and not text.endswith(("：", ":"))
        ):
            before_table = Para(text, block.line)
    if before_table is not None and doc.tables:
        return before_table.text
    for para in doc.paras[:20]:
        text = _HEADING.sub("", para.text)
        if _TITLE_WORDS.search(text) and len(text) <= 80 and not text.startswith("附件"):
            return text
    first = next((p.text for p in doc.paras if len(p.text) >= 4), doc.name)
    return _HEADING.sub("", first)[:80]


def _issuer(paras: list[Para], dated_index: int | None, title: str) -> str | None:
    if dated_index is not None and dated_index > 0:
        candidate = paras[dated_index - 1].text.strip()
        if len(candidate) <= 30 and _ISSUER_END.search(candidate):
            return candidate
    head = _TITLE_BEFORE.search(title)
    if head and head.start() >= 4:
        prefix = title[: head.start()]
        if _ISSUER_END.search(prefix):
            return prefix
    for para in paras[:12]:
        text = para.text.strip()
        if 4 <= len(text) <= 30 and _ISSUER_END.search(text) and "号" not in text:
            return text
    return None


def document_meta(doc: Document, year: int | None = None) -> Meta:
    """Title, issuer, issue date and year; ``year`` given by the caller wins."""
    paras = doc.paras
    dated = _issue_date(paras, year or 2000)
    issued_on = dated[1] if dated else None
    title = _title(doc)
    found_year, source = (year, GIVEN) if year else document_year(doc, title)
    return Meta(
        title=title,
        issued_by=_issuer(paras, dated[0] if dated else None, title),
        issued_on=issued_on,
        year=found_year,
        schedule_id=schedule_id(doc.name),
        year_source=source,
    )
