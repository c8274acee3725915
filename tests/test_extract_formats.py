"""Each input format reads into the same items: .docx, .xlsx, HTML, Markdown, tab-separated.

Fixtures are built at test time with python-docx and openpyxl; no binary files in git.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import docx
import openpyxl
import pytest

from bot.extract.blocks import Para, Table
from bot.extract.pipeline import extract_file
from bot.extract.reader import UnreadableDocument, read_document

HEADER = ["序号", "重点任务", "责任单位", "完成时限", "工作进度"]
ROWS = [
    ["1", "每月5日前报送隐患排查治理情况。", "县应急局（牵头）、县公安局", "长期坚持", ""],
    ["2", "开展燃气安全专项整治。", "县住建委", "2022年6月底前", "已完成50%"],
    ["3", "健全安全生产举报奖励机制。", "县应急局", "持续推进", ""],
]


def _check(path: Path) -> None:
    extraction = extract_file(path, year=2022)
    items = {i.ref: i for i in extraction.items}
    assert set(items) == {"1", "2", "3"}
    one, two, three = items["1"], items["2"], items["3"]
    assert one.owners.units == ["县应急局", "县公安局"]
    assert one.ongoing and one.due is None
    assert [r.frequency.label() for r in one.recurrences] == ["month*1@day5"]
    assert two.due == date(2022, 6, 30) and not two.ongoing
    assert two.owners.units == ["县住建委"]
    assert three.ongoing
    assert all(i.lines[0] > 0 for i in extraction.items)


def test_docx(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_paragraph("县安委会落实安全生产重点任务清单")
    table = document.add_table(rows=1 + len(ROWS), cols=len(HEADER))
    for c, name in enumerate(HEADER):
        table.cell(0, c).text = name
    for r, row in enumerate(ROWS, 1):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_paragraph("2022年5月20日")
    path = tmp_path / "list.docx"
    document.save(str(path))
    _check(path)
    doc = read_document(path)
    assert isinstance(doc.blocks[0], Para) and isinstance(doc.blocks[1], Table)


def test_docx_merged_cells_repeat_owners(tmp_path: Path) -> None:
    """A vertically merged 责任单位 cell covers both items; a merged 类别 cell is no text."""
    document = docx.Document()
    table = document.add_table(rows=3, cols=4)
    for c, name in enumerate(["任务类型", "重点任务", "牵头单位", "完成时限"]):
        table.cell(0, c).text = name
    table.cell(1, 0).text = "一、严格落实责任"
    table.cell(1, 0).merge(table.cell(2, 0))
    table.cell(1, 1).text = "1.制定工作方案。"
    table.cell(2, 1).text = "2.召开动员部署会。"
    table.cell(1, 2).text = "办公室"
    table.cell(1, 2).merge(table.cell(2, 2))
    table.cell(1, 3).text = "5月底"
    table.cell(2, 3).text = "6月底"
    path = tmp_path / "merged.docx"
    document.save(str(path))
    items = {i.ref: i for i in extract_file(path, year=2022).items}
    assert items["2"].owners.units == ["办公室"]
    assert items["2"].due == date(2022, 6, 30)
    assert items["2"].section == 1


def test_docx_automatic_numbering_is_written_back(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_paragraph(
        "开展隐患排查。（责任单位：应急办；完成时限：2022年6月底）", style="List Number"
    )
    document.add_paragraph(
        "开展应急演练。（责任单位：应急办；完成时限：2022年9月底）", style="List Number"
    )
    path = tmp_path / "numbered.docx"
    document.save(str(path))
    items = extract_file(path, year=2022).items
    assert [i.ref for i in items] == ["1", "2"]
    assert items[1].due == date(2022, 9, 30)


def test_xlsx_with_a_title_row_and_merged_cells(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["县安委会落实安全生产重点任务清单"])
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(HEADER))
    sheet.append(HEADER)
    for row in ROWS:
        sheet.append(row)
    sheet.cell(row=4, column=4).value = datetime(2022, 6, 30)  # a real date cell
    path = tmp_path / "list.xlsx"
    workbook.save(str(path))
    _check(path)
    doc = read_document(path)
    assert isinstance(doc.blocks[0], Para)
    assert extract_file(path).meta.title == "县安委会落实安全生产重点任务清单"


def test_html_with_rowspan(tmp_path: Path) -> None:
    rows = "".join("<tr>" + "".join(f"<td>{v}</td>" for v in row) + "</tr>" for row in ROWS)
    html = (
        "<html><body><h1>重点任务清单</h1><table>"
        "<tr>"
        + "".join(f"<th>{h}</th>" for h in HEADER)
        + "</tr>"
        + rows
        + "</table></body></html>"
    )
    path = tmp_path / "list.html"
    path.write_text(html, encoding="utf-8")
    _check(path)
    spanned = (
        "<table><tr><th>序号</th><th>重点任务</th><th>牵头单位</th></tr>"
        "<tr><td>1</td><td>开展排查。</td><td rowspan='2'>应急办</td></tr>"
        "<tr><td>2</td><td>开展整治。</td></tr></table>"
    )
    path.write_text(spanned, encoding="utf-8")
    items = extract_file(path, year=2022).items
    assert [i.owners.units for i in items] == [["应急办"], ["应急办"]]


def test_markdown_table_with_shifted_row(tmp_path: Path) -> None:
    """A sub-measure row that lost its merged cells is moved back under its column."""
    text = "\n".join(
        [
            "| 十五条硬措施 | 重点任务分解 | 具体工作措施 | 牵头单位 | 配合单位 |",
            "|---|---|---|---|---|",
            "| 一、压实责任 | 1.研究部署。 | (1) 每季度召开1次会议。 | 办公室 | 各处室 |",
            "| (2) 每半年听取1次汇报。 | 法制处 |  |  |  |",
        ]
    )
    path = tmp_path / "list.md"
    path.write_text(text, encoding="utf-8")
    [item] = extract_file(path, year=2022).items
    assert item.owners.units == ["办公室", "法制处"]
    assert item.owners.partners == ["各处室"]
    assert {r.frequency.label() for r in item.recurrences} == {"quarter*1", "half-year*1"}


def test_tab_separated_rows(tmp_path: Path) -> None:
    text = "\n".join(["\t".join(HEADER), *("\t".join(row) for row in ROWS)])
    path = tmp_path / "list.txt"
    path.write_text(text, encoding="utf-8")
    _check(path)


def test_one_cell_per_line_export(tmp_path: Path) -> None:
    """Word's text export: a tab opens each cell; untabbed lines continue the cell."""
    lines = ["清单", "", *(f"\t{h}" for h in HEADER), ""]
    for row in ROWS:
        lines += [
            f"\t{row[0]}",
            f"\t{row[1]}",
            "（续）补充说明。",
            *(f"\t{v}" for v in row[2:]),
            "",
        ]
    path = tmp_path / "export.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    _check(path)
    first = extract_file(path, year=2022).items[0]
    assert "（续）补充说明。" in first.detail


def test_gb18030_text(tmp_path: Path) -> None:
    path = tmp_path / "gbk.txt"
    path.write_bytes("1.开展排查。（责任单位：应急办；完成时限：6月底前）".encode("gb18030"))
    [item] = extract_file(path, year=2022).items
    assert item.owners.units == ["应急办"]


@pytest.mark.parametrize("name", ["missing.txt", "old.doc"])
def test_unreadable(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name.endswith(".doc"):
        path.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(UnreadableDocument):
        read_document(path)


def _grouped_docx(path: Path, measures: list[str]) -> None:
    """序号 and 重点任务 merged over two rows each; each row one 具体措施 with its owners."""
    document = docx.Document()
    document.add_paragraph("某区2023年安全生产工作任务分工")
    rows = [
        ["序号", "重点任务", "具体措施", "牵头单位", "配合单位", "完成时限"],
        ["1", "压实责任", measures[0], "区应急局", "区委编办", "6月底前"],
        ["", "", measures[1], "区委组织部", "区应急局", "年底前"],
        ["2", "专项整治", measures[2], "区住建局", "区市场监管局", "9月底前"],
        ["", "", measures[3], "区公安分局", "区交通局", "长期坚持"],
    ]
    table = document.add_table(rows=len(rows), cols=len(rows[0]))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    for top in (1, 3):
        for column in (0, 1):
            table.cell(top, column).merge(table.cell(top + 1, column))
    document.save(str(path))


def test_docx_measures_numbered_again_under_a_merged_number_are_tasks(tmp_path: Path) -> None:
    path = tmp_path / "grouped.docx"
    _grouped_docx(
        path,
        [
            "1.修订责任清单。",
            "2.纳入年度考核。",
            "1.开展燃气排查。",
            "2.开展交通整治，每周通报1次。",
        ],
    )
    items = {i.ref: i for i in extract_file(path).items}
    assert list(items) == ["1.1", "1.2", "2.1", "2.2"]
    assert items["1.2"].title == "纳入年度考核"
    assert items["1.2"].owners.units == ["区委组织部"] and items["1.2"].due == date(2023, 12, 31)
    assert items["2.2"].ongoing and [r.frequency.label() for r in items["2.2"].recurrences] == [
        "week*1"
    ]


def test_docx_measures_numbered_on_under_a_merged_number_keep_their_numbers(
    tmp_path: Path,
) -> None:
    path = tmp_path / "running.docx"
    _grouped_docx(
        path, ["1.修订责任清单。", "2.纳入年度考核。", "3.开展燃气排查。", "4.开展交通整治。"]
    )
    items = {i.ref: i for i in extract_file(path).items}
    assert list(items) == ["1", "2", "3", "4"]
    assert items["4"].owners.units == ["区公安分局"]


def test_an_owner_cell_with_labels_inside_gives_each_role(tmp_path: Path) -> None:
    """One 责任单位 column whose cells say "牵头单位：A<br>配合单位：B": labels never leak."""
    path = tmp_path / "labelled-cells.html"
    path.write_text(
        "<html><body><p>2023年3月1日</p><table border=1><thead><tr><th>序号</th>"
        "<th>工作任务</th><th>责任单位</th><th>完成时限</th></tr></thead><tbody>"
        "<tr><td>1</td><td>开展危化品检查。</td><td>牵头单位：区应急局<br>"
        "配合单位：区公安分局、区交通局</td><td>6月底前</td></tr>"
        "<tr><td>2</td><td>开展消防整治。</td><td>牵头：区消防救援支队；配合：各街道</td>"
        "<td>每季度</td></tr></tbody></table></body></html>",
        encoding="utf-8",
    )
    items = {i.ref: i for i in extract_file(path).items}
    assert items["1"].owners.units == ["区应急局"]
    assert items["1"].owners.partners == ["区公安分局", "区交通局"]
    assert items["2"].owners.units == ["区消防救援支队"]
    assert items["2"].owners.partners == ["各街道"]


def test_an_owner_cell_with_role_verbs_gives_each_role(tmp_path: Path) -> None:
    """ "A牵头，B配合" or "A会同B" in one 责任单位 cell: A leads, B partners; no verb, no split."""
    path = tmp_path / "verb-cells.md"
    path.write_text(
        "\n".join(
            [
                "2023年3月1日",
                "",
                "| 序号 | 工作任务 | 责任单位 | 完成时限 |",
                "|---|---|---|---|",
                "| 1 | 开展燃气整治。 | 区住建委牵头，区市场监管局、各街道配合 | 6月底前 |",
                "| 2 | 开展消防整治。 | 区消防救援支队会同区住建委负责 | 每季度 |",
                "| 3 | 开展危化品检查。 | 区应急局、区公安分局 | 年底前 |",
            ]
        ),
        encoding="utf-8",
    )
    items = {i.ref: i for i in extract_file(path).items}
    assert items["1"].owners.units == ["区住建委"]
    assert items["1"].owners.partners == ["区市场监管局", "各街道"]
    assert items["2"].owners.units == ["区消防救援支队"]
    assert items["2"].owners.partners == ["区住建委"]
    assert items["3"].owners.units == ["区应急局", "区公安分局"]
    assert items["3"].owners.partners == []


@pytest.mark.parametrize(
    ("numbers", "refs"),
    [
        # Chinese numerals among Arabic ones in the 序号 column: section rows, not tasks
        (["一", "1", "2", "二", "3"], ["1", "2", "3"]),
        (["一、", "1", "2", "二、", "3"], ["1", "2", "3"]),
        # N above N.1, N.2: N is the section, the tasks keep the numbers as written
        (["1", "1.1", "1.2", "2", "2.1"], ["1.1", "1.2", "2.1"]),
    ],
)
def test_section_rows_numbered_in_the_number_column(
    tmp_path: Path, numbers: list[str], refs: list[str]
) -> None:
    rows = iter(
        [
            "| {} | 压实安全责任 |  |  |",
            "| {} | 修订部门安全生产职责清单。 | 区应急局 | 6月底前 |",
            "| {} | 签订安全生产目标责任书。 | 区安委办 | 3月底前 |",
            "| {} | 开展专项整治 |  |  |",
            "| {} | 开展燃气整治，每月通报1次。 | 区住建委 | 长期坚持 |",
        ]
    )
    path = tmp_path / "sections.md"
    lines = ["2023年3月1日", "", "| 序号 | 工作任务 | 责任单位 | 完成时限 |", "|---|---|---|---|"]
    path.write_text("\n".join([*lines, *(next(rows).format(n) for n in numbers)]), "utf-8")
    items = {i.ref: i for i in extract_file(path).items}
    assert list(items) == refs
    assert [i.owners.units for i in items.values()] == [["区应急局"], ["区安委办"], ["区住建委"]]
    assert items[refs[0]].title.startswith("修订部门")


def test_markdown_bold_lead_ins_are_labels(tmp_path: Path) -> None:
    """A Word list exported to Markdown writes its bold lead-ins as **责任单位**： or
    **完成时限：**; the markers never hide a label nor reach a name or a deadline."""
    path = tmp_path / "bold.md"
    path.write_text(
        "\n\n".join(
            [
                "**某镇2024年安全生产工作责任清单**",
                "**一、组织领导**",
                "1．召开镇安委会全体会议，每季度至少研究1次。",
                "**责任领导：**刘卫东　　**责任单位：**镇党政办、镇应急办　　"
                "**完成时限：**2024年3月15日前",
                "2．签订责任书。**责任领导**：张立群　**责任单位**：镇应急办　"
                "**配合单位**：各村（社区）　**完成时限**：4月底前",
                "3．开展巡查。",
                "__责任单位__：镇应急办",
                "*完成时限*：长期坚持",
            ]
        ),
        encoding="utf-8",
    )
    items = {i.ref: i for i in extract_file(path).items}
    assert list(items) == ["1", "2", "3"]
    assert items["1"].owners.responsible == ["刘卫东"]
    assert items["1"].deadline_text == "2024年3月15日前"
    assert items["2"].owners.units == ["镇应急办"]
    assert items["2"].owners.partners == ["各村（社区）"]
    assert items["2"].due == date(2024, 4, 30)
    assert items["3"].owners.units == ["镇应急办"] and items["3"].ongoing
