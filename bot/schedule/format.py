"""Schedule file format, version 1 (../shared/SCHEDULE_FORMAT.md), as pydantic models.

The models are the contract: ``extra="forbid"`` everywhere, because a typo must never
silently drop a duty.  Cross-references (names, refs) are checked in
:mod:`bot.schedule.validate`, which knows where each value stands in the file.
"""

from __future__ import annotations

import itertools
import re
from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import DAILY, rrulestr
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from bot.calendar import WorkingHours

PERIODS = ("day", "workday", "week", "month", "quarter", "half-year", "year")
CHECK_PERIODS = ("week", "month", "quarter", "half-year", "year")
ROLES = ("assignees", "responsible", "lead", "chief", "admins")
DIGEST_ROLES = ("responsible", "lead", "chief", "admins")

_REF = re.compile(r"^\d+(\.\d+)*$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_BY = re.compile(r"^(end|day\s+([1-9]\d{0,2}))$")
_SUB_DAILY = re.compile(r"\b(BYHOUR|BYMINUTE|BYSECOND)\s*=", re.I)

# Bounds (README, "Schedule format extensions"): beyond them a value is a typo or an attack,
# and accepted it would make planning search for working days for ever or never send.
MAX_OFFSET_DAYS = 366  # remind before / escalate after / repeat every: working days
MAX_TIMES = 31  # times per period
MAX_RRULE_COUNT = 1000


def _as_list(value: Any) -> Any:
    """``lead: 邓清华`` means ``lead: [邓清华]``; ``lead:`` with nothing means nobody."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return value


def _as_ref(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        raise PydanticCustomError("ref_float", "ref {value} must be quoted", {"value": value})
    return value


def _empty_mapping(value: Any) -> Any:
    return {} if value is None else value


NameList = Annotated[list[str], BeforeValidator(_as_list)]

PENDING = "待定"  # due: 待定 — the deadline is not known yet (also "pending", "tbd")
PENDING_WORDS = (PENDING, "pending", "tbd")


def _as_due(value: Any) -> date | str | None:
    """A date, or the "not known yet" word; one error for anything else."""
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, datetime) and value.time() == datetime.min.time():
        return value.date()
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in PENDING_WORDS:
            return PENDING
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    # typed "date_…" so validation reports it like any unreadable date (bad_date)
    raise PydanticCustomError("date_parsing", "due must be a date or 待定", {})


Due = Annotated[
    date | str | None,
    PlainValidator(_as_due),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date"},
                {"type": "string", "enum": list(PENDING_WORDS)},
                {"type": "null"},
            ],
            "description": "a date (YYYY-MM-DD), or 待定 / pending / tbd when not known yet",
        }
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PersonSpec(_Strict):
    title: str | None = None
    chief: bool = False
    reports_to: str | None = None
    # platform accounts, for binding without an invite (the directory resolves them)
    dingtalk: str | None = Field(default=None, max_length=64, description="DingTalk userid")
    wecom: str | None = Field(default=None, max_length=64, description="WeCom userid")
    mobile: str | None = Field(default=None, max_length=20, description="mobile number")

    def accounts(self) -> dict[str, str]:
        """The declared accounts, as stored on the person."""
        found = {"dingtalk": self.dingtalk, "wecom": self.wecom, "mobile": self.mobile}
        return {k: v for k, v in found.items() if v}


class UnitSpec(_Strict):
    contacts: NameList = Field(default_factory=list)


class EscalationStep(_Strict):
    after: int = Field(
        ge=0, le=MAX_OFFSET_DAYS, description="working days after the due day, still not done"
    )
    to: NameList = Field(min_length=1, description="roles or people's names")
    repeat: int | None = Field(
        default=None, ge=1, le=MAX_OFFSET_DAYS, description="repeat every N working days"
    )
    level: Literal["yellow", "red"] | None = Field(
        default=None, description="三色督办 colour; default yellow, red for the last step"
    )


class DigestPolicy(_Strict):
    at: str = "08:30"
    on: Literal["workdays", "weekly"] = "workdays"
    to: NameList = Field(default_factory=lambda: ["lead", "chief"])

    @field_validator("at")
    @classmethod
    def _at(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise PydanticCustomError("bad_time", "bad time {value}", {"value": value})
        return value


def _default_escalation() -> list[EscalationStep]:
    return [
        EscalationStep(after=1, to=["assignees", "responsible"]),
        EscalationStep(after=3, to=["lead"]),
        EscalationStep(after=5, to=["chief"], repeat=5),
    ]


def _check_remind(values: list[int]) -> list[int]:
    for value in values:
        if value > 0:
            raise PydanticCustomError(
                "remind_positive", "remind offset {value} > 0", {"value": value}
            )
        if value < -MAX_OFFSET_DAYS:
            raise PydanticCustomError(
                "remind_range",
                "remind offset {value} < -{limit}",
                {"value": value, "limit": MAX_OFFSET_DAYS},
            )
    return values


RemindOffsets = Annotated[list[int], AfterValidator(_check_remind)]


def _check_windows(values: list[str]) -> list[str]:
    spans = []
    for value in values:
        try:
            spans.append(WorkingHours.parse(value))
        except ValueError as exc:
            raise PydanticCustomError(
                "bad_window", "bad sending window {value}", {"value": value}
            ) from exc
    ordered = sorted(spans, key=lambda span: span.start)
    for before, after in itertools.pairwise(ordered):
        if after.start < before.end:
            raise PydanticCustomError(
                "windows_overlap",
                "sending windows {a} and {b} overlap",
                {"a": str(before), "b": str(after)},
            )
    return [str(span) for span in ordered]


class DeliveryPolicy(_Strict):
    """How chasing messages reach a person: gathered into one message per sending window
    (reminders) and one per day and level (escalations), at most ``daily_cap`` a day.

    The Chinese platforms make this mandatory, not a nicety: DingTalk work notifications drop a
    second identical message to a user on one day, WeCom drops app messages beyond 30 a minute
    and 1,000 an hour per member; a person sent fifty reminders reads none of them."""

    windows: Annotated[list[str], AfterValidator(_check_windows)] = Field(
        default_factory=lambda: ["08:30-12:00", "14:00-18:00"],
        description="sending windows on working days (HH:MM-HH:MM), inside working hours",
    )
    daily_cap: int = Field(default=8, ge=1, le=100, description="chasing messages a person a day")


class Policy(_Strict):
    remind: RemindOffsets = Field(default_factory=lambda: [-7, -3, -1, 0])
    escalate: list[EscalationStep] = Field(default_factory=_default_escalation)
    digest: DigestPolicy = Field(default_factory=DigestPolicy)
    evidence: Literal["optional", "required"] = "optional"
    ongoing_check: Literal["week", "month", "quarter", "half-year", "year"] = "month"
    delivery: DeliveryPolicy = Field(default_factory=DeliveryPolicy)


class PolicyOverride(_Strict):
    """A task's own policy: any part given replaces the schedule's part of that name."""

    remind: RemindOffsets | None = None
    escalate: list[EscalationStep] | None = None
    digest: DigestPolicy | None = None
    evidence: Literal["optional", "required"] | None = None
    ongoing_check: Literal["week", "month", "quarter", "half-year", "year"] | None = None

    def apply_to(self, base: Policy) -> Policy:
        return base.model_copy(update=self.model_dump(exclude_none=True, exclude_unset=True))


class TaskSpec(_Strict):
    ref: Annotated[str, BeforeValidator(_as_ref)]
    title: str = Field(min_length=1)
    detail: str | None = None
    lead: NameList = Field(default_factory=list)
    responsible: NameList = Field(default_factory=list)
    units: NameList = Field(default_factory=list)
    partners: NameList = Field(default_factory=list)
    due: Due = None
    deadline_text: str | None = Field(
        default=None, description="the document's deadline wording, verbatim (6月底前, 长期坚持)"
    )
    every: str | None = None
    times: int = Field(default=1, ge=1, le=MAX_TIMES)
    by: str = "end"
    start: date | None = Field(default=None, alias="from")
    until: date | None = None
    ongoing: bool = False
    source: str | None = None
    policy: PolicyOverride | None = None

    @field_validator("ref")
    @classmethod
    def _ref(cls, value: str) -> str:
        if not _REF.match(value):
            raise PydanticCustomError("bad_ref", "bad ref {value}", {"value": value})
        return value

    @field_validator("every")
    @classmethod
    def _every(cls, value: str | None) -> str | None:
        if value is None or value in PERIODS:
            return value
        if "FREQ=" in value.upper():
            try:
                rule = rrulestr(value, dtstart=None)
            except (ValueError, TypeError, OverflowError) as exc:
                raise PydanticCustomError(
                    "bad_rrule", "bad RRULE {value}: {error}", {"value": value, "error": str(exc)}
                ) from exc
            # planning walks every instance up to today: sub-daily rules never finish
            if getattr(rule, "_freq", DAILY) > DAILY or _SUB_DAILY.search(value):
                raise PydanticCustomError("rrule_sub_daily", "sub-daily RRULE", {"value": value})
            count = getattr(rule, "_count", None)
            if count is not None and count > MAX_RRULE_COUNT:
                raise PydanticCustomError(
                    "rrule_count",
                    "RRULE COUNT above {limit}",
                    {"value": value, "limit": MAX_RRULE_COUNT},
                )
            return value
        raise PydanticCustomError("bad_every", "bad every {value}", {"value": value})

    @field_validator("by")
    @classmethod
    def _by(cls, value: str) -> str:
        match = _BY.match(str(value).strip())
        if not match:
            raise PydanticCustomError("bad_by", "bad by {value}", {"value": value})
        return "end" if match.group(1) == "end" else f"day {int(match.group(2))}"

    @model_validator(mode="after")
    def _one_timing(self) -> TaskSpec:
        given = [
            name
            for name, on in (
                ("due", self.due is not None),
                ("every", self.every is not None),
                ("ongoing", self.ongoing),
            )
            if on
        ]
        if len(given) != 1:
            raise PydanticCustomError(
                "timing", "need exactly one of due/every/ongoing", {"given": given}
            )
        if self.every is None and (self.times != 1 or self.by != "end"):
            raise PydanticCustomError("times_without_every", "times/by need every", {})
        if self.due is not None and (self.start is not None or self.until is not None):
            raise PydanticCustomError("range_with_due", "from/until need every or ongoing", {})
        if self.start and self.until and self.until < self.start:
            raise PydanticCustomError(
                "until_before_from", "until before from", {"start": self.start, "until": self.until}
            )
        return self

    @property
    def undated(self) -> bool:
        """``due: 待定``: listed, but makes no occurrences (nobody is chased) until dated."""
        return self.due == PENDING

    @property
    def due_date(self) -> date | None:
        return self.due if isinstance(self.due, date) else None

    @property
    def kind(self) -> str:
        if self.undated:
            return "undated"
        if self.due is not None:
            return "deadline"
        return "recurring" if self.every is not None else "ongoing"

    @property
    def by_day(self) -> int | None:
        return None if self.by == "end" else int(self.by.split()[1])


class ScheduleFile(_Strict):
    schedule: str
    title: str = Field(min_length=1)
    issued_by: str | None = None
    issued_on: date | None = None
    timezone: str = "Asia/Shanghai"
    calendar: Literal["cn", "all"] = "cn"
    working_hours: str = "08:30-18:00"
    holidays: list[date] = Field(default_factory=list)
    workdays: list[date] = Field(default_factory=list)
    people: Annotated[
        dict[str, Annotated[PersonSpec, BeforeValidator(_empty_mapping)]],
        BeforeValidator(_empty_mapping),
    ] = Field(default_factory=dict)
    units: Annotated[
        dict[str, Annotated[UnitSpec, BeforeValidator(_empty_mapping)]],
        BeforeValidator(_empty_mapping),
    ] = Field(default_factory=dict)
    admins: NameList = Field(default_factory=list)
    policy: Policy = Field(default_factory=Policy)
    tasks: list[TaskSpec] = Field(min_length=1)

    @field_validator("schedule")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise PydanticCustomError("bad_slug", "bad schedule id {value}", {"value": value})
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise PydanticCustomError(
                "bad_timezone", "bad timezone {value}", {"value": value}
            ) from exc
        return value

    @field_validator("working_hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        try:
            return str(WorkingHours.parse(value))
        except ValueError as exc:
            raise PydanticCustomError(
                "bad_hours", "bad working hours {value}", {"value": value}
            ) from exc

    def task_policy(self, task: TaskSpec) -> Policy:
        return task.policy.apply_to(self.policy) if task.policy else self.policy


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of format v1, for editors (yaml-language-server)."""
    schema = ScheduleFile.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "dutybot schedule, format v1"
    return schema
