"""Field labels and column names → the role they give their value.

Documents of this kind name the same fields many ways (牵头科室 / 牵头单位 / 责任单位 /
牵头部门, 完成时限 / 时间节点 …), both as column headers and as the ``label：value``
tails of prose items.  Roles are recognised by the words in the name, not by position.
"""

from __future__ import annotations

import re
from enum import StrEnum


class Role(StrEnum):
    CATEGORY = "category"  # 任务类型 / 十五条硬措施: the section an item belongs to
    NUMBER = "number"  # 序号
    TASK = "task"  # 重点任务 / 工作任务
    MEASURE = "measure"  # 操作要点 / 具体工作措施
    LEAD = "lead"  # 牵头领导
    RESPONSIBLE = "responsible"  # 责任领导 / 分管领导
    OWNERS = "owners"  # 责任人 / 责任主体: people and units mixed, told apart by name
    UNITS = "units"  # 牵头科室 / 牵头单位 / 责任单位
    PARTNERS = "partners"  # 配合科室 / 配合单位
    DEADLINE = "deadline"  # 完成时限
    PROGRESS = "progress"  # 工作进度 / 完成情况: the ledger column, not part of the duty
    REMARK = "remark"  # 备注


OWNER_ROLES = (Role.LEAD, Role.RESPONSIBLE, Role.OWNERS, Role.UNITS, Role.PARTNERS)
TEXT_ROLES = (Role.CATEGORY, Role.TASK, Role.MEASURE)

# First match wins: the order settles names that carry two roles' words
# (具体工作措施 is a measure, not a task; 十五条硬措施 is a category, not a measure).
_RULES: tuple[tuple[Role, re.Pattern[str]], ...] = tuple(
    (role, re.compile(pattern))
    for role, pattern in (
        (Role.NUMBER, r"^(序号|编号|序|项次|条目)$"),
        (Role.DEADLINE, r"时限|期限|时间|节点|日期|截止|完成时|进度安排|进度要求|时序"),
        (Role.PROGRESS, r"进度|进展|完成情况|落实情况|推进情况|台账|成效"),
        (Role.REMARK, r"^备\s*注$|^说明$"),
        (Role.PARTNERS, r"配合|协助|协办|协同|参与|协作"),
        (
            Role.LEAD,
            r"牵头.{0,3}领导|牵头负责人|主要领导|主要负责人|第一责任人|总负责|包保.{0,3}领导"
            r"|联系.{0,3}领导|挂点.{0,3}领导|挂钩.{0,3}领导",
        ),
        (
            Role.RESPONSIBLE,
            r"责任领导|分管.{0,3}领导|分管负责人|具体负责人|直接责任人|责任.{0,3}领导",
        ),
        (Role.OWNERS, r"^(责任人|负责人|责任主体|责任人员|具体责任人)$"),
        (Role.UNITS, r"牵头|责任|主责|承办|负责|单位|科室|部门|处室|主体"),
        (Role.CATEGORY, r"类型|类别|硬措施|领域|方面|板块|分类|专项"),
        (Role.MEASURE, r"要点|措施|举措|具体|要求|标准|细化|内容|目标|方式|做法"),
        (Role.TASK, r"任务|事项|工作|项目|清单"),
    )
)

_SPACE = re.compile(r"[\s\u3000]+")


def role_of(name: str) -> Role | None:
    """The role a column header or ``label：`` names, or None when it names none we know."""
    name = _SPACE.sub("", name).strip("：:*#")
    if not name or len(name) > 16:
        return None
    for role, pattern in _RULES:
        if pattern.search(name):
            return role
    return None


# A label inside a prose tail: a short run of Chinese characters right before a colon.
TAIL_LABEL = re.compile(r"([\u4e00-\u9fff]{2,10})\s*[：:]")

_LABEL_STARTS = (
    "牵头",
    "责任",
    "配合",
    "协办",
    "协助",
    "协同",
    "主责",
    "主要",
    "完成",
    "时限",
    "时间",
    "分管",
    "监管",
    "负责",
    "具体",
    "包保",
    "联系",
    "承办",
    "截止",
    "参与",
    "办结",
    "工作时限",
    "挂点",
    "挂钩",
    "主办",
    "报送",
    "进度",
)
TAIL_ROLES = (*OWNER_ROLES, Role.DEADLINE)


def tail_label(run: str) -> tuple[int, Role] | None:
    """The label at the end of ``run`` (text right before a colon): its start and role.

    Prose runs straight into labels without punctuation often enough
    ("…研究解决问题责任单位：…"), so the longest suffix that reads as a label wins.
    """
    for start in range(max(0, len(run) - 10), len(run) - 1):
        suffix = run[start:]
        if suffix.startswith(_LABEL_STARTS):
            role = role_of(suffix)
            if role in TAIL_ROLES:
                return start, role
    return None
