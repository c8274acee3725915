"""``run()``: the function ``dutybot extract DOC -o FILE`` calls."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.extract.cli import LARGE, run
from bot.schedule.validate import load_schedule

ITEM = (
    "{n}.开展第{n}项排查，每月检查1次。（牵头领导：张明；责任单位：应急办；完成时限：2022年6月底）"
)


def _write(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "list.txt"
    lines = ["关于印发安全生产任务清单的通知", *(ITEM.format(n=n) for n in range(1, count + 1))]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_writes_a_valid_draft(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _write(tmp_path, 3)
    out = tmp_path / "draft.yaml"
    assert run(doc, out) == 0
    loaded = load_schedule(out)
    assert loaded.ok, [str(p) for p in loaded.errors]
    err = capsys.readouterr().err
    assert "草稿已写入" in err and "正在整理条目" not in err


def test_stdout_when_no_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(_write(tmp_path, 2), None, year=2023) == 0
    out = capsys.readouterr().out
    assert out.startswith("# ") and "schedule: list" in out
    assert "2023 年（命令行指定）" in out


def test_progress_for_large_documents(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _write(tmp_path, LARGE + 10)
    assert run(doc, tmp_path / "big.yaml") == 0
    err = capsys.readouterr().err
    assert err.count("正在整理条目") >= 5
    assert f"{LARGE + 10}/{LARGE + 10}" in err


def test_english(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(_write(tmp_path, 1), tmp_path / "d.yaml", lang="en") == 0
    assert "draft written to" in capsys.readouterr().err
    assert (tmp_path / "d.yaml").read_text(encoding="utf-8").startswith("# DRAFT")


def test_unreadable_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path / "missing.docx", None) == 1
    assert "无法读取" in capsys.readouterr().err
    broken = tmp_path / "broken.docx"
    broken.write_bytes(b"not a zip")
    assert run(broken, None) == 1


def test_a_numbered_measure_without_owner_or_deadline_is_still_drafted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = tmp_path / "prose.txt"
    doc.write_text("（一）加强领导，每季度研究一次。\n其他内容。", encoding="utf-8")
    out = tmp_path / "d.yaml"
    assert run(doc, out) == 0
    text = out.read_text(encoding="utf-8")
    assert "未找到责任人或责任单位" in text and "every: quarter" in text


def test_no_items(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = tmp_path / "prose.txt"
    doc.write_text("加强领导，每季度研究一次。\n其他内容。", encoding="utf-8")
    out = tmp_path / "d.yaml"
    assert run(doc, out) == 1
    assert not out.exists()
    assert "未找到任何任务条目" in capsys.readouterr().err


def test_year_fallback_is_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = tmp_path / "noyear.txt"
    doc.write_text("1.开展排查，6月底前完成。（责任单位：应急办）", encoding="utf-8")
    assert run(doc, None) == 0
    assert "文件中未找到年份" in capsys.readouterr().out


REVIEWED = Path(__file__).resolve().parents[1] / "schedules"


@pytest.mark.parametrize("name", ["hangu-town-2022.yaml", "cq-zjw-2022.yaml"])
def test_reviewed_schedules_validate_and_keep_sources(name: str) -> None:
    loaded = load_schedule(REVIEWED / name)
    assert loaded.ok, [str(p) for p in loaded.errors]
    assert loaded.spec is not None
    assert all(t.source for t in loaded.spec.tasks)
    placeholders = [p for p, spec in loaded.spec.people.items() if spec.title == "待指定（占位）"]
    assert placeholders and all(p.endswith("联络员") for p in placeholders)
