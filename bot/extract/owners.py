"""Owner fields → names, and each name → a person or a unit.

A field lists several owners ("熊伟、李道波", "质安处<br>安管总站", "物业处、消防审查处等相关
单位按职责开展工作").  People (牵头领导 / 责任领导) are told from units by the words units
end in (科, 办, 局, 委, 处, 室, 中心, 单位, 企业, 部门, 党委, 政府 …) and people's names by
a surname; groups of people (各党组成员, 分管领导) count as people.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum

_SEPARATORS = re.compile(
    r"(?:<br\s*/?>|[、，,；;/／|｜\n\r\t ]|\u3000|(?<=[\u4e00-\u9fff])[和及](?=各|有关|相关))+",
    re.IGNORECASE,
)
_AND = re.compile(r"[和及与]")
# "A、B等部门" / "A等行业主管部门按职责分工负责": the 等… tail names no one more
_ETC = re.compile(
    r"等(?=相关|有关|单位|部门|负责|按|其他|各|在|共同|处室|科室|配合|牵头|$"
    r"|[^、，,；;]{0,12}?(?:部门|单位|机构|企业|处室|科室|成员|方面))"
)
_ROLE_TAIL = re.compile(
    r"(?:按职责分工负责|按职责开展工作|按职责分工|按职责|分别负责|共同负责|负总责|牵头负责|"
    r"具体负责|配合落实|负责落实|牵头|负责|配合|落实)$"
)
_ROLE_PAREN = re.compile(
    r"[（(](?:牵头|配合|负责|主责|排名第一[的位]?为牵头单位|牵头单位|配合单位|责任单位)[）)]"
)
_EDGE = re.compile(r"^[\s：:。．.·•\-—*]+|[\s：:。．.·•\-—*]+$")

_UNIT_END = (
    "科",
    "科室",
    "股",  # a county bureau's section: 安全监督股
    "办",
    "办公室",
    "局",
    "委",
    "委员会",
    "会",
    "处",
    "处室",
    "室",
    "中心",
    "单位",
    "企业",
    "公司",
    "集团",
    "部",
    "部门",
    "党委",
    "党组",
    "党工委",
    "政府",
    "所",
    "站",
    "队",
    "组",
    "院",
    "校",
    "馆",
    "厅",
    "署",
    "社",
    "社区",
    "村",
    "镇",
    "乡",
    "街道",
    "园区",
    "机关",
    "大队",
    "支队",
    "中队",
    "法院",
    "检察院",
    "银行",
    "协会",
    "厂",
    "矿",
    "场",
    "库",
    "分局",
    "区",
    "县",
    "市",
    "省",
    "办事处",
    "管委会",
    "人大",
    "政协",
    "工会",
    "妇联",
    "团委",
    "各方",
    "网格",
    "平台",
    "小组",
    "班子",
    "街",
    "镇街",
    "乡镇",
    "片区",
    "基地",
)
_UNIT_WORDS = re.compile(
    r"单位|部门|企业|公司|集团|机关|政府|党委|委员会|办公室|科室|处室|中心|乡镇|街道|社区|村"
)
_GROUP_END = (
    "成员",
    "领导",
    "负责人",
    "书记",
    "主任",
    "局长",
    "县长",
    "镇长",
    "乡长",
    "区长",
    "市长",
    "部长",
    "处长",
    "科长",
    "组长",
    "主席",
    "干部",
    "委员",
    "同志",
    "人员",
    "联络员",
    "管理员",
    "队长",
    "站长",
    "所长",
    "院长",
    "经理",
    "厂长",
    "董事长",
    "总经理",
    "监事",
    "专员",
    "网格员",
    "安全员",
    "班长",
    "主任委员",
    "副主任",
    "副书记",
    "副局长",
    "副县长",
    "副镇长",
)
_UNIT_OVERRIDES_GROUP = ("领导小组", "小组成员单位", "成员单位")

_COMPOUND_SURNAMES = (
    "欧阳",
    "司马",
    "诸葛",
    "上官",
    "东方",
    "皇甫",
    "尉迟",
    "公孙",
    "慕容",
    "令狐",
    "宇文",
    "长孙",
    "夏侯",
    "端木",
    "申屠",
    "司徒",
    "轩辕",
    "澹台",
    "呼延",
    "南宫",
    "万俟",
    "西门",
)
_SURNAMES = set(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝"
    "龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞"
    "左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕"
    "屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧"
    "闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝官封谈匡鞠惠荆乐冀郁胥"
    "南班储原栗燕楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊仝区郜海阚花权强帅屠豆朴盖练廉禹井祖漆巴丰支"
    "卿国狄平计索宣晋相初门云容敬来扈晁芮都普阙浦戈伏鹿薄邸雍辜羊阿乌母裘亓修邰赫杭况那宿鲜印"
    "逯隆茹诸战慕危玉银亢嵇公哈湛宾戎勾茅利於呼居揭干但尉冶斯元束檀衣信展阴昝智幸奉植衡富尧闭由"
)
_CJK = re.compile(r"^[\u4e00-\u9fff·]+$")

# Government departments by their short names (部门简称), as lists write them in owner
# columns: "宣传、应急、公安". Several begin with a surname (宣, 应, 司, 公 …) and are two
# characters long, so they must be known as units before any "is it a person" test.
_ABBREVIATIONS = (
    "宣传 组织 统战 政法 编办 网信 纪委 纪检 监委 信访 应急 安监 公安 交警",
    "消防 司法 法院 检察 发改 发展改革 经信 工信 经济信息 商务 科技 教育 教委",
    "财政 审计 税务 统计 人社 人力社保 民政 住建 住房城乡建设 城管 城市管理 规划",
    "规资 自然资源 国土 生态环境 环保 交通 交通运输 水利 水务 农业 农业农村 农委",
    "林业 畜牧 文旅 文化旅游 旅游 卫健 卫生健康 市场监管 质监 药监 国资 金融",
    "人防 气象 地震 邮政 通信 电力 供电 铁路 民航 海事 退役军人 医保 体育 粮食",
    "机关事务 工会 团委 妇联 武装部 人武部 融媒体",
)
DEPARTMENT_ABBREVIATIONS = frozenset(w for line in _ABBREVIATIONS for w in line.split())
_ADMIN_PREFIX = re.compile(r"^(?:[省市县区镇乡]|市级|县级|区级|各级)")
# A joined body shares the first one's place: "各区县党委、政府" → 各区县党委, 各区县政府
_GENERIC_BODIES = ("党委", "政府", "人大", "政协", "党组", "纪委", "党工委", "管委会")


class Kind(StrEnum):
    PERSON = "person"  # a named person: 熊伟
    GROUP = "group"  # people named by role: 各党组成员, 分管领导
    UNIT = "unit"  # 能源科, 各监管企业, 村（社区）
    UNKNOWN = "unknown"


def clean_name(raw: str) -> str:
    """One owner as written, minus what is not the name: 等… tails, (牵头), trailing roles."""
    name = _ROLE_PAREN.sub("", raw)
    if name.endswith("同志") and len(name) > 3:
        name = name[:-2]
    etc = _ETC.search(name)
    if etc and etc.start() > 1:
        name = name[: etc.start()]
    name = _EDGE.sub("", name)
    previous = None
    while previous != name:
        previous = name
        stripped = _ROLE_TAIL.sub("", name)
        if len(stripped) >= 2:
            name = stripped
        name = _EDGE.sub("", name)
    return name.strip("（(）) ") if name.count("（") + name.count("(") == 0 else name


def _core(name: str) -> str:
    """The name without a trailing parenthesis (村（社区） → 村), for looking at its ending."""
    return re.sub(r"[（(][^（()）]*[）)]$", "", name) or name


def classify(name: str) -> Kind:
    """Person, group of people, or unit, by how the name ends and begins."""
    core = _core(name)
    if is_department(core):
        return Kind.UNIT
    if any(core.endswith(w) for w in _UNIT_OVERRIDES_GROUP):
        return Kind.UNIT
    if any(core.endswith(w) for w in _GROUP_END):
        return Kind.GROUP
    if any(core.endswith(w) for w in _UNIT_END) or _UNIT_WORDS.search(core):
        return Kind.UNIT
    if looks_like_person(core):
        return Kind.PERSON
    return Kind.UNKNOWN


def is_department(name: str) -> bool:
    """宣传, 应急, 县公安, 市场监管: a department by its short name, never a person."""
    return name in DEPARTMENT_ABBREVIATIONS or (
        _ADMIN_PREFIX.sub("", name) in DEPARTMENT_ABBREVIATIONS and len(name) <= 8
    )


def looks_like_person(name: str) -> bool:
    """Two to four Chinese characters starting with a surname: 熊伟, 周小兵, 欧阳明."""
    if not _CJK.match(name) or not 2 <= len(name) <= 4:
        return False
    if name.startswith(_COMPOUND_SURNAMES):
        return len(name) >= 3
    if name[0] not in _SURNAMES:
        return False
    # a short name ending like a unit (李家村, 王庄镇) is a place, not a person
    return not (len(name) >= 3 and name[-1] in "村镇乡区县市局委办处科室所站队组院校馆厂矿场库")


# A name padded to the column's width with spaces ("赵  明", "王　伟"): no owner is one
# character, so a lone character beside spaces is part of the name next to it
_PADDED = re.compile(
    r"(?<![\u4e00-\u9fff])([\u4e00-\u9fff])[ \u3000\xa0]+([\u4e00-\u9fff]{1,3})(?![\u4e00-\u9fff])"
    r"|(?<![\u4e00-\u9fff])([\u4e00-\u9fff]{2})[ \u3000\xa0]+([\u4e00-\u9fff])(?![\u4e00-\u9fff])"
)


def _unpad(text: str) -> str:
    return _PADDED.sub(lambda m: "".join(g for g in m.groups() if g), text)


# A person written with a title: "张三（副局长）", "副县长李明", "县委常委、副县长 李明".  The
# title is the person's post (people: 职务), not a second owner, and the name is the key.
_TITLE = (
    r"[\u4e00-\u9fff]{0,6}?(?:副)?(?:县长|区长|市长|镇长|乡长|局长|主任|书记|部长|处长|科长|"
    r"所长|站长|队长|股长|常委|委员|调研员|组长|总经理|经理|厂长|院长|主席)"
)
_TITLES = rf"(?:{_TITLE}[、，,\s\u3000]*)+"
_NAME_THEN_TITLES = re.compile(rf"(?P<name>[\u4e00-\u9fff]{{2,4}})[（(]{_TITLES}[）)]")
_TITLES_THEN_NAME = re.compile(
    rf"(?:(?<=^)|(?<=[、，,；;\n]))(?P<titles>{_TITLES})(?P<name>[\u4e00-\u9fff]{{2,3}})(?=$|[、，,；;\n])"
)


def _untitle(text: str) -> str:
    def name_only(match: re.Match[str]) -> str:
        name = match["name"]
        return name if looks_like_person(name) else match.group(0)

    return _TITLES_THEN_NAME.sub(name_only, _NAME_THEN_TITLES.sub(name_only, text))


def split_names(text: str) -> list[str]:
    """Split an owner field into names; "A和B" splits only when both halves are units."""
    names: list[str] = []
    for part in _SEPARATORS.split(_untitle(_unpad(text or ""))):
        name = clean_name(part)
        if not name or name in ("无", "—", "-", "/", "暂无"):
            continue
        for piece in _split_and(name):
            names.append(_share_place(piece, names[-1] if names else None))
    return _unique(names)


def _share_place(name: str, before: str | None) -> str:
    """A bare 政府 after 各区县党委 is 各区县政府 (the convention for joined bodies)."""
    if before is None or name not in _GENERIC_BODIES:
        return name
    for body in _GENERIC_BODIES:
        if before.endswith(body) and len(before) > len(body):
            return before[: -len(body)] + name
    return name


def _split_and(name: str) -> list[str]:
    head = next((b for b in _GENERIC_BODIES if name.endswith("和" + b)), None)
    if head is not None:  # 各级党委和政府 → 各级党委, 各级政府
        return [name[: -len(head) - 1], name[-len(head) :]]
    if name.startswith(("各", "相关", "有关", "其他", "其它")):
        return [name]  # a described group: 相关机关处室和直属单位
    pieces = _AND.split(name)
    if len(pieces) > 1 and _ends_as_unit(pieces[-1]) and not all(map(_ends_as_unit, pieces)):
        return [name]  # one body named by its fields: 自然资源和规划局, 文化和旅游局
    if len(pieces) > 1 and all(
        2 <= len(p) <= 10 and classify(p) is Kind.UNIT and not _UNIT_WORDS.fullmatch(p)
        for p in pieces
    ):
        return pieces
    return [name]


def _ends_as_unit(name: str) -> bool:
    """Ends in an institution's word (局, 委, 办 …), as a department's full name does."""
    return name.endswith(_UNIT_END) and not is_department(name)


def split_joined(name: str, known: Iterable[str]) -> list[str]:
    """ "委安委办办公室" → [委安委办, 办公室] when both halves are names seen elsewhere."""
    known_set = {k for k in known if k != name and len(k) >= 2}
    for cut in range(2, len(name) - 1):
        left, right = name[:cut], name[cut:]
        if left in known_set and right in known_set:
            return [left, right]
    return [name]


def same_name(a: str, b: str) -> bool:
    """各项目审批科 and 各项目审批科室 are one unit written two ways."""
    if a == b:
        return True
    short, long_ = sorted((a, b), key=len)
    return long_ == short + "室" and short.endswith(("科", "处"))


def _unique(names: Iterable[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        if name not in out:
            out.append(name)
    return out
