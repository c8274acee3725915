"""Loading a list over HTTP (SQLite and PostgreSQL): who may, and bad uploads said plainly."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from tests.conftest import SCHEDULES
from tests.web.helpers import seed_list, signed_in
from tests.web.test_ledger_http import NOW


def test_only_admins_load_lists_and_bad_files_are_refused_in_words(engine: Engine) -> None:
    seed_list(engine, NOW)
    official, token = signed_in(engine, "公管科联络员", NOW)
    assert official.get("/drafts/new").status_code == 403
    files = {"file": ("x.yaml", b"schedule: x\n", "application/x-yaml")}
    assert official.post("/drafts", data={"csrf": token}, files=files).status_code == 403
    admin, token = signed_in(engine, "办公室联络员", NOW)
    assert admin.post("/drafts", files=files).status_code == 403  # no CSRF token
    exe = admin.post(
        "/drafts", data={"csrf": token}, files={"file": ("list.exe", b"MZ", "application/x")}
    )
    assert exe.status_code == 400 and "只接受 .docx" in exe.text and "Traceback" not in exe.text
    broken = admin.post(
        "/drafts", data={"csrf": token}, files={"file": ("list.docx", b"not a zip", "x")}
    )
    assert broken.status_code == 400 and "无法读取文件“list.docx”" in broken.text


def test_a_yaml_draft_of_a_list_is_reviewed_and_applied_by_its_admin(engine: Engine) -> None:
    seed_list(engine, NOW)
    admin, token = signed_in(engine, "办公室联络员", NOW)
    text = (SCHEDULES / "fengdu-ndrc-2022.yaml").read_text(encoding="utf-8")
    changed = text.replace("due: 2022-06-30            # 完成时限：2022年6月底", "due: 2022-07-15")
    assert changed != text
    made = admin.post(
        "/drafts",
        data={"csrf": token},
        files={"file": ("fengdu-ndrc-2022.yaml", changed.encode(), "application/x-yaml")},
        follow_redirects=False,
    )
    assert made.status_code == 303
    review = made.headers["location"]
    lead, _ = signed_in(engine, "熊伟", NOW)  # not an admin of this list
    assert lead.get(review).status_code == 403
    preview = admin.post(f"{review}/preview", data={"csrf": token})
    assert "已更新清单 fengdu-ndrc-2022" in preview.text and "修改任务 25" in preview.text
    assert "下一个发送时段" in preview.text
    done = admin.post(f"{review}/apply", data={"csrf": token}, follow_redirects=False)
    assert done.headers["location"] == "/s/fengdu-ndrc-2022?imported=1"
    assert admin.get(f"{review}/yaml").text == changed
    assert "2022-07-15" in admin.get("/ledger?q=资质").text
    assert Path(review).name.isdigit()
