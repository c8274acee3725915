"""The scorer reads a draft the way a reviewer does: sub-tasks fold back into their item."""

from __future__ import annotations

from bot.extract.score import draft_facts


def test_an_item_written_only_as_subtasks_keeps_its_owners_and_deadline_wording() -> None:
    tasks = [
        {
            "ref": "10.1",
            "units": ["各村（社区）"],
            "every": "month",
            "by": "day 25",
            "deadline_text": "每月25日前",
            "source": "doc.docx:28",
        },
        {"ref": "10.2", "units": ["各村（社区）"], "every": "quarter", "source": "doc.docx:28"},
    ]
    facts = draft_facts(tasks)
    assert set(facts) == {"10"}
    assert facts["10"]["every"] == {"month*1@day25", "quarter*1"}
    assert facts["10"]["units"] == {"各村（社区）"}
    assert facts["10"]["deadline_text"] == {"每月25日前"}


def test_a_subtask_beside_its_item_does_not_replace_the_item_s_wording() -> None:
    tasks = [
        {"ref": "1", "due": None, "deadline_text": "2024年3月15日前", "source": "doc.docx:10"},
        {"ref": "1.1", "every": "quarter", "deadline_text": "每季度", "source": "doc.docx:10"},
    ]
    assert draft_facts(tasks)["1"]["deadline_text"] == {"2024年3月15日前"}
