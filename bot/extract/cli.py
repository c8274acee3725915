"""``dutybot extract DOC -o draft.yaml``: the document → a draft schedule to review.

:func:`run` is what the command line calls; it prints progress on stderr for large
documents, and every line it prints comes from message_templates/ (extract catalogue).
"""

from __future__ import annotations

import sys
import zipfile
from datetime import date
from pathlib import Path
from typing import TextIO

from bot.extract.blocks import Document
from bot.extract.draft import build_draft, dump
from bot.extract.meta import MENTIONED, METADATA
from bot.extract.pipeline import Extraction, Progress, extract_document
from bot.extract.reader import UnreadableDocument, read_document
from bot.texts import phrase

LARGE = 200  # paragraphs + table rows from which progress is shown
BIG_FILE = 1_000_000  # bytes from which "reading …" is shown before reading
_STEPS = 10  # progress lines per stage at most


class _Progress:
    """Progress on stderr: only for large documents, and only every tenth of the way."""

    def __init__(self, name: str, lang: str | None, err: TextIO) -> None:
        self.name = name
        self.lang = lang
        self.err = err
        self.last = -1

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != "items":
            return
        step = done * _STEPS // max(total, 1)
        if step != self.last or done == total:
            self.last = step
            self.say("progress_items", done=done, total=total)

    def say(self, key: str, **context: object) -> None:
        print(phrase("extract", key, self.lang, **context), file=self.err, flush=True)


def run(
    doc: Path,
    output: Path | None,
    *,
    year: int | None = None,
    lang: str | None = None,
) -> int:
    """Write the draft for ``doc`` to ``output`` (stdout when None).

    Exit codes: 0 written; 1 nothing to write (no items found) or the file cannot be
    written; 2 the document cannot be read.
    """
    err = sys.stderr
    progress = _Progress(doc.name, lang, err)
    try:
        if doc.is_file() and doc.stat().st_size > BIG_FILE:
            progress.say("progress_read", file=doc.name)
        document = read_document(doc)
    except (UnreadableDocument, OSError, ValueError, KeyError, zipfile.BadZipFile):
        print(phrase("extract", "error_unreadable", lang, file=str(doc)), file=err)
        return 2
    large = document.size >= LARGE
    extraction, text = make_draft(
        document, year=year, today=date.today(), lang=lang, progress=progress if large else None
    )
    if not extraction.items:
        print(
            phrase(
                "extract", "error_no_items", lang, file=str(doc), unplaced=len(extraction.unplaced)
            ),
            file=err,
        )
        return 1
    if output is None:
        sys.stdout.write(text)
        return 0
    if large:
        progress.say("progress_write", file=str(output))
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(phrase("extract", "error_write", lang, file=str(output), detail=str(exc)), file=err)
        return 1
    tasks = text.count("\n  - ref: ")
    print(
        phrase(
            "extract",
            "written",
            lang,
            file=str(output),
            tasks=tasks,
            unplaced=len(extraction.unplaced),
        ),
        file=err,
    )
    return 0


def make_draft(
    document: Document,
    *,
    year: int | None,
    today: date,
    lang: str | None = None,
    progress: Progress | None = None,
) -> tuple[Extraction, str]:
    """The extraction and the draft's YAML text, as ``dutybot extract`` writes it.

    ``today`` is only the last resort for the year (no ``--year``, nothing in the file).
    The text is empty when no item was found.
    """
    extraction = extract_document(document, year=year, fallback_year=today.year, progress=progress)
    if not extraction.items:
        return extraction, ""
    year_text = _year_text(extraction, year, lang)
    return extraction, dump(build_draft(extraction, lang=lang, year_text=year_text))


def _year_text(extraction: Extraction, given: int | None, lang: str | None) -> str:
    if given is not None:
        return phrase("extract", "year_given", lang, year=given)
    meta = extraction.meta
    if extraction.year_found and meta.year:
        return phrase("extract", "year_document", lang, year=meta.year)
    if meta.year_source in (METADATA, MENTIONED):
        return phrase("extract", f"year_{meta.year_source}", lang, year=meta.year)
    return phrase("extract", "year_fallback", lang, year=meta.year)
