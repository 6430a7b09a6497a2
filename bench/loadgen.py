"""A small closed-loop HTTP/1.1 load generator (asyncio, keep-alive), light enough to share a
2-core machine with the server it measures."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass

MARKER = b"@@@@@@@@"  # bench.workload.REQUEST_MARKER: replaced by each request's number


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one load run measured."""

    concurrency: int
    requests: int
    errors: int
    seconds: float
    latencies_ms: tuple[float, ...]

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")

    @property
    def p99(self) -> float:
        return self.percentile(0.99)


async def _client(
    host: str,
    port: int,
    request: bytes,
    deadline: float,
    latencies: list[float],
    errors: list[int],
    numbers: Iterator[int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request.replace(MARKER, b"%08d" % next(numbers)))
            await writer.drain()
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append((time.perf_counter() - started) * 1000)
            if not status_line.startswith(b"HTTP/1.1 200"):
                errors.append(1)
    except (ConnectionError, asyncio.IncompleteReadError):
        errors.append(1)
    finally:
        writer.close()


_NUMBERS = itertools.count()


def run_load(
    host: str, port: int, path: str, body: bytes, *, concurrency: int, seconds: float
) -> LoadResult:
    """Drive `concurrency` keep-alive clients posting `body` to `path` for `seconds`.

    Every `MARKER` in `body` is replaced by the request's own number, so no two requests of a
    run (nor of two runs in one process) are the same.
    """
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    ).encode() + body
    latencies: list[float] = []
    errors: list[int] = []

    async def main() -> float:
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(
            *(
                _client(host, port, request, deadline, latencies, errors, _NUMBERS)
                for _ in range(concurrency)
            )
        )
        return time.perf_counter() - started

    elapsed = asyncio.run(main())
    return LoadResult(concurrency, len(latencies), len(errors), elapsed, tuple(latencies))
