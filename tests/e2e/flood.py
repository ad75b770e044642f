"""A tenant flooding the API server, in a process of its own:

    FLOOD_TOKEN=... python -m tests.e2e.flood --server https://127.0.0.1:PORT --ca CA \
        --path /api/v1/namespaces/a-apps/configmaps --concurrency 200 --seconds 20

`concurrency` clients each send the same GET again as soon as the last one is
answered (a 429 included), until `seconds` have passed or `max-requests` were sent.
Prints `started` once the first answer is in, then one JSON line of counts by status.
Its own process, so the test's event loop, which measures latency, stays quiet (as
the flooding tenant would be another machine). Loopback servers only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import sys
import time
from collections import Counter
from urllib.parse import urlparse

import aiohttp


def loopback(server: str) -> bool:
    return urlparse(server).hostname in ("127.0.0.1", "::1", "localhost")


async def flood(
    server: str, ca: str, token: str, path: str, *, concurrency: int, seconds: float, limit: int
) -> dict[str, int]:
    context = ssl.create_default_context(cafile=ca)
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    counts: Counter[str] = Counter()
    first = asyncio.Event()
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=context, limit=concurrency), timeout=timeout
    ) as session:
        end = time.monotonic() + seconds

        async def client() -> None:
            while time.monotonic() < end and counts.total() < limit:
                try:
                    async with session.get(server + path, headers=headers) as response:
                        await response.read()
                        counts[str(response.status)] += 1
                except (aiohttp.ClientError, TimeoutError) as exc:
                    counts[type(exc).__name__] += 1
                    await asyncio.sleep(0.05)
                if not first.is_set():
                    first.set()
                    print("started", flush=True)

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return dict(counts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--max-requests", type=int, default=500_000)
    args = parser.parse_args()
    if not loopback(args.server):
        sys.exit(f"refusing to flood {args.server}: loopback API servers only")
    seconds = min(args.seconds, 120.0)
    # The flooding tenant would be another machine: here it shares the API server's two
    # cores, so it yields them first (the API server still gets all it sends).
    os.nice(10)
    counts = asyncio.run(
        flood(
            args.server,
            args.ca,
            os.environ["FLOOD_TOKEN"],
            args.path,
            concurrency=min(args.concurrency, 1000),
            seconds=seconds,
            limit=args.max_requests,
        )
    )
    print(json.dumps({"codes": counts, "seconds": seconds}), flush=True)


if __name__ == "__main__":
    main()
