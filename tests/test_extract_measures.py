"""Numbered measures without labels: assignments, headings, frame parts, refs, web layout."""

from __future__ import annotations

from datetime import date

import pytest

from bot.extract.assignment import read_assignment
from bot.extract.blocks import Document, Para, Table
from bot.extract.labels import Role
from bot.extract.markup import html_blocks
from bot.extract.owners import Kind, classify, split_names
from bot.extract.pipeline import extract_document
from bot.extract.reader import text_blocks


def _items(text: str, year: int | None = 2023) -> dict:
    doc = Document("m.txt", text_blocks(text))
    return {i.ref: i for i in extract_document(doc, year=year).items}


@pytest.mark.parametrize(
    ("tail", "units", "partners", "deadline"),
    [
        ("（市场监管总局负责）", ["市场监管总局"], [], None),
        ("（交通运输部、财政部负责）", ["交通运输部、财政部"], [], None),
        ("（国家发展改革委会同有关部门负责）", ["国家发展改革委"], ["有关部门"], None),
        ("（市住建局牵头，市应急局配合）", ["市住建局"], ["市应急局"], None),
        ("（各区县人民政府负责，长期坚持）", ["各区县人民政府"], [], "长期坚持"),
        (
            "（市应急局会同市委编办负责，2023年6月底前完成）",
            ["市应急局"],
            ["市委编办"],
            "2023年6月底前完成",
        ),
        ("（2022年9月底前）", [], [], "2022年9月底前"),
        # owners without a verb, then the time clause
        ("（市应急局、市住建局，2023年6月底前）", ["市应急局、市住建局"], [], "2023年6月底前"),
        ("（各街道办事处负责，即时）", ["各街道办事处"], [], "即时"),
        ("（各村（社区）负责）", ["各村（社区）"], [], None),
    ],
)
def test_unlabelled_assignments(
    tail: str, units: list[str], partners: list[str], deadline: str | None
) -> None:
    body, fields = read_assignment("开展专项整治。" + tail)
    assert body == "开展专项整治。"
    assert fields.get(Role.UNITS, []) == units
    assert fields.get(Role.PARTNERS, []) == partners
    assert fields.get(Role.DEADLINE, [None])[0] == deadline


@pytest.mark.parametrize("tail", ["（以下简称“十五条硬措施”）", "（含试点单位）", "（2022年版）"])
def test_explanations_in_brackets_are_not_assignments(tail: str) -> None:
    assert read_assignment("落实制度" + tail)[1] == {}


@pytest.mark.parametrize(
    ("text", "units", "partners", "title"),
    [
        (
            "由区应急局牵头，区公安分局、区交通局配合，开展危化品运输专项整治，6月底前完成。",
            ["区应急局"],
            ["区公安分局", "区交通局"],
            "开展危化品运输专项整治",
        ),
        ("区住建委负责，开展燃气隐患排查，每月通报1次。", ["区住建委"], [], "开展燃气隐患排查"),
        ("由各街道办事处负责，开展“九小场所”消防排查。", ["各街道办事处"], [], "开展“九小场所”"),
    ],
)
def test_an_assignment_leading_the_measure_gives_its_owners(
    text: str, units: list[str], partners: list[str], title: str
) -> None:
    item = _items("1." + text)["1"]
    assert item.owners.units == units
    assert item.owners.partners == partners
    assert item.title.startswith(title)


@pytest.mark.parametrize(
    "text",
    [
        "主要负责人负责，组织制定本单位安全生产规章制度。",  # people, not units
        "企业要落实主体责任，对本单位安全生产工作负责。",  # a sentence, not a clause of names
    ],
)
def test_a_subject_that_is_no_unit_list_is_no_leading_assignment(text: str) -> None:
    assert _items("1." + text)["1"].owners.units == []


def test_every_numbered_measure_is_an_item_and_headings_and_frame_are_not() -> None:
    items = _items(
        "\n".join(
            [
                "一、总体要求",
                "（一）指导思想。以习近平新时代中国特色社会主义思想为指导。",
                "（二）工作目标。到2025年，事故总量持续下降。",
                "二、重点任务",
                "（三）危险化学品领域。",
                "1.开展危险化学品企业专项检查。",
                "2.每月通报1次检查情况。",
                "（四）加强执法。开展联合执法。（市应急局负责）",
                "三、工作要求",
                "（一）加强组织领导。各地要高度重视。",
            ]
        )
    )
    assert set(items) == {"1", "2", "4", "3.1"}
    assert items["1"].owners.empty() and items["1"].undated
    assert [r.frequency.label() for r in items["2"].recurrences] == ["month*1"]
    assert items["4"].owners.units == ["市应急局"]
    assert any(n.key == "no_owner" for n in items["3.1"].notes)


def test_a_title_line_takes_the_paragraph_below_it() -> None:
    items = _items("1.加强组织领导\n各乡镇要成立工作专班，6月底前完成部署。\n2.开展排查。")
    assert items["1"].due == date(2023, 6, 30)
    assert "工作专班" in items["1"].detail


def test_an_item_number_run_into_digits_keeps_its_item() -> None:
    items = _items("10.开展检查。\n11.121人才工程项目落实安全员制度。\n3.31事故教训要汲取。")
    assert "11" in items and items["11"].title.startswith("121人才")
    assert "3" not in items  # "3.31" is not item 3: the sequence is at 12


def test_undated_is_not_ongoing_and_explicit_words_are() -> None:
    items = _items("1.持续深化专项整治。\n2.常态化开展夜查。\n3.建立长效机制。（长期坚持）")
    assert items["1"].undated and not items["1"].ongoing
    assert items["2"].ongoing and items["2"].deadline_text == "常态化"
    assert items["3"].ongoing and items["3"].deadline_text == "长期坚持"


def test_year_from_the_issue_date_not_the_latest_date_in_the_text() -> None:
    doc = Document(
        "y.txt",
        text_blocks(
            "1.开展排查，2025年6月底前完成。\n2.开展整治，6月底前完成。\n二〇二三年四月十二日"
        ),
    )
    extraction = extract_document(doc)
    assert extraction.meta.year == 2023 and extraction.year_found
    items = {i.ref: i for i in extraction.items}
    assert items["2"].due == date(2023, 6, 30)


@pytest.mark.parametrize(
    "name", ["宣传", "应急", "司法", "公安", "发改", "住建", "交通", "人社", "县公安", "市场监管"]
)
def test_department_abbreviations_are_units(name: str) -> None:
    assert classify(name) is Kind.UNIT


def test_joined_bodies() -> None:
    assert split_names("各区县党委、政府") == ["各区县党委", "各区县政府"]
    assert split_names("各级党委和政府") == ["各级党委", "各级政府"]
    assert split_names("市发展改革委等部门和各区县人民政府") == ["市发展改革委", "各区县人民政府"]
    assert split_names("市应急局、市交通运输局等行业主管部门按职责分工负责") == [
        "市应急局",
        "市交通运输局",
    ]


def test_a_page_inside_layout_tables_yields_its_text_and_its_data_table() -> None:
    html = (
        "<table><tr><td><a href='/'>首页</a></td><td><a href='/z'>政务公开</a></td></tr></table>"
        "<table><tr><td><p>关于印发任务分工的通知</p><p>2022年3月16日</p>"
        "<table><tr><td>序号</td><td>重点任务</td><td>责任单位</td></tr>"
        "<tr><td>1</td><td>开展排查。</td><td>应急办<br>派出所</td></tr></table>"
        "</td></tr></table>"
        "<table><tr><td>版权所有 2018-2024</td></tr></table>"
    )
    blocks = html_blocks(html)
    texts = [b.text for b in blocks if isinstance(b, Para)]
    assert texts == ["关于印发任务分工的通知", "2022年3月16日", "版权所有 2018-2024"]
    [table] = [b for b in blocks if isinstance(b, Table)]
    assert table.rows[1].texts() == ["1", "开展排查。", "应急办\n派出所"]
    extraction = extract_document(Document("p.html", blocks))
    assert extraction.meta.year == 2022
    assert extraction.items[0].owners.units == ["应急办", "派出所"]


def test_markup_never_reaches_a_name() -> None:
    text = "序号\t重点任务\t责任单位\t完成时限\n1\t<p>开展排查。</p>\t<p>应急<br>公安</p>\t<p>&nbsp;6月底前&nbsp;</p>"
    [item] = _items(text).values()
    assert item.owners.units == ["应急", "公安"]
    assert item.deadline_text == "6月底前"


def test_measures_under_a_title_line_are_tasks_of_their_own() -> None:
    """（一）… 1.… (1)…: under a title alone the (1) (2) are the tasks, ref "3.1"."""
    items = _items(
        "\n".join(
            [
                "（一）健全责任体系",
                "1.落实领导责任。每季度至少研究1次安全生产工作。（牵头单位：区安委办）",
                "2.强化企业主体责任。",
                "(1)督促企业建立全员安全生产责任制。（牵头单位：区应急局；配合单位：区经信局）",
                "(2)推动企业投保安全生产责任保险。（区金融办负责，2023年9月底前）",
                "3.加强执法检查。对重点企业开展执法检查，年底前全覆盖。",
                "(1)制定年度执法计划。",
                "(2)每月通报执法情况。",
            ]
        )
    )
    assert set(items) == {"1", "2.1", "2.2", "3"}
    assert items["2.1"].owners.units == ["区应急局"]
    assert items["2.1"].owners.partners == ["区经信局"]
    assert items["2.2"].owners.units == ["区金融办"] and items["2.2"].due == date(2023, 9, 30)
    # under a measure with text of its own, (1) (2) stay its parts
    assert items["3"].due == date(2023, 12, 31)
    assert [r.frequency.label() for r in items["3"].recurrences] == ["month*1"]


def test_a_time_clause_after_the_labelled_owners_is_the_deadline() -> None:
    items = _items(
        "1.推动企业投保安全生产责任保险。（牵头单位：区应急局；配合单位：区金融办；"
        "2023年第三季度）\n2.开展应急演练。（牵头单位：区应急局；配合单位：各街道，长期坚持）"
    )
    assert items["1"].owners.partners == ["区金融办"]
    assert items["1"].due == date(2023, 9, 30) and items["1"].deadline_text == "2023年第三季度"
    assert items["2"].owners.partners == ["各街道"] and items["2"].ongoing


def test_a_deadline_column_naming_the_period_adds_no_second_duty() -> None:
    """完成时限 "每月" beside "每月检查企业不少于10家": one monthly duty, the text's count."""
    text = (
        "序号\t工作任务\t责任科室\t完成时限\n"
        "1\t开展执法检查，每月检查企业不少于10家。\t执法大队\t每月\n"
        "2\t报送工作总结。\t安监股\t每月5日前\n"
        "3\t开展联合检查，每月开展1次。\t安监股\t每月5日前"
    )
    items = _items(text)
    assert [r.frequency.label() for r in items["1"].recurrences] == ["month*10"]
    assert [r.frequency.label() for r in items["2"].recurrences] == ["month*1@day5"]
    # the text's count, the column's day
    assert [r.frequency.label() for r in items["3"].recurrences] == ["month*1@day5"]


def test_a_row_below_a_merged_task_cell_is_titled_by_its_measure() -> None:
    text = (
        "序号\t工作任务\t具体措施\t牵头单位\t完成时限\n"
        "1\t压实安全生产责任\t修订部门安全生产责任清单。\t区应急局\t6月底前\n"
        "2\t\t将安全生产纳入年度目标考核。\t区委组织部\t年底前"
    )
    items = _items(text)
    assert items["2"].title == "将安全生产纳入年度目标考核"


def test_beside_a_table_measures_under_a_title_line_are_tasks_too() -> None:
    """A notice whose body has owner tails and an annex table: "2.标题" over (1) (2)."""
    text = "\n".join(
        [
            "1.落实领导责任，每季度研究1次安全生产工作。（牵头单位：区安委办）",
            "2.强化企业主体责任。",
            "(1)督促企业建立全员安全生产责任制。（牵头单位：区应急局）",
            "(2)推动企业投保安全生产责任保险。（牵头单位：区金融办；完成时限：9月底前）",
            "附件",
            "序号\t工作任务\t牵头单位\t完成时限",
            "1\t落实领导责任，每季度研究1次安全生产工作。\t区安委办\t长期坚持",
            "3\t开展消防安全专项整治。\t区消防救援支队\t10月底前",
        ]
    )
    items = _items(text)
    assert set(items) == {"1", "2.1", "2.2", "3"}
    assert items["2.1"].owners.units == ["区应急局"]
    assert items["2.2"].owners.units == ["区金融办"] and items["2.2"].due == date(2023, 9, 30)
    assert items["1"].owners.units == ["区安委办"]


@pytest.mark.parametrize(
    "last",
    [
        "2023年3月5日印发",
        "某某县人民政府办公室　　2023年3月5日印发",
        "二〇二三年三月五日",
        # as web pages and converted files write the date
        "2023-03-05",
        "2023/3/5",
        "某某县人民政府办公室 2023.03.05 发布",
    ],
)
def test_the_year_from_the_imprint_line(last: str) -> None:
    doc = Document("y.txt", text_blocks(f"1.开展排查，6月底前完成。（县应急局负责）\n{last}"))
    extraction = extract_document(doc)
    assert extraction.meta.year == 2023 and extraction.year_found
    assert extraction.meta.issued_on == date(2023, 3, 5)


def test_measures_numbered_again_in_each_part_take_the_part_and_its_owners() -> None:
    """1. 2. again under each （一）: refs "1.2"; a heading's owner tail covers its measures;
    the signature's date after the last item is not that item's deadline."""
    items = _items(
        "\n".join(
            [
                "（一）加强危险化学品安全监管。（牵头单位：区应急局；配合单位：区公安分局）",
                "1.开展危险化学品储存场所专项检查。",
                "2.推进化工企业自动化改造，年底前完成。",
                "（二）强化消防安全。",
                "1.开展高层建筑消防整治。（区消防救援支队负责）",
                "2.开展老旧小区消防整治。（区住建委负责）",
                "二〇二三年三月五日",
            ]
        ),
        year=None,
    )
    assert list(items) == ["1.1", "1.2", "2.1", "2.2"]
    assert items["1.1"].owners.units == ["区应急局"]
    assert items["1.1"].owners.partners == ["区公安分局"]
    assert items["2.1"].owners.units == ["区消防救援支队"]
    assert items["2.2"].due is None and items["2.2"].undated
