"""The baseline for remote latency: a msgpack echo on the agentsdk server's stack.

uvicorn (same version, same options as ``agentsdk serve``: asyncio loop, h11,
no access log, no lifespan) + starlette, one route: ``POST /echo`` reads the
body, decodes it with the protocol codec (``agentsdk_client.protocol.codec``, which the
server uses too) and answers the re-encoded message. Run as a process:

    python benchmarks/_echo_server.py PORT
"""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agentsdk_client.protocol.codec import decode, encode


async def echo(request: Request) -> Response:
    return Response(encode(decode(await request.body())), media_type="application/msgpack")


app = Starlette(routes=[Route("/echo", echo, methods=["POST"])])

if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        access_log=False,
        timeout_keep_alive=60,
        lifespan="off",
    )
