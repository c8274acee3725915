"""Owner fields: splitting into names, and telling people from units."""

from __future__ import annotations

import pytest

from bot.extract.owners import Kind, classify, same_name, split_joined, split_names


@pytest.mark.parametrize(
    ("field", "names"),
    [
        ("熊伟、李道波", ["熊伟", "李道波"]),
        ("能源科、粮食科；各监管企业", ["能源科", "粮食科", "各监管企业"]),
        ("办公室，各监管企业", ["办公室", "各监管企业"]),
        ("质安处<br>安管总站", ["质安处", "安管总站"]),
        ("委安委办\n宣教处", ["委安委办", "宣教处"]),
        ("安委办, 纪委 ", ["安委办", "纪委"]),
        (
            "物业处、消防验收处、消防审查处等相关单位按职责开展工作",
            ["物业处", "消防验收处", "消防审查处"],
        ),
        ("道路处、排水处等负责推进项目建设的单位", ["道路处", "排水处"]),
        ("县应急局（牵头）、县公安局", ["县应急局", "县公安局"]),
        ("县交通局牵头", ["县交通局"]),
        ("能源科和粮食科", ["能源科", "粮食科"]),
        ("相关机关处室和直属单位", ["相关机关处室和直属单位"]),
        ("应急办、“一岗双责”科室、村（社区）", ["应急办", "“一岗双责”科室", "村（社区）"]),
        ("张三同志", ["张三"]),
        # names padded to the column's width are one name; spaces between names still split
        ("赵\xa0\xa0明", ["赵明"]),
        ("王\u3000伟、李  强", ["王伟", "李强"]),
        ("县委编办 县司法局", ["县委编办", "县司法局"]),
        # one body named after its fields keeps its 和; two bodies joined by 和 split
        ("县自然资源和规划局", ["县自然资源和规划局"]),
        ("县商务局\n县文化和旅游局", ["县商务局", "县文化和旅游局"]),
        ("住房和城乡建设局、工业和信息化局", ["住房和城乡建设局", "工业和信息化局"]),
        ("应急局和公安局", ["应急局", "公安局"]),
        ("宣传和应急", ["宣传", "应急"]),
        # a person written with a title is the person: the title is a post, not an owner
        ("张三（副局长）", ["张三"]),
        ("副局长 张三", ["张三"]),
        ("县委常委、副县长李明", ["李明"]),
        ("李明（县委常委、副县长）、王刚", ["李明", "王刚"]),
        ("分管副县长", ["分管副县长"]),
        ("局长办公会", ["局长办公会"]),
        ("无", []),
    ],
)
def test_split(field: str, names: list[str]) -> None:
    assert split_names(field) == names


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("邓清华", Kind.PERSON),
        ("熊伟", Kind.PERSON),
        ("欧阳明", Kind.PERSON),
        ("漆光歆", Kind.PERSON),
        ("各党组成员", Kind.GROUP),
        ("分管领导", Kind.GROUP),
        ("办公室主任", Kind.GROUP),
        ("能源科", Kind.UNIT),
        ("应急办", Kind.UNIT),
        ("县应急局", Kind.UNIT),
        ("纪委", Kind.UNIT),
        ("安委会", Kind.UNIT),
        ("质安处", Kind.UNIT),
        ("“一岗双责”科室", Kind.UNIT),
        ("审批中心", Kind.UNIT),
        ("各监管企业", Kind.UNIT),
        ("村（社区）", Kind.UNIT),
        ("各镇街", Kind.UNIT),
        ("县委、县政府", Kind.UNIT),
        ("国家管网集团重庆天然气管道有限责任公司", Kind.UNIT),
        ("安全生产治理行动领导小组成员单位", Kind.UNIT),
        ("驻委纪检监察组", Kind.UNIT),
        ("王庄镇", Kind.UNIT),
    ],
)
def test_classify(name: str, kind: Kind) -> None:
    assert classify(name) is kind


def test_names_run_together_split_on_names_seen_elsewhere() -> None:
    assert split_joined("委安委办办公室", {"委安委办", "办公室"}) == ["委安委办", "办公室"]
    assert split_joined("机关各处室各直属单位", {"机关各处室", "各直属单位"}) == [
        "机关各处室",
        "各直属单位",
    ]
    assert split_joined("综合办公室", {"办公室"}) == ["综合办公室"]


def test_spelling_variants() -> None:
    assert same_name("各项目审批科", "各项目审批科室")
    assert not same_name("能源科", "粮食科")


def test_a_bureau_section_is_a_unit() -> None:
    assert classify("安全监督股") is Kind.UNIT and classify("运输管理股") is Kind.UNIT
