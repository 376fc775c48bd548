"""The floor under the gateway's added latency: a bare pass-through on the same HTTP stack.

`python -m bench.passthrough_floor PORT UPSTREAM`: uvicorn (h11, asyncio, as the gateway runs),
Starlette and an httpx2 client streaming the upstream's answer back, and nothing else: no
logging, no capture, no checks. What it adds over calling the upstream directly is what any
pass-through written on this stack adds on this machine; the gateway's figure minus this one is
what the gateway's own work costs.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator

import httpx2
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

NOT_FORWARDED = frozenset({"host", "content-length", "connection", "transfer-encoding", "keep-alive"})


def build_app(upstream: str) -> Starlette:
    client = httpx2.AsyncClient(limits=httpx2.Limits(max_connections=None, max_keepalive_connections=100,
                                                     keepalive_expiry=4.0), timeout=60.0)

    async def relay(request: Request) -> StreamingResponse:
        headers = [(name, value) for name, value in request.headers.items() if name not in NOT_FORWARDED]
        outgoing = client.build_request(request.method, upstream + request.url.path, headers=headers,
                                        content=await request.body())
        answer = await client.send(outgoing, stream=True)

        async def body() -> AsyncIterator[bytes]:
            async for data in answer.aiter_raw():
                yield data

        return StreamingResponse(body(), status_code=answer.status_code, background=BackgroundTask(answer.aclose),
                                 headers={name: value for name, value in answer.headers.items()
                                          if name not in NOT_FORWARDED})

    return Starlette(routes=[Route("/{path:path}", relay, methods=["GET", "POST"])])


def main(port: int, upstream: str) -> None:
    uvicorn.run(build_app(upstream), host="127.0.0.1", port=port, log_level="warning", access_log=False,
                http="h11", loop="asyncio", timeout_keep_alive=75)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
