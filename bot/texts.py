"""The one render helper: every user-facing string comes from message_templates/.

Three kinds of template files, all Jinja2, one set per language (``zh-CN/`` first, ``en/``):

* **Message kinds**, ``<lang>/<kind>.msg.j2`` (``reminder``, ``escalation``, ``chat_done`` ...):
  the parts of one :class:`bot.messages.Message`, each a ``{% block %}`` rendered on its own
  (Jinja's ``Template.blocks``) as plain text -- ``header``, ``title``, ``body``, ``footer``;
  for bundles and lists also ``bundle_header``, ``bundle_body``, ``bundle_footer`` and, per
  entry, ``item_title``, ``item_body``, ``item_hint``.  A multi-line block (body, footer)
  gives one line per non-empty line, so a conditional on a line of its own adds nothing.
  Blocks see the context they are given plus ``c`` (the macros of ``<lang>/common.j2``),
  ``lang`` and ``phrase``.  Nothing is escaped: markup and escaping are each adapter's.
* **Fields**, ``<lang>/fields.j2``: for each field name a macro ``<name>(v)`` giving its value
  (empty: the field is left out) and ``<name>_label(v)``; ``v`` holds the payload, the
  context and ``kind``.  Which fields a kind shows is ``bot.messages.FIELDS``.
* **Catalogues** of short phrases (button labels, toasts, refusals, CLI lines, validation
  errors): macros in one file per language (``<lang>/validation.j2``), called with
  :func:`phrase`; whole CLI outputs (``import_diff.j2``) with :func:`render`.

Message kinds render with ``trim_blocks`` off: that setting swallowed the newline after a
block tag ending a line ("…已逾期 35 个工作日责任人：…", issue 12.1).  The CLI catalogues keep
their own environment with it on, as their authors wrote them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, TemplateNotFound

DEFAULT_LANG = "zh-CN"
LANGS = ("zh-CN", "en")
MESSAGE_SUFFIX = ".msg.j2"


def templates_dir() -> Path:
    """Source checkouts keep templates at the top level; wheels carry them inside ``bot``."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "message_templates", here / "message_templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("message_templates/ not found next to the bot package")


def _environment(*, trim_blocks: bool) -> Environment:
    """Plain text (nothing escaped: that is each adapter's), strict about missing names."""
    env = Environment(
        loader=FileSystemLoader(str(templates_dir())),
        undefined=StrictUndefined,
        keep_trailing_newline=False,
        trim_blocks=trim_blocks,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["clip"] = clip
    return env


@lru_cache(maxsize=1)
def _env() -> Environment:
    """CLI outputs and phrase catalogues, written for ``trim_blocks``."""
    return _environment(trim_blocks=True)


@lru_cache(maxsize=1)
def _message_env() -> Environment:
    """Message kinds: newlines kept as written (see the module docstring)."""
    env = _environment(trim_blocks=False)
    env.globals["phrase"] = phrase
    return env


def clip(text: object, limit: int = 500) -> str:
    """User-supplied text, cut well under every platform's limit (Telegram's is 4,096)."""
    value = "" if text is None else str(text)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def language(lang: str | None) -> str:
    """A language the templates have: the one asked for, else zh-CN."""
    return lang if lang in LANGS else DEFAULT_LANG


def render(kind: str, lang: str | None = None, /, **context: Any) -> str:
    """Render ``message_templates/<lang>/<kind>.j2`` (zh-CN when the language lacks it)."""
    names = [f"{language(lang)}/{kind}.j2", f"{DEFAULT_LANG}/{kind}.j2"]
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
    for candidate in (language(lang), DEFAULT_LANG):
        module = _catalogue(candidate, catalogue)
        macro = getattr(module, key, None) if module is not None else None
        if macro is not None:
            return str(macro(**context)).strip()
    raise KeyError(f"no phrase {catalogue}.{key} in message_templates")


# ---- message kinds ------------------------------------------------------------------------------


class MessageTemplate:
    """One message kind in one language; each block renders on its own, as plain text."""

    def __init__(self, template: Template, lang: str) -> None:
        self._template = template
        self._lang = lang
        self._common = _message_env().get_template(f"{lang}/common.j2").module

    def has(self, block: str) -> bool:
        return block in self._template.blocks

    def text(self, block: str, /, **context: Any) -> str:
        """A one-line part (header, title): its lines joined, "" when the kind has none."""
        return " ".join(self.lines(block, **context))

    def lines(self, block: str, /, **context: Any) -> tuple[str, ...]:
        """A multi-line part (body, footer): its non-empty lines, stripped."""
        render = self._template.blocks.get(block)
        if render is None:
            return ()
        variables = {"c": self._common, "lang": self._lang, **context}
        text = "".join(render(self._template.new_context(variables)))
        return tuple(line.strip() for line in text.splitlines() if line.strip())


@lru_cache(maxsize=512)
def message_template(kind: str, lang: str | None = None) -> MessageTemplate:
    """``message_templates/<lang>/<kind>.msg.j2`` (zh-CN when the language lacks it)."""
    chosen = language(lang)
    names = [f"{chosen}/{kind}{MESSAGE_SUFFIX}", f"{DEFAULT_LANG}/{kind}{MESSAGE_SUFFIX}"]
    template = _message_env().select_template(names)
    return MessageTemplate(template, chosen)


def message_kinds(lang: str = DEFAULT_LANG) -> list[str]:
    """Every message kind that has a template in ``lang``."""
    return sorted(
        path.name.removesuffix(MESSAGE_SUFFIX)
        for path in (templates_dir() / lang).glob(f"*{MESSAGE_SUFFIX}")
    )


@lru_cache(maxsize=8)
def _fields(lang: str) -> Any:
    return _message_env().get_template(f"{lang}/fields.j2").module


def field(name: str, lang: str | None, values: dict[str, Any]) -> tuple[str, str]:
    """(label, value) of field ``name`` from ``<lang>/fields.j2``; value "" means leave it out."""
    module = _fields(language(lang))
    value_of = getattr(module, name, None)
    label_of = getattr(module, f"{name}_label", None)
    if value_of is None or label_of is None:
        raise KeyError(f"no field {name} in message_templates/{language(lang)}/fields.j2")
    value = " ".join(str(value_of(values)).split("\n")).strip()
    return str(label_of(values)).strip(), value


def warm(lang: str | None = None) -> None:
    """Compile every message template of ``lang`` (and zh-CN) now: the first message of a
    09:00 burst must not wait ~150 ms for Jinja to compile what it needs."""
    for chosen in dict.fromkeys((language(lang), DEFAULT_LANG)):
        for kind in message_kinds(chosen):
            message_template(kind, chosen)
        _fields(chosen)
        for catalogue in ("buttons", "common", "fields"):  # what composing a message calls
            _catalogue(chosen, catalogue)
