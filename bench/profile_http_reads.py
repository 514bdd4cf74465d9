"""Where a `studio serve` process spends its CPU under one of the HTTP read benchmark's queries.

    .venv/bin/python bench/profile_http_reads.py small [--seconds 15] [--connections 16]
        [--env STUDIO_COMPILED_READS=false ...] [--out /tmp/profile]

Seeds the data set of `bench/bench_http_reads.py` into a throwaway database, starts one
``studio serve`` pinned to core 0, drives the query with the load generator on core 1 and samples
the server with py-spy (``pip install py-spy``) while it is loaded. Writes the raw collapsed
stacks (``OUT.folded``, for flame graphs) and prints the functions with the most CPU, by self
time and by time including callees, as shares of all samples. Also prints the load generator's
req/s, which under a sampler is a little lower than in the benchmark proper.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_http_reads import Bench, prepare
from bench.http_load import pick_driver, run_load
from bench.http_reads_data import QUERIES
from bench.http_reads_servers import running
from tests.support.server import choose_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("query", choices=sorted(QUERIES))
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the server")
    parser.add_argument("--rate-limits", choices=["off", "on"], default="off")
    parser.add_argument("--out", type=Path, help="where the stacks go (default: a temporary file)")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument(
        "--native",
        action="store_true",
        help="C frames too; py-spy then pauses the server for every sample, which inflates "
        "the share of system calls (write() looked like half the time under the small query, "
        "and writing each response once instead of twice changed nothing)",
    )
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise SystemExit("py-spy is not installed: pip install py-spy")
    server = choose_server()
    database = server.create_database(prefix="studio_profile")
    try:
        seeded, _ = asyncio.run(prepare(database))
        bench = Bench(
            argparse.Namespace(queries=[args.query], connections=args.connections), database, seeded
        )
        env = bench.env(database, args.rate_limits)
        env |= dict(item.split("=", 1) for item in args.env)
        with running("studio", env, bench.folder, cpu=0, name="studio") as studio:
            body, headers = bench.request(args.query)
            url = f"{studio.url}/graphql"
            options = {"connections": args.connections, "cpu": 1, "driver": pick_driver()}
            run_load(url, body, headers, duration=2, **options)  # warm-up
            folded = (args.out or bench.folder / "profile").with_suffix(".folded")
            sampler = subprocess.Popen(
                [
                    *(py_spy, "record", "--pid", str(studio.pid)),
                    *(("--native",) if args.native else ("--nonblocking",)),
                    *("--duration", str(int(args.seconds)), "--rate", "250"),
                    *("--format", "raw", "--output", str(folded)),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            result: list[object] = []
            load = threading.Thread(
                target=lambda: result.append(
                    run_load(url, body, headers, duration=args.seconds - 1, **options)
                )
            )
            time.sleep(0.5)
            load.start()
            load.join()
            sampler.wait()
        print(f"{args.query}: {result[0]}\nstacks: {folded}")
        report(folded, args.top)
    finally:
        server.drop_database(database)
        server.close()


def report(folded: Path, top: int) -> None:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in folded.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():  # a line py-spy was still writing when it stopped
            continue
        count = int(count_text)
        frames = stack.split(";")
        samples += count
        own[_short(frames[-1])] += count
        for frame in {_short(f) for f in frames}:
            total[frame] += count
    print(f"\n{samples} samples; self time:")
    for frame, count in own.most_common(top):
        print(f"  {100 * count / samples:5.1f} %  {frame}")
    print("\nincluding callees:")
    for frame, count in total.most_common(top):
        print(f"  {100 * count / samples:5.1f} %  {frame}")


def _short(frame: str) -> str:
    # "function (path/to/file.py:123)" -> "function (file.py)"
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    shown = "/".join(parts[-2:]) if parts else path
    return f"{name} ({shown})"


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
