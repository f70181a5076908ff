"""`piguard scan` as a whole process: startup, MB/s per core on log-like text and on the dense corpus, all
detectors against structured ones, beside Presidio in the same run.

    pip install -e '.[bench]'
    python benchmarks/scan_speed.py [--log-mb 64] [--dense-copies 8] [--presidio-kb 256]

* Log-like text: application log lines (time stamps, levels, paths, latencies, trace ids, Chinese and
  English messages), about one finding per kilobyte (phones, e-mail and IP addresses), generated with a
  fixed seed; the dense corpus is ``benchmarks/detect_corpus.py`` (one labelled entity per ~60 bytes)
  repeated.
* Each figure is one ``piguard scan FILE --format jsonl -o /dev/null`` child process; MB per CPU-second of
  that child (user + system, from wait4) is the per-core figure, wall MB/s is given beside it. The machine
  is shared: the load average is recorded at the start and the end. piguard's bytecode is compiled first
  and the children may use it (as after ``pip install``), whatever PYTHONDONTWRITEBYTECODE says.
* Startup: ``piguard --help`` and ``piguard scan`` of a one-line file (structured entities, and every
  detector), best of three, and the heavy modules each one imported (none for the first two; a scan with
  every detector needs polars' regex engine for names, addresses and sensitive terms).
* Presidio: ``AnalyzerEngine`` with its predefined recognizers on a blank spaCy pipeline (as in
  ``detect_bench.py``), in this process, on the first ``--presidio-kb`` KB of each text.

Writes benchmarks/results/scan_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

STRUCTURED = (
    "CN_RESIDENT_ID,CN_PASSPORT,CN_HK_MACAO_PERMIT,CN_TW_PERMIT,PHONE_NUMBER,EMAIL_ADDRESS,BANK_CARD,"
    "IP_ADDRESS,MAC_ADDRESS,IMEI,CN_LICENCE_PLATE,GPS_COORDINATE,DATE_OF_BIRTH"
)
HEAVY = ("polars", "pyarrow", "onnx", "onnxruntime", "scrapy", "sqlalchemy", "numpy", "pandas", "torch")
RESULTS = HERE / "results" / "scan_speed.json"


def log_lines(seed: int = 29) -> list[str]:
    """About 1 MB of log lines, one finding per ~1 KB."""
    rnd = random.Random(seed)
    svcs = ["order-svc", "auth-svc", "pay-gw", "risk-engine", "loan-api"]
    paths = ["/api/v2/orders", "/api/v1/loan", "/api/v1/users/profile", "/healthz", "/api/v2/items"]
    out: list[str] = []
    size = 0
    i = 0
    while size < 1_000_000:
        i += 1
        ts = f"2024-03-{rnd.randint(1, 28):02d}T{rnd.randint(0, 23):02d}:{rnd.randint(0, 59):02d}:"
        ts += f"{rnd.randint(0, 59):02d}.{rnd.randint(0, 999):03d}+08:00"
        trace = f"{rnd.getrandbits(64):016x}"
        k = rnd.random()
        if k < 0.05:
            phone = f"1{rnd.choice('3589')}{rnd.randint(0, 9)}{rnd.randint(10**7, 10**8 - 1)}"
            line = f"{ts} INFO  [{rnd.choice(svcs)}] [{trace}] 客户来电，手机 {phone}，咨询还款计划，工单 {i}"
        elif k < 0.08:
            line = (
                f"{ts} INFO  [auth-svc] [{trace}] login ok mail=user{i}@example.com "
                f"ip=10.{i % 250}.{rnd.randint(0, 250)}.{rnd.randint(1, 254)} ua=okhttp/4.9.3"
            )
        elif k < 0.4:
            line = (
                f"{ts} DEBUG [{rnd.choice(svcs)}] [{trace}] 请求处理完成 status=200 "
                f"latency={rnd.randint(1, 900)}ms path={rnd.choice(paths)}/{rnd.randint(1, 99999)}"
            )
        elif k < 0.7:
            line = (
                f"{ts} INFO  [{rnd.choice(svcs)}] [{trace}] GET {rnd.choice(paths)}?page={rnd.randint(1, 50)}"
                f"&size=20 200 {rnd.randint(1, 400)}ms bytes={rnd.randint(200, 90000)}"
            )
        elif k < 0.9:
            app, score = rnd.randint(10**9, 10**10), rnd.randint(300, 850)
            version = f"{rnd.randint(1, 4)}.{rnd.randint(0, 9)}.{rnd.randint(0, 20)}"
            line = f"{ts} WARN  [risk-engine] [{trace}] application {app} scored {score} (model v{version})"
        else:
            line = (
                f"{ts} ERROR [pay-gw] [{trace}] upstream timeout after {rnd.randint(1000, 9000)}ms, "
                f"retry {rnd.randint(1, 3)}/3 (pool=main, active={rnd.randint(1, 64)})"
            )
        out.append(line)
        size += len(line.encode("utf-8")) + 1
    return out


def make_files(data: Path, log_mb: int, dense_copies: int) -> tuple[Path, Path]:
    from detect_corpus import load_or_generate

    data.mkdir(parents=True, exist_ok=True)
    log = data / f"scan_speed_{log_mb}mb.log"
    if not log.exists():
        block = ("\n".join(log_lines()) + "\n").encode("utf-8")
        with open(log, "wb") as fh:
            for _ in range(max(1, round(log_mb * 1e6 / len(block)))):
                fh.write(block)
    dense = data / f"scan_speed_dense_x{dense_copies}.txt"
    if not dense.exists():
        text, _ = load_or_generate()
        block = text.encode("utf-8")
        with open(dense, "wb") as fh:
            for _ in range(dense_copies):
                fh.write(block)
    return log, dense


def piguard_exe() -> str:
    return str(Path(sys.executable).with_name("piguard"))


def child_env() -> dict[str, str]:
    """The children's environment, with Python's bytecode cache on, as it is after ``pip install`` (which
    compiles every module): a shell with PYTHONDONTWRITEBYTECODE set would otherwise make each child
    compile piguard's sources again (a sixth of a one-line scan's instructions)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def compile_bytecode() -> None:
    import compileall

    import piguard

    compileall.compile_dir(str(Path(piguard.__file__).parent), quiet=1)


def run_child(args: list[str]) -> dict[str, float]:
    """One child process: wall seconds, CPU seconds (user + system of that child alone), exit code."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=child_env())
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1, 3):
        raise SystemExit(f"{' '.join(args)} exited {code}: {err[-2000:]}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024}


def imported_heavy(argv: list[str]) -> list[str]:
    """Heavy modules the CLI imports for ``argv`` (run in a child, like the console script)."""
    code = (
        "import sys, atexit\n"
        f"heavy = {HEAVY!r}\n"
        "loaded = lambda: sorted({m.split('.')[0] for m in sys.modules} & set(heavy))\n"
        "atexit.register(lambda: print('MODULES', loaded(), file=sys.stderr))\n"
        f"sys.argv = {['piguard', *argv]!r}\n"
        "from piguard.cli import main\n"
        "main()\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=child_env()
    )
    for line in res.stderr.splitlines():
        if line.startswith("MODULES "):
            return json.loads(line[len("MODULES ") :].replace("'", '"'))
    raise SystemExit(f"could not read the modules of piguard {' '.join(argv)}: {res.stderr[-1000:]}")


def startup(data: Path) -> dict[str, object]:
    one = data / "scan_speed_one_line.txt"
    one.write_text("客户手机 13812345678\n", encoding="utf-8")
    out: dict[str, object] = {}
    for label, argv in (
        ("help", ["--help"]),
        ("scan_one_line_structured", ["scan", str(one), "--no-progress", "--entities", STRUCTURED]),
        ("scan_one_line_all_detectors", ["scan", str(one), "--no-progress"]),
    ):
        runs = [run_child([piguard_exe(), *argv]) for _ in range(3)]
        out[label] = {
            "wall_s_best": round(min(r["wall_s"] for r in runs), 3),
            "cpu_s_best": round(min(r["cpu_s"] for r in runs), 3),
            "heavy_modules_imported": imported_heavy(argv),
        }
    return out


def scan_figures(path: Path, entities: str | None) -> dict[str, float]:
    args = [piguard_exe(), "scan", str(path), "--format", "jsonl", "-o", os.devnull, "--no-progress"]
    if entities:
        args += ["--entities", entities]
    r = run_child(args)
    mb = path.stat().st_size / 1e6
    return {
        "mb": round(mb, 1),
        "mb_per_cpu_s": round(mb / r["cpu_s"], 1),
        "mb_per_s_wall": round(mb / r["wall_s"], 1),
        "cpu_s": round(r["cpu_s"], 2),
        "peak_rss_mb": round(r["peak_rss_mb"], 1),
    }


def engine_only(path: Path) -> float:
    """The compiled structured detector alone (no reading, settling or writing), MB per CPU-second on the
    first 16 MB: the figure the whole process is held against, measured under the same load."""
    from piguard.detect.structured import _engine

    engine = _engine()
    with open(path, encoding="utf-8") as fh:
        chunks = [fh.read(4_000_000) for _ in range(4)]
    engine.scan(chunks[0][:10000])
    t0 = time.process_time()
    for c in chunks:
        engine.scan(c)
    return round(sum(len(c.encode("utf-8")) for c in chunks) / 1e6 / (time.process_time() - t0), 1)


def engine_only_utf8(path: Path) -> float | None:
    """The same from UTF-8 bytes (``scan_utf8``: decoding, line positions and scanning in one pass, what a
    structured scan of a file runs), MB per CPU-second on the first 16 MB."""
    from piguard.detect.structured import _engine

    engine = _engine()
    if not hasattr(engine, "scan_utf8"):
        return None
    with open(path, "rb") as fh:
        data = fh.read(16_000_000)
    blocks, pos = [], 0
    while pos < len(data):
        end = data.rfind(b"\n", pos, pos + 4_000_000) + 1
        end = len(data) if end <= pos else end
        blocks.append(data[pos:end])
        pos = end
    engine.scan_utf8(blocks[0][:10000])
    t0 = time.process_time()
    for b in blocks:
        engine.scan_utf8(b)
    return round(sum(len(b) for b in blocks) / 1e6 / (time.process_time() - t0), 1)


def findings_per_kb(path: Path, entities: str) -> float:
    """How dense the findings are: counted on the first 4 MB."""
    from piguard.detect import scan_text

    with open(path, encoding="utf-8") as fh:
        text = fh.read(4_000_000)
    n = len(scan_text(text, entities=entities.split(",")))
    return round(n / (len(text.encode("utf-8")) / 1000), 2)


def presidio_figures(path: Path, kb: int) -> dict[str, object] | None:
    try:
        from detect_bench import presidio_engine
    except ImportError:
        return None
    try:
        engine = presidio_engine()
    except ImportError:
        return None
    with open(path, encoding="utf-8") as fh:
        text = fh.read(kb * 1000)
    text = text[: text.rfind("\n") + 1]
    engine.analyze(text[:2000], language="en")
    t0, c0 = time.perf_counter(), time.process_time()
    pos = 0
    while pos < len(text):
        end = text.find("\n", pos + 4096)
        end = len(text) if end < 0 else end + 1
        engine.analyze(text[pos:end], language="en")
        pos = end
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    mb = len(text.encode("utf-8")) / 1e6
    return {
        "mb": round(mb, 3),
        "mb_per_cpu_s": round(mb / cpu, 3),
        "mb_per_s_wall": round(mb / wall, 3),
        "scope": "predefined recognizers, blank spaCy 'en' pipeline, 4 KB blocks of whole lines, in process",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--log-mb", type=int, default=64)
    ap.add_argument("--dense-copies", type=int, default=8)
    ap.add_argument("--presidio-kb", type=int, default=256)
    ap.add_argument("--no-peers", action="store_true")
    args = ap.parse_args()
    data = HERE / "data"
    log, dense = make_files(data, args.log_mb, args.dense_copies)
    compile_bytecode()
    result: dict[str, object] = {
        "machine": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
        },
        "bytecode": "compiled beforehand and cached, as after pip install",
        "load_average_at_start": os.getloadavg()[0],
        "texts": {
            "log": {
                "file_mb": round(log.stat().st_size / 1e6, 1),
                "findings_per_kb": findings_per_kb(log, STRUCTURED),
                "engine_only_mb_per_cpu_s": engine_only(log),
                "engine_only_from_utf8_mb_per_cpu_s": engine_only_utf8(log),
            },
            "dense": {
                "file_mb": round(dense.stat().st_size / 1e6, 1),
                "findings_per_kb": findings_per_kb(dense, STRUCTURED),
                "engine_only_mb_per_cpu_s": engine_only(dense),
                "engine_only_from_utf8_mb_per_cpu_s": engine_only_utf8(dense),
            },
        },
    }
    result["startup"] = startup(data)
    print(json.dumps(result["startup"], indent=1), flush=True)
    piguard: dict[str, object] = {}
    for label, path, ents in (
        ("log_structured", log, STRUCTURED),
        ("log_all_detectors", log, None),
        ("dense_structured", dense, STRUCTURED),
    ):
        piguard[label] = scan_figures(path, ents)
        print(label, piguard[label], flush=True)
    s, a = piguard["log_structured"], piguard["log_all_detectors"]
    piguard["log_all_over_structured_cpu"] = round(a["cpu_s"] / s["cpu_s"], 2)  # type: ignore[index]
    result["piguard"] = piguard
    if not args.no_peers:
        peers = {
            "log": presidio_figures(log, args.presidio_kb),
            "dense": presidio_figures(dense, args.presidio_kb),
        }
        if peers["log"] is None:
            print("presidio: not installed, skipped (pip install -e '.[bench]')", file=sys.stderr)
        else:
            result["presidio"] = peers
            print("presidio", peers, flush=True)
    result["load_average_at_end"] = os.getloadavg()[0]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
