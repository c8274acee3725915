"""``dutybot extract DOC -o draft.yaml``: the document → a draft schedule to review.

:func:`run` is what the command line calls; it prints progress on stderr for large
documents, and every line it prints comes from message_templates/ (extract catalogue).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TextIO

from bot.extract.blocks import Document
from bot.extract.draft import build_draft, dump
from bot.extract.limits import MAX_SECONDS, DocumentRefused
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

    Exit codes: 0 written; 1 the document cannot be read, is beyond a cap (:mod:`.limits`),
    holds no item, or the draft cannot be written.  Errors about the document are said in
    Chinese, then in English; nothing is written unless the whole draft is ready.
    """
    err = sys.stderr
    progress = _Progress(doc.name, lang, err)
    try:
        with time_limit(MAX_SECONDS):
            if doc.is_file() and doc.stat().st_size > BIG_FILE:
                progress.say("progress_read", file=doc.name)
            document = read_document(doc)
            large = document.size >= LARGE
            extraction, text = make_draft(
                document,
                year=year,
                today=date.today(),
                lang=lang,
                progress=progress if large else None,
            )
    except DocumentRefused as refused:
        _refuse(err, f"refused_{refused.reason}", file=str(doc), **refused.context)
        return 1
    except (UnreadableDocument, OSError, ValueError, KeyError, zipfile.BadZipFile):
        _refuse(err, "error_unreadable", file=str(doc))
        return 1
    if not extraction.items:
        _refuse(err, "error_no_items", file=str(doc), unplaced=len(extraction.unplaced))
        return 1
    if output is None:
        sys.stdout.write(text)
        return 0
    if large:
        progress.say("progress_write", file=str(output))
    try:
        _write_whole(output, text)
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


def _refuse(err: TextIO, key: str, **context: object) -> None:
    """A document error in both languages, Chinese first: whoever reads it, it is clear."""
    for lang in ("zh-CN", "en"):
        print(phrase("extract", key, lang, **context), file=err)


def _write_whole(output: Path, text: str) -> None:
    """Write beside the target, then rename: a failure never leaves half a draft."""
    partial = output.with_name(f".{output.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """A backstop behind the size caps: stop after ``seconds`` whatever is running.

    SIGALRM only exists in the main thread of a POSIX process; elsewhere (tests calling
    :func:`run` from a worker thread) the caps alone apply.
    """
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise DocumentRefused("time", limit=seconds)

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


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
