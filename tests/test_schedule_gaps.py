"""A valid list that reaches nobody real: tasks reminding nobody and placeholder contacts are
summarised at the end of ``validate`` and ``import``; ``import`` asks at a terminal (``--yes``
does not), ``--strict`` refuses; the import ends with the next window's forecast."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from bot.schedule.gaps import find_gaps, is_placeholder
from bot.schedule.validate import load_schedule
from bot.store.db import make_engine
from bot.store.models import Schedule
from tests.conftest import SCHEDULES

# names of a list drafted elsewhere: none of them is a string of the files we ship
LIST = """\
schedule: gaps-2022
title: 占位联系人测试清单
people:
  邓清华: {title: 主任, chief: true}
  张敏: {title: 副主任, reports_to: 邓清华}
  XX科联系人: {}
  某某: {}
  王xx: {}
  李强: {title: 待定}
units:
  办公室: {contacts: [张敏]}
  安监科: {contacts: [XX科联系人, 某某]}
  空科室: {}
admins: [张敏]
tasks:
  - {ref: "1", title: 召开专题会议, units: [办公室], due: 2022-06-30}
  - {ref: "2", title: 排查隐患, units: [安监科], due: 2022-06-30}
  - {ref: "3", title: 无人负责的任务, units: [空科室], due: 2022-06-30}
  - {ref: "4", title: 另一项无人负责的任务, partners: [办公室], due: 2022-06-30}
  - {ref: "5", title: 只有占位领导, lead: [王xx], due: 2022-06-30}
"""


@pytest.mark.parametrize(
    ("name", "title"),
    [
        ("××联络员", None),
        ("XX科联系人", None),
        ("ＸＸ", None),
        ("某某", None),
        ("张某", None),
        ("王xx", None),
        ("待指定", None),
        ("待定", None),
        ("TBD", None),
        ("办公室负责人", None),
        ("安委办联络员", None),
        ("李强", "待指定（占位）"),
        ("李强", "待定"),
    ],
)
def test_placeholders_are_recognised_by_form(name: str, title: str | None) -> None:
    assert is_placeholder(name, title)


@pytest.mark.parametrize(
    ("name", "title"), [("张敏", None), ("邓清华", "党组书记、主任"), ("欧阳娜娜", "科长")]
)
def test_people_are_not_placeholders(name: str, title: str | None) -> None:
    assert not is_placeholder(name, title)


def write(tmp_path: Path, text: str = LIST) -> Path:
    path = tmp_path / "gaps.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_gaps_of_a_list(tmp_path: Path) -> None:
    loaded = load_schedule(write(tmp_path))
    assert loaded.ok and loaded.spec is not None
    gaps = find_gaps(loaded.spec)
    assert gaps.nobody == ["3", "4"]
    assert gaps.only_placeholders == ["2", "5"]
    assert gaps.placeholders == ["XX科联系人", "某某", "王xx", "李强"]
    real = LIST.replace("XX科联系人", "赵刚").replace("某某", "钱进").replace("王xx", "王伟")
    real = real.replace("{title: 待定}", "{title: 科长}")
    real = real.replace("units: [空科室]", "units: [办公室]").replace("partners:", "responsible:")
    real = real.replace("responsible: [办公室]", "responsible: [张敏]")
    fixed = load_schedule(write(tmp_path, real))
    assert fixed.spec is not None and not find_gaps(fixed.spec).any


def dutybot(
    *args: str, db_url: str = "sqlite:///:memory:", lang: str = "zh-CN", **kw: object
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": db_url, "DUTYBOT_LANG": lang}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        stdin=kw.pop("stdin", subprocess.DEVNULL),  # type: ignore[arg-type]
        timeout=60,
    )


def test_validate_summarises_at_the_end_and_strict_makes_it_an_error(tmp_path: Path) -> None:
    path = write(tmp_path)
    result = dutybot("validate", str(path))
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-4] == f"{path}：注意："
    assert lines[-3].startswith("  2 项任务没有提醒任何人（任务 3、4）")
    assert lines[-2].startswith("  4 个占位联系人（XX科联系人、某某、王xx、李强）")
    assert lines[-1] == "  2 项任务只提醒占位联系人，导入后实际无人收到提醒。"
    strict = dutybot("validate", "--strict", str(path))
    assert strict.returncode == 1 and f"{path}：错误（--strict）：" in strict.stderr
    english = dutybot("validate", str(path), lang="en")
    assert "  2 tasks remind nobody (tasks 3, 4)" in english.stderr
    assert "  4 placeholder contacts (XX科联系人, 某某, 王xx, 李强)" in english.stderr
    clean = dutybot("validate", "--strict", str(SCHEDULES / "fengdu-ndrc-2022.yaml"))
    assert clean.returncode == 1  # the shipped lists still carry placeholder contacts
    assert "7 个占位联系人（办公室联络员、" in clean.stderr


def schedules(db_url: str) -> int:
    engine = make_engine(db_url)
    try:
        with Session(engine) as session:
            return session.exec(select(func.count()).select_from(Schedule)).one()
    except Exception:  # no tables yet: nothing was ever imported
        return 0
    finally:
        engine.dispose()


def test_import_strict_refuses_and_changes_nothing(tmp_path: Path, db_url: str) -> None:
    result = dutybot("import", "--strict", str(write(tmp_path)), db_url=db_url)
    assert result.returncode == 1
    assert "因 --strict 未导入，未做任何改动" in result.stderr
    assert schedules(db_url) == 0


def test_import_off_a_terminal_goes_ahead_and_prints_the_forecast(
    tmp_path: Path, db_url: str
) -> None:
    from zoneinfo import ZoneInfo

    from bot.forecast import describe, forecast

    path = write(tmp_path)
    result = dutybot("import", "--now", "2022-07-04T10:00", str(path), db_url=db_url)
    assert result.returncode == 0, result.stderr
    assert "确定要导入吗" not in result.stdout + result.stderr
    assert "2 项任务没有提醒任何人" in result.stderr
    assert "已新建清单 gaps-2022" in result.stdout
    engine = make_engine(db_url)
    try:  # the forecast is the rehearsal's, as the web preview would show it; nothing stayed
        expected = describe(
            forecast(engine, "gaps-2022", _at("2022-07-04T10:00")),
            ZoneInfo("Asia/Shanghai"),
            "zh-CN",
        )
    finally:
        engine.dispose()
    assert result.stdout.rstrip().endswith(expected)
    assert expected.startswith("下一个发送时段（2022-07-04 10:00）预计发送")
    assert "\n  张敏：尚未绑定聊天，" in expected  # one line per person


def _at(text: str):  # type: ignore[no-untyped-def]
    from datetime import datetime

    from bot.clock import as_of

    return as_of(datetime.fromisoformat(text))


def at_a_terminal(db_url: str, answer: bytes, *args: str) -> tuple[int, str]:
    """``dutybot import`` with its stdin on a pseudo-terminal, answering ``answer``."""
    leader, follower = pty.openpty()
    env = {**os.environ, "DATABASE_URL": db_url, "DUTYBOT_LANG": "zh-CN"}
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "import", *args],
            stdin=follower,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        os.write(leader, answer)
        out, err = process.communicate(timeout=60)
    finally:
        os.close(follower)
        os.close(leader)
    return process.returncode, out + err


def test_import_at_a_terminal_asks_first(tmp_path: Path, db_url: str) -> None:
    path = str(write(tmp_path))
    code, said = at_a_terminal(db_url, b"n\n", path)
    assert code == 1 and "确定要导入吗？" in said and "已取消" in said
    assert schedules(db_url) == 0
    code, said = at_a_terminal(db_url, b"y\n", "--now", "2022-07-04T10:00", path)
    assert code == 0 and "确定要导入吗？" in said and "已新建清单 gaps-2022" in said
    assert schedules(db_url) == 1


def test_import_yes_does_not_ask(tmp_path: Path, db_url: str) -> None:
    code, said = at_a_terminal(
        db_url, b"", "--yes", "--now", "2022-07-04T10:00", str(write(tmp_path))
    )
    assert code == 0, said
    assert "确定要导入吗" not in said and "已新建清单 gaps-2022" in said
    assert "2 项任务没有提醒任何人" in said  # still said, just not asked
