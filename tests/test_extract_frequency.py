"""Frequency phrases → every / times / by."""

from __future__ import annotations

import pytest

from bot.extract.frequency import distinct, find_frequencies


def labels(text: str) -> list[str]:
    return [f.label() for f in find_frequencies(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("每日在主流媒体发布1条以上安全新闻", ["day*1"]),
        ("每天巡查", ["day*1"]),
        ("分管负责人每周调度推动执法", ["week*1"]),
        ("主要负责人每月开展执法工作检查", ["month*1"]),
        ("每季度至少组织召开1次会议", ["quarter*1"]),
        ("每半年听取1次班子成员履职情况汇报", ["half-year*1"]),
        ("每年至少专题学习1次", ["year*1"]),
        ("监管人员检查工作日开展执法", ["workday*1"]),
        ("每个工作日报告", ["workday*1"]),
        ("每年组织不少于2次的应急救援演练", ["year*2"]),
        ("每月至少指导检查2家以上挂牌企业，督促整改2个以上突出问题隐患", ["month*2"]),
        ("每月开展两次", ["month*2"]),
        ("每年开展一次应急预案修编", ["year*1"]),
        ("每月2日前报送", ["month*1@day2"]),
        ("每月10日前报送上月情况", ["month*1@day10"]),
        ("实行周检查、月通报", ["week*1", "month*1"]),
        ("班组日排查、部门周排查、厂长经理月排查", ["day*1", "week*1", "month*1"]),
        ("按月通报执法情况", ["month*1"]),
        ("每两周开展一次", ["FREQ=WEEKLY;INTERVAL=2*1"]),
        # a 旬 is ten days: the format has no such period, so three times a month
        ("每旬开展1次联合检查", ["month*3"]),
        # the count right after the period: "一年两次" is twice a year, not a slogan
        ("应急演练一年两次", ["year*2"]),
        ("储备物资半年一次清查盘点", ["half-year*1"]),
        ("联合检查一季度一次", ["quarter*1"]),
        ("安全例会一月两次", ["month*2"]),
        ("发放一次性补助", []),
        ("第一年两次培训", []),
        ("每旬通报违规车辆", ["month*3"]),
        ("每旬至少调度2次", ["month*6"]),
        # "一X一Y": once per period, even inside the quotes that name the system
        ("实行“一月一调度、一季一通报”制度", ["month*1", "quarter*1"]),
        ("半年一总结", ["half-year*1"]),
        ("每双月通报1次", ["FREQ=MONTHLY;INTERVAL=2*1"]),
        # a yearly total after a comma belongs to the year, not to the quarter before it
        ("每季度组织开展1次危险化学品专项检查，全年不少于4次", ["quarter*1"]),
        ("每月检查1次，年内不少于12次", ["month*1"]),
        (
            "主要负责人每季度组织1次专题研究，解决重大问题；每季度实地开展调研检查1次；"
            "每半年听取1次班子成员履职情况汇报。",
            ["quarter*1", "quarter*1", "half-year*1"],
        ),
    ],
)
def test_frequencies(text: str, expected: list[str]) -> None:
    assert labels(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "日常抓“日周月”隐患排查",  # a slogan in quotes
        "依法按日实施连续处罚",  # a penalty per day
        "3个工作日内办结",  # a time limit
        "编制年度监督检查计划",
        "按年度计划开展",
        "定期开展执法核查",  # regular, but no period: ongoing, not every
    ],
)
def test_not_frequencies(text: str) -> None:
    assert labels(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "每人每年培训不少于20学时",
        "每年资助不少于100名专业技术人员",  # a head-count quota, not 100 completions
        "每年培训不少于500人次",
        "每年培训消防安全管理人员不少于300人",
        "每年完成改造不少于30公里",
    ],
)
def test_counts_in_other_units_are_not_times(text: str) -> None:
    assert labels(text) == ["year*1"]


def test_distinct_keeps_one_per_shape_and_the_first_phrase() -> None:
    found = distinct(find_frequencies("每季度组织1次专题研究；每季度实地开展调研检查1次"))
    assert [f.label() for f in found] == ["quarter*1"]
    assert found[0].phrase == "每季度组织1次专题研究"


@pytest.mark.parametrize("text", ["2023年一月一日起施行", "统一部署", "一季度完成", "一月份"])
def test_dates_and_words_with_one_are_no_recurrence(text: str) -> None:
    assert labels(text) == []
