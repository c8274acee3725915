"""The one render helper: every user-facing string comes from message_templates/.

Templates are Jinja2 files, one per message kind and language
(``message_templates/zh-CN/reminder.j2``).  Short phrases that belong together
(validation errors, CLI lines) live as macros in one catalogue file per language
(``message_templates/zh-CN/validation.j2``) and are called with :func:`phrase`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound

DEFAULT_LANG = "zh-CN"
LANGS = ("zh-CN", "en")


def templates_dir() -> Path:
    """Source checkouts keep templates at the top level; wheels carry them inside ``bot``."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "message_templates", here / "message_templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("message_templates/ not found next to the bot package")


@lru_cache(maxsize=1)
def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(templates_dir())),
        undefined=StrictUndefined,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
        # chat messages are Telegram HTML: escape everything not marked safe
        autoescape=lambda name: bool(name and name.endswith(".html.j2")),
    )
    env.filters["clip"] = clip
    return env


def clip(text: object, limit: int = 500) -> str:
    """User-supplied text, cut well under Telegram's 4,096-character limit."""
    value = "" if text is None else str(text)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _lang(lang: str | None) -> str:
    return lang if lang in LANGS else DEFAULT_LANG


def render(kind: str, lang: str | None = None, /, **context: Any) -> str:
    """Render ``message_templates/<lang>/<kind>.j2`` (zh-CN when the language lacks it)."""
    names = [f"{_lang(lang)}/{kind}.j2", f"{DEFAULT_LANG}/{kind}.j2"]
    return _env().select_template(names).render(**context).strip("\n")


@lru_cache(maxsize=256)
def _catalogue(lang: str, catalogue: str) -> Any:
    """A catalogue's macros, loaded once (templates are files that do not change at run time)."""
    try:
        return _env().get_template(f"{lang}/{catalogue}.j2").module
    except TemplateNotFound:
        return None


def phrase(catalogue: str, key: str, lang: str | None = None, /, **context: Any) -> str:
    """Call macro ``key`` of ``message_templates/<lang>/<catalogue>.j2`` (zh-CN fallback)."""
    for candidate in (_lang(lang), DEFAULT_LANG):
        module = _catalogue(candidate, catalogue)
        macro = getattr(module, key, None) if module is not None else None
        if macro is not None:
            return str(macro(**context)).strip()
    raise KeyError(f"no phrase {catalogue}.{key} in message_templates")
