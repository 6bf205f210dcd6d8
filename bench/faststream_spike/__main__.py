"""`python -m bench.faststream_spike check|bench` (from the scratch venv: README.md)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/fs_spike"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.faststream_spike")
    parser.add_argument("what", choices=["check", "bench", "serve"])
    parser.add_argument("--amqp-url", default=os.environ.get("SPIKE_AMQP_URL", DEFAULT_URL))
    parser.add_argument("--levels", default="1,16,64", help="concurrent callers per phase")
    parser.add_argument("--seconds", type=float, default=4.0, help="measured per phase")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of every phase")
    parser.add_argument(
        "--no-faststream-metrics",
        dest="faststream_metrics",
        action="store_false",
        help="without FastStream's Prometheus middleware (what it costs)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.what == "check":
        from .check import check

        sys.exit(1 if asyncio.run(check(args.amqp_url)) else 0)
    from .run import bench, serve, service_loop

    if args.what == "serve":
        service_loop().run_until_complete(serve(args.amqp_url, args.faststream_metrics))
        return
    levels = [int(level) for level in args.levels.split(",")]
    service_loop().run_until_complete(
        bench(args.amqp_url, levels, args.seconds, args.repeats, args.faststream_metrics)
    )


main()
