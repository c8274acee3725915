"""Validation reports every problem at once, each as FILE:LINE:COLUMN with a hint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.schedule.format import ScheduleFile, json_schema
from bot.schedule.validate import load_schedule
from tests.conftest import SCHEDULES

HEAD = """\
schedule: test-list
title: 测试清单
people:
  邓清华: {title: 主任, chief: true}
  熊伟: {title: 副主任, reports_to: 邓清华}
  张敏: {title: 科长}
units:
  能源科: {contacts: [张敏]}
  办公室: {contacts: []}
admins: [张敏]
tasks:
"""  # the task list starts on line 12


def at(text: str, line: int, token: str) -> str:
    """LINE:COLUMN of ``token`` in ``text``: expectations read like the file itself."""
    return f"{line}:{text.splitlines()[line - 1].index(token) + 1}"


def check(tmp_path: Path, tasks: str, head: str = HEAD) -> list[str]:
    path = tmp_path / "s.yaml"
    path.write_text(head + tasks, encoding="utf-8")
    loaded = load_schedule(path, lang="zh-CN")
    return [str(p).removeprefix(f"{path}:") for p in loaded.errors]


GOOD = """\
  - ref: "1"
    title: 一
    lead: [邓清华]
    due: 2022-05-31
"""


def test_a_good_file_has_no_problems(tmp_path: Path) -> None:
    assert check(tmp_path, GOOD) == []


@pytest.mark.parametrize(
    ("tasks", "line", "token", "expected"),
    [
        (  # unknown person, with a did-you-mean hint
            '  - {ref: "1", title: 一, lead: [熊玮], due: 2022-05-31}\n',
            12,
            "熊玮",
            "未定义的人员“熊玮”——是不是“熊伟”？",
        ),
        (  # unknown unit
            '  - ref: "1"\n    title: 一\n    units: [能源课]\n    due: 2022-05-31\n',
            14,
            "能源课",
            "未定义的单位“能源课”——是不是“能源科”？",
        ),
        (  # unknown partner, no close name
            '  - ref: "1"\n    title: 一\n    lead: 邓清华\n    partners: [消防队]\n    due: 2022-05-31\n',
            15,
            "消防队",
            "未定义的名称“消防队”。请在 people 或 units 中添加。",
        ),
        (  # unknown key with a hint
            '  - ref: "1"\n    title: 一\n    responsable: [熊伟]\n    due: 2022-05-31\n',
            14,
            "responsable",
            "未知的键“responsable”——是不是“responsible”？",
        ),
        (  # impossible date
            '  - ref: "1"\n    title: 一\n    lead: [邓清华]\n    due: 2022-05-32\n',
            15,
            "2022",
            "due 的日期“2022-05-32”无法识别。请写成 YYYY-MM-DD，例如 2022-05-31。",
        ),
        (  # a date written in Chinese
            '  - ref: "1"\n    title: 一\n    lead: [邓清华]\n    due: 2022年5月底\n',
            15,
            "2022",
            "due 的日期“2022年5月底”无法识别。请写成 YYYY-MM-DD，例如 2022-05-31。",
        ),
        (  # none of due/every/ongoing
            '  - ref: "1"\n    title: 一\n    lead: [邓清华]\n',
            12,
            "ref",
            "任务必须且只能有 due（完成时限）、every（周期）、ongoing（长期坚持）中的一项。",
        ),
        (  # two of them
            '  - ref: "1"\n    title: 一\n    lead: [邓清华]\n    due: 2022-05-31\n    ongoing: true\n',
            12,
            "ref",
            "任务必须且只能有 due（完成时限）、every（周期）、ongoing（长期坚持）中的一项，现有：due、ongoing。",
        ),
        (  # bad frequency
            '  - ref: "1"\n    title: 一\n    lead: [邓清华]\n    every: monthly\n',
            15,
            "monthly",
            "周期“monthly”无法识别。可选：day、workday、week、month、quarter、half-year、year，"
            "或 RRULE（如 FREQ=MONTHLY;BYMONTHDAY=2）。",
        ),
        (  # bad RRULE
            '  - ref: "1"\n    title: 一\n    lead: [邓清华]\n    every: "FREQ=SOMETIMES"\n',
            15,
            '"FREQ',
            "RRULE“FREQ=SOMETIMES”无效：invalid 'FREQ': SOMETIMES。",
        ),
        (  # bad by
            '  - ref: "1"\n    title: 一\n    lead: [邓清华]\n    every: month\n    by: 2日\n',
            16,
            "2日",
            'by 的值“2日”无法识别。请写 end（期末，默认）或 "day N"（如每月2日前写 "day 2"）。',
        ),
        (  # times without every
            '  - ref: "1"\n    title: 一\n    lead: [邓清华]\n    due: 2022-05-31\n    times: 2\n',
            12,
            "ref",
            "times 和 by 只能与 every 一起使用。",
        ),
        (  # times must be >= 1
            '  - ref: "1"\n    title: 一\n    lead: [邓清华]\n    every: month\n    times: 0\n',
            16,
            "0",
            "times 的值 0 太小，至少为 1。",
        ),
        (  # until before from
            '  - ref: "1"\n    title: 一\n    lead: [邓清华]\n    every: month\n'
            "    from: 2022-06-01\n    until: 2022-05-01\n",
            12,
            "ref",
            "until（2022-05-01）早于 from（2022-06-01）。",
        ),
        (  # a ref that YAML reads as a float
            "  - ref: 3.1\n    title: 一\n    lead: [邓清华]\n    due: 2022-05-31\n",
            12,
            "3.1",
            '编号 3.1 会被当成小数，请加引号：ref: "3.1"。',
        ),
        (  # a ref that is not a number
            '  - ref: "三"\n    title: 一\n    lead: [邓清华]\n    due: 2022-05-31\n',
            12,
            '"三"',
            '编号“三”应为阿拉伯数字，子项用点分隔，例如 "3" 或 "3.2"。',
        ),
        (  # a unit where a person belongs
            '  - ref: "1"\n    title: 一\n    lead: [办公室]\n    due: 2022-05-31\n',
            14,
            "办公室",
            "“办公室”是单位，不是人员；单位请写在 units（牵头科室）或 partners（配合单位）中。",
        ),
        (  # several names in one string
            '  - ref: "1"\n    title: 一\n    lead: 邓清华、熊伟\n    due: 2022-05-31\n',
            14,
            "邓清华",
            "“邓清华、熊伟”把多个名称写在了一起，请写成列表：[邓清华, 熊伟]。",
        ),
        (  # missing title
            '  - ref: "1"\n    lead: [邓清华]\n    due: 2022-05-31\n',
            12,
            "ref",
            "缺少必填的键“title”。",
        ),
        (  # unknown escalation target
            '  - ref: "1"\n    title: 一\n    lead: [邓清华]\n    due: 2022-05-31\n'
            "    policy:\n      escalate:\n        - {after: 2, to: [leader]}\n",
            18,
            "leader",
            "未定义的人员“leader”——是不是“lead”？",
        ),
        (  # positive remind offset
            '  - ref: "1"\n    title: 一\n    lead: [邓清华]\n    due: 2022-05-31\n'
            "    policy: {remind: [-3, 2]}\n",
            16,
            "remind",
            "提醒偏移 2 应为 0 或负数（到期日前的工作日数）；到期后的督办请写在 escalate 中。",
        ),
    ],
)
def test_each_problem_kind_with_line_and_column(
    tmp_path: Path, tasks: str, line: int, token: str, expected: str
) -> None:
    assert check(tmp_path, tasks) == [f"{at(HEAD + tasks, line, token)}: {expected}"]


def test_duplicate_refs_point_at_the_second_and_name_the_first(tmp_path: Path) -> None:
    tasks = GOOD + GOOD.replace("一", "二")
    assert check(tmp_path, tasks) == ["16:10: 编号“1”重复（第 12 行已使用）。"]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    tasks = (
        '  - {ref: "1", title: 一, lead: [熊玮], due: 2022-05-32}\n'
        '  - {ref: "2", title: 二, units: [能源课], every: monthly, colour: red}\n'
    )
    text = HEAD + tasks
    problems = check(tmp_path, tasks)
    assert [p.split(": ")[0] for p in problems] == [
        at(text, 12, "熊玮"),
        at(text, 12, "2022"),
        at(text, 13, "能源课"),
        at(text, 13, "monthly"),
        at(text, 13, "colour"),
    ]


def _head(old: str, new: str) -> str:
    assert old in HEAD
    return HEAD.replace(old, new)


@pytest.mark.parametrize(
    ("head", "line", "token", "expected"),
    [
        (_head("test-list", "Test List"), 1, "Test", "清单编号“Test List”只能用小写字母"),
        (
            _head("测试清单\n", "测试清单\ntimezone: Mars/Base\n"),
            3,
            "Mars",
            "时区“Mars/Base”无法识别",
        ),
        (
            _head("测试清单\n", '测试清单\nworking_hours: "18:00-08:30"\n'),
            3,
            '"18',
            "工作时间“18:00-08:30”无法识别",
        ),
        (
            _head("测试清单\n", "测试清单\ncalendar: jp\n"),
            3,
            "jp",
            "calendar 的值“jp”不在允许范围内",
        ),
        (
            _head("reports_to: 邓清华", "reports_to: 邓青华"),
            5,
            "邓青华",
            "未定义的人员“邓青华”——是不是“邓清华”？",
        ),
        (
            _head("contacts: [张敏]", "contacts: [张明]"),
            8,
            "张明",
            "未定义的人员“张明”——是不是“张敏”？",
        ),
        (
            _head("admins: [张敏]", "admins: [李四]"),
            10,
            "李四",
            "未定义的人员“李四”。请在 people 中添加。",
        ),
        (
            _head("  办公室: {contacts: []}\n", "  办公室: {contacts: []}\n  熊伟: {}\n"),
            10,
            "熊伟",
            "“熊伟”同时出现在 people 和 units 中",
        ),
        (_head("测试清单\n", "测试清单\nowner: 我\n"), 3, "owner", "未知的键“owner”"),
    ],
)
def test_top_level_problems(
    tmp_path: Path, head: str, line: int, token: str, expected: str
) -> None:
    problems = check(tmp_path, GOOD, head=head)
    assert len(problems) == 1 and problems[0].startswith(f"{at(head, line, token)}: {expected}"), (
        problems
    )


def test_yaml_syntax_error_has_its_position(tmp_path: Path) -> None:
    problems = check(tmp_path, '  - ref: "1\n    title: 一\n')
    assert len(problems) == 1 and problems[0].startswith("14:1: YAML 格式错误"), problems


def test_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    problems = check(tmp_path, GOOD + "    due: 2022-06-30\n")
    assert len(problems) == 1 and "YAML" in problems[0] and problems[0].startswith("16:"), problems


def test_not_a_mapping_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- just\n- a list\n", encoding="utf-8")
    assert [str(p) for p in load_schedule(path).problems] == [
        f"{path}:1:1: 文件顶层应是“键: 值”的映射（schedule:、title:、tasks: 等）。"
    ]
    assert "找不到文件" in str(load_schedule(tmp_path / "nope.yaml").problems[0])


def test_english_messages(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        HEAD + '  - {ref: "1", title: 一, lead: [熊玮], due: 2022-05-31}\n', encoding="utf-8"
    )
    assert str(load_schedule(path, lang="en").errors[0]).endswith(
        "unknown person 熊玮 — did you mean 熊伟?"
    )


def test_unknown_calendar_year_and_nobody_to_remind_are_warnings(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        HEAD + '  - {ref: "1", title: 一, units: [办公室], due: 2031-05-30}\n', encoding="utf-8"
    )
    loaded = load_schedule(path)
    assert loaded.ok and loaded.errors == []
    messages = [p.message for p in loaded.warnings]
    assert any("2031 年的法定节假日尚未收录" in m for m in messages), messages
    assert any("任务 1 没有可提醒的人" in m for m in messages), messages


def test_seed_schedules_validate() -> None:
    files = sorted(SCHEDULES.glob("*.yaml"))
    assert any(f.name == "fengdu-ndrc-2022.yaml" for f in files)
    for path in files:
        loaded = load_schedule(path)
        assert loaded.ok, [str(p) for p in loaded.errors]
    seed = load_schedule(SCHEDULES / "fengdu-ndrc-2022.yaml").spec
    assert seed is not None
    numbered = {t.ref for t in seed.tasks if "." not in t.ref}
    assert numbered == {str(n) for n in range(1, 51)}
    assert {"3.1", "3.2", "3.3"} <= {t.ref for t in seed.tasks}
    assert next(t for t in seed.tasks if t.ref == "3.1").every == "quarter"


def test_cli_validate_exit_codes_and_format(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        HEAD + '  - {ref: "1", title: 一, lead: [熊玮], due: 2022-05-31}\n', encoding="utf-8"
    )
    run = [sys.executable, "-m", "bot", "validate"]
    result = subprocess.run([*run, str(bad)], capture_output=True, text=True, check=False)
    assert result.returncode == 1
    position = at(bad.read_text(encoding="utf-8"), 12, "熊玮")
    assert f"{bad}:{position}: 未定义的人员“熊玮”——是不是“熊伟”？" in result.stderr
    good = subprocess.run(
        [*run, str(SCHEDULES / "fengdu-ndrc-2022.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert good.returncode == 0, good.stderr


def test_json_schema_is_published_and_matches_the_models(tmp_path: Path) -> None:
    schema = json_schema()
    assert schema["additionalProperties"] is False
    assert "from" in schema["$defs"]["TaskSpec"]["properties"]
    out = tmp_path / "schema.json"
    subprocess.run([sys.executable, "-m", "bot", "schema", "-o", str(out)], check=True)
    assert json.loads(out.read_text(encoding="utf-8"))["title"] == "dutybot schedule, format v1"
    assert ScheduleFile.model_json_schema(by_alias=True)["required"] == [
        "schedule",
        "title",
        "tasks",
    ]
