"""Where the time of a send over HTTP goes: the fake Bot API alone, bare HTTP clients, PTB,
the TelegramAdapter -- each as msgs/s and CPU microseconds per message on either side.

Prints figures; it is not a test.  The fake server (tests/fakes/botapi.FakeBotApi, in its own
process, "threads" or "asyncio" front end) records every sendMessage; after each run the bench
checks that every message arrived exactly once.  Clients, cheapest first:

- ``raw``      a load generator in another process: prebuilt HTTP/1.1 keep-alive requests on
               plain asyncio streams (what the server can take when the client costs ~nothing)
- ``httpx``    a bare httpx.AsyncClient posting JSON
- ``aiohttp``  a bare aiohttp.ClientSession posting JSON
- ``ptb``      python-telegram-bot's Bot.send_message through HTTPXRequest (builds a Message)
- ``ptb-raw``  Bot.do_api_request("sendMessage") through AiohttpRequest: PTB's request path,
               the raw dict back (PTB warns against it for known methods; here only to price
               building a Message)
- ``ptb-aiohttp`` Bot.send_message through bot.adapters.telegram_http.AiohttpRequest
- ``adapter``  bot.adapters.telegram.TelegramAdapter.send (render, send, map errors), which
               uses AiohttpRequest

"server us/msg" and "client us/msg" are CPU time of each process divided by messages: what one
message costs on each side whatever else runs on the host.  With --pin the server runs on
core 1 and the clients on core 0.

    .venv/bin/python bench/http_ceiling.py
    .venv/bin/python bench/http_ceiling.py --fronts threads,asyncio --clients raw,httpx --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from multiprocessing import get_context
from typing import Any

import aiohttp
import httpx
from telegram import Bot
from telegram.request import BaseRequest, HTTPXRequest

from bench.dispatch import MARKER, FakeServer, table
from bot.adapters.telegram import TelegramAdapter
from bot.adapters.telegram_http import AiohttpRequest
from bot.messages import Message, OutboundMessage

CLIENTS = ("raw", "httpx", "aiohttp", "ptb", "ptb-raw", "ptb-aiohttp", "adapter")
FIRST_CHAT = 100_000


def log(message: str) -> None:
    print(message, flush=True)


def text_of(n: int) -> str:
    """About the size of an admin_alert: a bold header and a line, a unique marker."""
    return f"<b>系统提醒</b>\n官员{n % 200:04d}：无法送达 bench-{n:05d}"


def body_of(n: int) -> dict[str, Any]:
    return {
        "chat_id": str(FIRST_CHAT + n % 200),
        "text": text_of(n),
        "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": True},
    }


# -- the load generator in its own process ---------------------------------------------------


def raw_requests(base_url: str, token: str, messages: int) -> list[bytes]:
    path = f"/bot{token}/sendMessage"
    host = base_url.split("//", 1)[1].split("/", 1)[0]
    out = []
    for n in range(messages):
        body = json.dumps(body_of(n)).encode()
        out.append(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
    return out


async def raw_load(base_url: str, token: str, messages: int, connections: int) -> float:
    requests = raw_requests(base_url, token, messages)
    host, port = base_url.split("//", 1)[1].split("/", 1)[0].split(":")
    queue = list(reversed(requests))

    async def one_connection() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        while queue:
            writer.write(queue.pop())
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
            await reader.readexactly(length)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(one_connection() for _ in range(connections)))
    return time.perf_counter() - started


def raw_child(args: tuple[str, str, int, int, int | None]) -> tuple[float, float]:
    base_url, token, messages, connections, cpu = args
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    cpu_before = time.process_time()
    elapsed = asyncio.run(raw_load(base_url, token, messages, connections))
    return elapsed, time.process_time() - cpu_before


# -- in-process clients ------------------------------------------------------------------------

Send = Callable[[int], Awaitable[Any]]


async def drive(send: Send, messages: int, connections: int) -> float:
    """``connections`` senders, each posting its share one after another."""
    numbers = list(range(messages))

    async def sender(k: int) -> None:
        for n in numbers[k::connections]:
            await send(n)

    started = time.perf_counter()
    await asyncio.gather(*(sender(k) for k in range(connections)))
    return time.perf_counter() - started


async def run_client(client: str, server: FakeServer, messages: int, connections: int) -> float:
    url = f"{server.base_url}{server.token}/sendMessage"
    if client == "httpx":
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(limits=limits, timeout=10) as http:

            async def send_httpx(n: int) -> Any:
                response = await http.post(url, json=body_of(n))
                return response.json()

            return await drive(send_httpx, messages, connections)
    if client == "aiohttp":
        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def send_aiohttp(n: int) -> Any:
                async with session.post(url, json=body_of(n)) as response:
                    return await response.json()

            return await drive(send_aiohttp, messages, connections)
    if client in ("ptb", "ptb-raw", "ptb-aiohttp"):
        request: BaseRequest = (
            AiohttpRequest(connection_pool_size=connections, pool_timeout=10)
            if client != "ptb"
            else HTTPXRequest(connection_pool_size=connections, pool_timeout=10)
        )
        async with Bot(server.token, base_url=server.base_url, request=request) as bot:
            if client != "ptb-raw":

                async def send_ptb(n: int) -> Any:
                    body = body_of(n)
                    return await bot.send_message(body["chat_id"], body["text"], parse_mode="HTML")

                return await drive(send_ptb, messages, connections)

            async def send_ptb_raw(n: int) -> Any:
                return await bot.do_api_request("sendMessage", api_kwargs=body_of(n))

            return await drive(send_ptb_raw, messages, connections)
    if client == "adapter":
        adapter = TelegramAdapter(
            server.token, base_url=server.base_url, connection_pool_size=connections
        )
        async with adapter:

            async def send_adapter(n: int) -> Any:
                body = body_of(n)
                header, _, line = body["text"].removeprefix("<b>").partition("</b>\n")
                message = Message("admin_alert", "zh-CN", header=header, body=(line,))
                return await adapter.send(OutboundMessage(body["chat_id"], message))

            return await drive(send_adapter, messages, connections)
    raise ValueError(client)


def checked(server: FakeServer, messages: int) -> str:
    """missing/dup at the server, as dispatch.py counts them."""
    arrived: Counter[str] = Counter()
    for _chat, body, status, _at in server.ask("sent"):
        if status == 200:
            arrived.update(MARKER.findall(body))
    expected = [f"bench-{n:05d}" for n in range(messages)]
    missing = sum(1 for m in expected if arrived[m] == 0)
    doubled = sum(1 for m in expected if arrived[m] > 1)
    return f"{missing}/{doubled}"


def one_run(
    client: str, server: FakeServer, messages: int, connections: int, cpu: int | None
) -> dict[str, Any]:
    server.ask("clear")
    server_before = server.ask("cpu")
    if client == "raw":
        with get_context("spawn").Pool(1) as pool:
            elapsed, client_cpu = pool.apply(
                raw_child, ((server.base_url, server.token, messages, connections, cpu),)
            )
    else:
        client_before = time.process_time()
        elapsed = asyncio.run(run_client(client, server, messages, connections))
        client_cpu = time.process_time() - client_before
    server_cpu = server.ask("cpu") - server_before
    return {
        "msgs/s": messages / elapsed,
        "server us/msg": server_cpu / messages * 1e6,
        "client us/msg": client_cpu / messages * 1e6,
        "missing/dup": checked(server, messages),
    }


def summary(values: list[float]) -> str:
    return f"{min(values):,.0f}/{statistics.median(values):,.0f}"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fronts", default="threads,asyncio", help="threads,asyncio")
    parser.add_argument("--clients", default=",".join(CLIENTS), help=f"from: {','.join(CLIENTS)}")
    parser.add_argument("--connections", default="8,40", help="connections (and senders)")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pin", action="store_true", help="server on core 1, clients on 0")
    args = parser.parse_args(argv)
    args.fronts = [f for f in args.fronts.split(",") if f]
    args.clients = [c for c in args.clients.split(",") if c]
    if set(args.clients) - set(CLIENTS):
        parser.error(f"clients: {', '.join(CLIENTS)}")
    args.connections = [int(c) for c in args.connections.split(",") if c]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    client_cpu = 0 if args.pin else None
    if client_cpu is not None:
        os.sched_setaffinity(0, {client_cpu})
    rows = []
    for front in args.fronts:
        server = FakeServer(front, cpu=1 if args.pin else None)
        try:
            for client in args.clients:
                for connections in args.connections:
                    runs = [
                        one_run(client, server, args.messages, connections, client_cpu)
                        for _ in range(args.runs)
                    ]
                    row = {
                        "front": front,
                        "client": client,
                        "conns": connections,
                        **{
                            key: summary([r[key] for r in runs])
                            for key in ("msgs/s", "server us/msg", "client us/msg")
                        },
                        "missing/dup": ",".join(sorted({r["missing/dup"] for r in runs})),
                    }
                    rows.append(row)
                    log("  ".join(f"{k}={v}" for k, v in row.items()))
        finally:
            server.close()
    log(f"\nmin/median of {args.runs}, {args.messages} messages each; load {os.getloadavg()}")
    log(table(rows))


if __name__ == "__main__":
    main()
