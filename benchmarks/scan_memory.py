"""Peak memory and throughput of `piguard scan` on one large log file (the file is streamed, so peak memory
should not grow with the file size).

    python benchmarks/scan_memory.py [--mb 64 512 2048] [--keep]

Several sizes in one run show whether peak memory grows with the file.

Writes benchmarks/results/scan_memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def make_block(seed: int = 7, lines: int = 4000) -> bytes:
    """About 0.5 MB of mixed Chinese/English log lines, some carrying personal information."""
    rnd = random.Random(seed)
    out = []
    for i in range(lines):
        kind = rnd.random()
        day, hour = rnd.randint(1, 28), rnd.randint(0, 23)
        minute, sec = rnd.randint(0, 59), rnd.randint(0, 59)
        ts = f"2024-03-{day:02d} {hour:02d}:{minute:02d}:{sec:02d}"
        if kind < 0.1:
            phone = f"1{rnd.choice('3589')}{rnd.randint(0, 9)}{rnd.randint(10**7, 10**8 - 1)}"
            out.append(f"{ts} INFO 客户来电，手机 {phone}，咨询还款计划，已登记工单 {i}")
        elif kind < 0.15:
            ip = f"10.{i % 250}.{rnd.randint(0, 250)}.7"
            out.append(f"{ts} INFO user login ok mail=user{i}@example.com ip={ip}")
        else:
            latency = rnd.randint(1, 900)
            out.append(f"{ts} DEBUG 请求处理完成 status=200 latency={latency}ms path=/api/v1/loan/{i}")
    return ("\n".join(out) + "\n").encode("utf-8")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, nargs="+", default=[64, 512])
    ap.add_argument("--keep", action="store_true", help="keep the generated file")
    args = ap.parse_args()
    data_dir = HERE / "data"
    data_dir.mkdir(exist_ok=True)
    runs = [run_one(data_dir, mb, keep=args.keep) for mb in args.mb]
    result = {
        "runs": runs,
        "load_average_at_end": os.getloadavg()[0],
        "note": "one file, one process (large files are streamed in 4 MB blocks), POLARS_MAX_THREADS=1; "
        "all detectors on (structured, names, addresses, sensitive context)",
    }
    print(json.dumps(result, indent=2))
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "scan_memory.json").write_text(json.dumps(result, indent=2) + "\n")


def run_one(data_dir: Path, mb: int, *, keep: bool) -> dict[str, object]:
    path = data_dir / f"big-{mb}mb.log"
    block = make_block()
    if not path.exists() or path.stat().st_size < mb * 1024 * 1024:
        with open(path, "wb") as fh:
            written = 0
            while written < mb * 1024 * 1024:
                fh.write(block)
                written += len(block)
    size = path.stat().st_size
    exe = Path(sys.executable).with_name("piguard")
    # Peak memory of this one child, measured by GNU time's wait4 accounting (RUSAGE_CHILDREN is cumulative).
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [str(exe), "scan", str(path), "--format", "jsonl", "-o", os.devnull, "--no-progress"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "POLARS_MAX_THREADS": "1"},
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if not keep:
        path.unlink()
    return {
        "file_mb": round(size / 1e6, 1),
        "seconds": round(wall, 2),
        "mb_per_s": round(size / 1e6 / wall, 2),
        "mb_per_cpu_s": round(size / 1e6 / (usage.ru_utime + usage.ru_stime), 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "exit_code": os.waitstatus_to_exitcode(status),
    }


if __name__ == "__main__":
    main()
