"""Numbering forms, prose items with owner tails, tables read by column names, merging."""

from __future__ import annotations

from datetime import date

import pytest

from bot.extract.blocks import Cell, Document, Para, Row, Table
from bot.extract.draft import build_draft, dump
from bot.extract.labels import Role, role_of
from bot.extract.numbering import Level, parse_number, split_measures
from bot.extract.pipeline import extract_document
from bot.extract.prose import parse_tail
from bot.extract.reader import text_blocks
from bot.schedule.validate import load_schedule


@pytest.mark.parametrize(
    ("text", "level", "value"),
    [
        ("一、严格落实党组安全生产责任", Level.SECTION, 1),
        ("十五、统筹做好经济发展", Level.SECTION, 15),
        ("（一）严格《细则》", Level.ITEM_CN, 1),
        ("(八)完善", Level.ITEM_CN, 8),
        ("第三条 开展", Level.ITEM_CN, 3),
        ("9.严格落实", Level.ITEM, 9),
        ("12、在2022年5月中旬前", Level.ITEM, 12),
        ("3．全角点", Level.ITEM, 3),
        ("（1）5月底，建立", Level.SUB, 1),
        ("(2) 在年度考核中", Level.SUB, 2),
        ("1) 半括号", Level.SUB, 1),
        ("②第二项", Level.SUB2, 2),
    ],
)
def test_numbering_forms(text: str, level: Level, value: int) -> None:
    number = parse_number(text)
    assert number is not None and (number.level, number.value) == (level, value)


@pytest.mark.parametrize(
    "text", ["“3.31”全国安全生产电视电话会议", "2022年5月", "3.31会议", "各科室"]
)
def test_not_numbers(text: str) -> None:
    assert parse_number(text) is None


def test_measures_split_only_where_numbers_run_on() -> None:
    assert split_measures("(1) 建立机制。(2) 落实《刑法修正案（十一）》规定（2）条") == [
        "(1) 建立机制。",
        "(2) 落实《刑法修正案（十一）》规定（2）条",
    ]


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("牵头领导", Role.LEAD),
        ("责任领导", Role.RESPONSIBLE),
        ("分管县领导", Role.RESPONSIBLE),
        ("牵头科室", Role.UNITS),
        ("牵头单位", Role.UNITS),
        ("责任单位", Role.UNITS),
        ("责任单位（部门）", Role.UNITS),
        ("配合科室", Role.PARTNERS),
        ("配合单位", Role.PARTNERS),
        ("完成时限", Role.DEADLINE),
        ("时间节点", Role.DEADLINE),
        ("工作进度", Role.PROGRESS),
        ("任务类型", Role.CATEGORY),
        ("十五条硬措施", Role.CATEGORY),
        ("重点任务", Role.TASK),
        ("重庆市重点任务分解", Role.TASK),
        ("操作要点", Role.MEASURE),
        ("市住建委具体工作措施", Role.MEASURE),
        ("序号", Role.NUMBER),
        ("备注", Role.REMARK),
        ("责任人", Role.OWNERS),
        ("联系县领导", Role.LEAD),
        ("包保市领导", Role.LEAD),
        ("进度要求", Role.DEADLINE),
        ("协办单位", Role.PARTNERS),
        ("责任科室", Role.UNITS),
        ("挂点县领导", Role.LEAD),
        ("挂钩领导", Role.LEAD),
    ],
)
def test_column_names(name: str, role: Role) -> None:
    assert role_of(name) is role


def test_prose_tail_fields() -> None:
    body, fields = parse_tail(
        "党组专题研究。（牵头领导：邓清华；责任领导：熊伟；牵头科室：能源科，配合科室：办公室；"
        "完成时限：2022年5月底）"
    )
    assert body == "党组专题研究。"
    assert fields == {
        Role.LEAD: ["邓清华"],
        Role.RESPONSIBLE: ["熊伟"],
        Role.UNITS: ["能源科"],
        Role.PARTNERS: ["办公室"],
        Role.DEADLINE: ["2022年5月底"],
    }


@pytest.mark.parametrize(
    "text",
    [
        "签订责任书。（责任单位：镇应急办；配合单位：各村（社区））",
        "签订责任书。（配合单位：各村（社区）；完成时限：4月底前）",
        "签订责任书。　责任单位：镇应急办　配合单位：各村（社区）",
        "责任单位：镇应急办　　配合单位：各村（社区）　　完成时限：4月底前",
    ],
)
def test_a_name_ending_in_brackets_keeps_them_at_the_end_of_a_field(text: str) -> None:
    _, fields = parse_tail(text)
    assert fields[Role.PARTNERS] == ["各村（社区）"]


def test_tail_labels_of_reporting_lists_and_assigned_leaders() -> None:
    body, fields = parse_tail(
        "报送季度工作总结。挂点领导：刘卫东；主办单位：镇党政办；报送对象：区安委办；"
        "报送时限：每季度末"
    )
    assert body == "报送季度工作总结。"
    assert fields[Role.LEAD] == ["刘卫东"]
    assert fields[Role.UNITS] == ["镇党政办"]  # whom it goes to (报送对象) is no owner
    assert fields[Role.DEADLINE] == ["每季度末"]
    _, fields = parse_tail("开展排查。（责任单位：县住建局；进度安排：2023年9月底前）")
    assert fields[Role.DEADLINE] == ["2023年9月底前"]


def test_a_label_run_into_the_text_is_found() -> None:
    body, fields = parse_tail("开展检查研究解决问题责任单位：县应急局 完成时限：6月底前")
    assert body == "开展检查研究解决问题"
    assert fields[Role.UNITS] == ["县应急局"]


def _doc(text: str) -> Document:
    return Document("doc.txt", text_blocks(text))


def test_prose_items_with_labels_on_following_lines() -> None:
    text = "\n".join(
        [
            "2022年4月1日",
            "一、压实责任",
            "1、每月5日前报送隐患排查情况。",
            "责任单位：县应急局",
            "完成时限：长期坚持",
            "2、开展燃气安全专项整治，6月底前完成。（牵头单位：县住建委；配合单位：县市场监管局）",
            "(1)排查餐饮场所（责任单位：县市场监管局；完成时限：2022年5月10日前）",
        ]
    )
    items = {i.ref: i for i in extract_document(_doc(text)).items}
    assert items["1"].owners.units == ["县应急局"] and items["1"].ongoing
    assert [r.frequency.label() for r in items["1"].recurrences] == ["month*1@day5"]
    assert items["2"].due == date(2022, 6, 30)
    assert items["2"].owners.partners == ["县市场监管局"]


def test_body_and_table_merge_by_number_and_wording() -> None:
    text = "\n".join(
        [
            "（一）开展燃气安全排查整治。（牵头领导：张明；完成时限：2022年6月底）",
            "2.建立举报奖励机制。（牵头领导：李华；牵头科室：办公室；完成时限：2022年12月底）",
            "附件",
            "\t序号",
            "\t重点任务",
            "\t责任领导",
            "\t牵头科室",
            "",
            "\t1",
            "\t开展燃气安全排查整治，每月检查1次。",
            "\t王强",
            "\t安全科",
            "",
            "\t2",
            "\t建立举报奖励机制。",
            "\t",
            "\t办公室",
        ]
    )
    extraction = extract_document(_doc(text), year=2022)
    items = {i.ref: i for i in extraction.items}
    assert set(items) == {"1", "2"}
    one = items["1"]
    # the table is the source of the owners; what the body says differently is a note
    assert one.owners.lead == [] and one.owners.responsible == ["王强"]
    assert one.owners.units == ["安全科"]
    differ = [dict(n.context) for n in one.notes if n.key == "owners_differ"]
    assert {"role": "lead", "prose": "张明", "table": "—"} in differ
    assert one.due == date(2022, 6, 30)
    assert [r.frequency.label() for r in one.recurrences] == ["month*1"]
    assert len(one.lines) == 2


def test_owners_from_merged_cells_are_inherited_in_lost_merges() -> None:
    rows = [
        ["十五条硬措施", "重点任务", "牵头单位"],
        ["一、压实责任", "1.第一项。", "办公室"],
        ["", "2.第二项。", ""],
        ["二、排查", "3.第三项。", ""],
    ]
    table = Table([Row(tuple(Cell(t, n) for t in r)) for n, r in enumerate(rows, 1)])
    items = {i.ref: i for i in extract_document(Document("t.md", [table]), year=2022).items}
    assert items["2"].owners.units == ["办公室"]
    assert any(n.key == "owners_inherited" for n in items["2"].notes)
    assert items["3"].owners.units == []  # another section: not inherited
    assert any(n.key == "no_owner" for n in items["3"].notes)


def test_numbering_restarting_per_section_gets_section_refs() -> None:
    text = "\n".join(
        [
            "一、第一部分",
            "1.甲。（责任单位：办公室）",
            "二、第二部分",
            "1.乙。（责任单位：办公室）",
        ]
    )
    refs = [i.ref for i in extract_document(_doc(text), year=2022).items]
    assert refs == ["1.1", "2.1"]


def test_unplaced_block_lists_what_was_not_a_task() -> None:
    text = "\n".join(
        [
            "（一）加强组织领导，每季度研究一次安全生产工作。",
            "1.开展排查。（责任单位：应急办；完成时限：2022年6月底）",
            "| 序号 | 说明 |",
            "|---|---|",
            "| 1 | 表格没有责任单位列 |",
        ]
    )
    extraction = extract_document(Document("u.txt", text_blocks(text)), year=2022)
    reasons = {(u.line, u.reason) for u in extraction.unplaced}
    assert (1, "not_an_item") in reasons
    assert any(r == "no_header" for _, r in reasons)
    draft = dump(build_draft(extraction))
    header = draft.split("\nschedule:", 1)[0]
    assert "u.txt:1" in header and "未能归入任务" in header
    english = dump(build_draft(extraction, lang="en"))
    assert "could not be placed" in english.split("\nschedule:", 1)[0]


def test_draft_defines_every_name_and_validates() -> None:
    text = "\n".join(
        [
            "1.研究部署。（牵头领导：张明；责任领导：各分管领导、县应急局；配合单位：王强；完成时限：2022年5月底）",
            "2.每月通报，每季度讲评。（责任单位：安委办）",
            "3.持续开展宣传。（责任单位：宣传部）",
            "4.建立台账。（责任单位：安委办）",
        ]
    )
    extraction = extract_document(Document("d.txt", text_blocks(text)), year=2022)
    items = {i.ref: i for i in extraction.items}
    assert items["1"].owners.units == ["县应急局"]  # a unit in a leader field moves
    assert items["1"].owners.responsible == ["各分管领导"]
    yaml_text = dump(build_draft(extraction))
    loaded = load_schedule("d.yaml", text=yaml_text)
    assert loaded.ok, [str(p) for p in loaded.errors]
    assert loaded.spec is not None
    tasks = {t.ref: t for t in loaded.spec.tasks}
    assert "2" not in tasks and {tasks["2.1"].every, tasks["2.2"].every} == {"month", "quarter"}
    # 持续 in running text says how, not for how long: no deadline means 待定, not ongoing
    assert tasks["3"].undated and tasks["4"].undated and not tasks["3"].ongoing
    assert "张明" in loaded.spec.people and "王强" in loaded.spec.people
    assert loaded.spec.units["县应急局"].contacts == []
    assert "请指定联络人" in yaml_text or "联络人" in yaml_text
    assert "文件未写明完成时限" in yaml_text  # items 3, 4: 时限待定, said so


def test_paragraphs_alone_are_kept_in_order() -> None:
    doc = _doc("标题\n\n正文一\n正文二")
    assert [(b.text, b.line) for b in doc.blocks if isinstance(b, Para)] == [
        ("标题", 1),
        ("正文一", 3),
        ("正文二", 4),
    ]
