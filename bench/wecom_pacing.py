"""WeCom pacing: does the adapter's RateLimits keep WeCom from dropping messages?

WeCom documents "每应用对同一个成员不可超过30次/分钟，1000次/小时，超过部分会被丢弃不下发"
(https://developer.work.weixin.qq.com/document/path/90454): over 30 a minute to one member a
message is *dropped without an error*.  This script sends, through the real WeComAdapter and
the dispatcher's Pacer (bot.dispatch.pacer_for) over HTTP to the fake WeCom server (which
drops the same way):

- **one member**: 35 messages to the same userid;
- **many members**: one message each to 100 userids;

once with the adapter's limits ON and once OFF, and prints per scenario: wall seconds, the
most messages the member received within any 60 s, and how many the fake dropped.  Each
figure is the min / median of ``--runs`` runs (3 by default).  About 3.5 minutes.

    .venv/bin/python bench/wecom_pacing.py
    .venv/bin/python bench/wecom_pacing.py --runs 1 --scenarios many-on,many-off
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

from bot.adapters.base import OutboundMessage
from bot.adapters.wecom.adapter import WeComAdapter
from bot.adapters.wecom.api import WeComApi
from bot.clock import SystemClock
from bot.dispatch import pacer_for
from bot.signing import Signer
from tests.fakes.wecom import AGENT_ID, CORP_ID, SECRET, FakeWeCom

SCENARIOS = {
    "one-on": (1, 35, True),
    "one-off": (1, 35, False),
    "many-on": (100, 1, True),
    "many-off": (100, 1, False),
}


async def run(members: int, each: int, limits: bool) -> tuple[float, int, int]:
    userids = [f"m{n}" for n in range(members)]
    with FakeWeCom(members={u: "" for u in userids}) as fake:
        api = WeComApi(corp_id=CORP_ID, secret=SECRET, base_url=fake.url)
        adapter = WeComAdapter(
            api, agent_id=AGENT_ID, clock=SystemClock(), encode=Signer(b"bench").encode
        )
        if not limits:
            adapter.limits = None
        pacer = pacer_for(adapter)
        await adapter.start()

        async def member(userid: str) -> None:
            for n in range(each):  # one chat's messages go one after another, as dispatched
                if pacer is not None:
                    await pacer.acquire(userid)
                await adapter.send(OutboundMessage(userid, f"第 {n + 1} 条督办提醒"))

        started = time.perf_counter()
        await asyncio.gather(*(member(u) for u in userids))
        elapsed = time.perf_counter() - started
        await adapter.stop()
        calls = [c for c in fake.calls_to("/cgi-bin/message/send") if c.ok]
        busiest = 0
        for userid in userids:
            times = sorted(c.at for c in calls if c.touser == userid)
            for i, start in enumerate(times):
                busiest = max(busiest, sum(1 for t in times[i:] if t - start < 60))
        return elapsed, busiest, len(fake.dropped)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    args = parser.parse_args()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = []
    for name in args.scenarios.split(","):
        members, each, limits = SCENARIOS[name]
        results = [asyncio.run(run(members, each, limits)) for _ in range(args.runs)]
        seconds = [r[0] for r in results]
        busiest = [r[1] for r in results]
        dropped = [r[2] for r in results]
        rows.append((name, members * each, seconds, busiest, dropped))
        print(f"{name}: {results}", flush=True)

    def mm(values: list[float] | list[int], fmt: str = "{:.1f}") -> str:
        return f"{fmt.format(min(values))} / {fmt.format(statistics.median(values))}"

    print(
        "\n| scenario | messages | seconds (min / median) | most to one member in 60 s "
        "| dropped by WeCom |"
    )
    print("|---|---|---|---|---|")
    for name, total, seconds, busiest, dropped in rows:
        print(f"| {name} | {total} | {mm(seconds)} | {mm(busiest, '{}')} | {mm(dropped, '{}')} |")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
