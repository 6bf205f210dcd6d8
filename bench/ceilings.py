"""The servers of the ceilings, each a process of its own (as a service would be):

    python -m bench.ceilings bare --port 8099
        a bare aiohttp app (uvloop, no access log, as the services run): POST /echo
        reads the JSON body and answers a small JSON.
    python -m bench.ceilings rpc --amqp-url URL --exchange E --queue Q --routing-key K
        a consumer on a durable queue (prefetch as the task-store's, 32) that answers
        each message on its reply queue through the default exchange, on a channel with
        publisher confirms, then acks: the task-store's request/reply without its work.

Both print `READY` on stdout once they serve, and stop on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import orjson

REPLY = orjson.dumps({"task_id": "0" * 24, "status": "pending"})


def _loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def serve_bare(port: int) -> None:
    from aiohttp import web

    async def echo(request: web.Request) -> web.Response:
        await request.json(loads=orjson.loads)
        return web.Response(body=REPLY, content_type="application/json")

    async def ready(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def announce(_app: web.Application) -> None:
        print("READY", flush=True)

    app = web.Application()
    app.router.add_post("/echo", echo)
    app.router.add_get("/readyz", ready)
    app.on_startup.append(announce)
    web.run_app(
        app,
        host="127.0.0.1",
        port=port,
        print=None,
        access_log=None,
        shutdown_timeout=2,
        loop=_loop(),
    )


async def _serve_rpc(args: argparse.Namespace) -> None:
    import aio_pika

    connection = await aio_pika.connect_robust(
        args.amqp_url, client_properties={"connection_name": "bench-rpc-server"}
    )
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await channel.set_qos(prefetch_count=args.prefetch)
        exchange = await channel.declare_exchange(
            args.exchange, aio_pika.ExchangeType.DIRECT, durable=True
        )
        queue = await channel.declare_queue(args.queue, durable=True)
        await queue.bind(exchange, routing_key=args.routing_key)

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            orjson.loads(message.body)
            if message.reply_to:
                await channel.default_exchange.publish(
                    aio_pika.Message(
                        body=REPLY,
                        content_type="application/json",
                        correlation_id=message.correlation_id,
                        headers={"x-request-id": message.correlation_id or ""},
                    ),
                    routing_key=message.reply_to,
                    mandatory=False,
                )
            await message.ack()

        await queue.consume(on_message)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        print("READY", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ceilings",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    servers = parser.add_subparsers(dest="server", required=True)
    bare = servers.add_parser("bare")
    bare.add_argument("--port", type=int, required=True)
    rpc = servers.add_parser("rpc")
    rpc.add_argument("--amqp-url", required=True)
    rpc.add_argument("--exchange", required=True)
    rpc.add_argument("--queue", required=True)
    rpc.add_argument("--routing-key", required=True)
    rpc.add_argument("--prefetch", type=int, default=32)
    args = parser.parse_args(argv)
    if args.server == "bare":
        serve_bare(args.port)
    else:
        with asyncio.Runner(loop_factory=_loop) as runner:
            runner.run(_serve_rpc(args))
    sys.exit(0)


if __name__ == "__main__":
    main()
