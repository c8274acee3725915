"""``dutybot run --console`` reads lines typed at the terminal as answers from officials: the
frontend over a real pipe with the worker on a simulated clock, then the real process."""

from __future__ import annotations

import asyncio
import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.adapters.console import Typed, console_frontend, read_line
from bot.clock import SimulatedClock
from bot.settings import Settings
from bot.store.db import open_store
from bot.store.models import Reply
from bot.worker import Worker
from tests.conftest import until
from tests.fakes.chat import REMIND_DAY, seed
from tests.test_telegram_e2e import occurrence


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("as 张敏: 已完成 会议纪要已报送", Typed("张敏", None, "已完成 会议纪要已报送")),
        ("AS 张敏：已完成", Typed("张敏", None, "已完成")),
        ("张敏：进展：已完成一半", Typed("张敏", None, "进展：已完成一半")),
        ("张敏 #12: [申请延期]", Typed("张敏", 12, "[申请延期]")),
        ("  “一岗双责”科室联络员＃3：/tasks ", Typed("“一岗双责”科室联络员", 3, "/tasks")),
        ("已完成", None),
        ("张敏:", None),
    ],
)
def test_a_typed_line_names_who_speaks(line: str, expected: Typed | None) -> None:
    assert read_line(line) == expected


def test_typed_lines_answer_as_that_official(engine: Engine) -> None:
    seed(engine)
    clock = SimulatedClock(REMIND_DAY)
    read_end, write_end = os.pipe()
    typing = os.fdopen(write_end, "w", encoding="utf-8", buffering=1)
    out = io.StringIO()

    def printed() -> str:
        return out.getvalue()

    stdin = os.fdopen(read_end, encoding="utf-8")

    async def scenario() -> None:
        frontend = console_frontend(
            settings=Settings(), db=engine, clock=clock, lang="zh-CN", input=stdin, out=out
        )
        worker = Worker(engine, {"console": frontend.adapter}, clock, name="console")
        await frontend.start()
        assert "as 张敏: 已完成" in printed()  # the console says how to answer
        await worker.tick()
        await until(lambda: "发给 张敏" in printed(), "the reminder")
        assert "[✅ 已完成]" in printed()
        first = re.search(r"#(\d+) 发给 张敏", printed())
        assert first is not None
        reminder = first.group(1)

        typing.write(f"张敏 #{reminder}: [汇报进展]\n")  # press a button of that message
        await until(lambda: "请发送进展情况说明" in printed(), "the question")
        typing.write("张敏: 已联系各科室，完成一半\n")
        await until(lambda: "📝 进展已记录" in printed(), "progress saved")
        typing.write("as 张敏: 已完成 会议纪要已报送\n")  # answers the reminder itself
        await until(lambda: "已记录完成" in printed(), "the completion")
        typing.write(f"as 张敏 #{reminder}: [申请延期]\n")  # the old card: already done
        await until(lambda: "已办结或已取消" in printed(), "the stale button")
        before = printed().count("发给 熊伟")  # 熊伟 had the morning digest
        typing.write("熊伟: /tasks\n")
        await until(lambda: printed().count("发给 熊伟") == before + 1, "熊伟's list")
        typing.write("王五: 已完成\n")
        await until(lambda: "没有名为“王五”的人" in printed(), "an unknown name")
        typing.write("随便写写\n")
        await until(lambda: "看不懂“随便写写”" in printed(), "a line of no form")
        typing.close()  # the end of input ends the reading, not the process
        await asyncio.sleep(0.1)
        await frontend.stop()

    try:
        asyncio.run(scenario())
    finally:
        typing.close()  # the reader sees the end of input, and only then is its end closed
        time.sleep(0.1)
        stdin.close()
        print(printed())
    occ = occurrence(engine, "4")
    assert occ.status == "done"
    with Session(engine) as session:
        replies = session.exec(select(Reply).where(Reply.occurrence_id == occ.id)).all()
    kinds = {(r.kind, r.note) for r in replies}
    assert ("progress", "已联系各科室，完成一半") in kinds
    assert ("done", "会议纪要已报送") in kinds
    assert "Traceback" not in printed()


def test_a_real_run_console_process_answers_typed_lines(tmp_path: Path) -> None:
    """The real process on the wall clock (it has no simulated one): an answer by command
    (``/done ID``) and a list, printed as that person's replies; nothing of the loop is faked."""
    url = f"sqlite:///{tmp_path / 'run.db'}"
    engine = open_store(url)
    seed(engine)
    occ_id = occurrence(engine, "4").id
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DUTYBOT_TICK_SECONDS": "0.5",
        "DUTYBOT_LANG": "zh-CN",
    }
    env.pop("TELEGRAM_TOKEN", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--console"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None
    process.stdin.write(f"as 张敏: /done {occ_id} 会议纪要已报送\n张敏：/tasks\n")
    process.stdin.flush()
    try:
        deadline = time.monotonic() + 30
        while occurrence(engine, "4").status != "done" and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)  # the list after it
    finally:
        process.terminate()
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err[-2000:]
    assert occurrence(engine, "4").status == "done", out[-2000:]
    assert "Traceback" not in err
    assert "[控制台] 可在此以某人身份回复" in out
    assert "已记录完成" in out and "会议纪要已报送" in out
    assert out.count("发给 张敏") >= 2  # the completion and the list, printed to 张敏
    engine.dispose()
