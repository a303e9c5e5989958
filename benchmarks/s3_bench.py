"""Benchmark S3 copies: dr vs `aws s3 sync` vs a bare parallel CopyObject loop, one simulator.

Run from the repo root: `python benchmarks/s3_bench.py [--objects 2000] [--repeat 3]`.

One moto server process on 127.0.0.1 (as the integration tests use), a KMS key with the alias
`alias/dr-backups` in us-west-2, a source bucket in us-east-1 seeded with small objects (1-8 KiB,
keys like `uploads/2026/11/<uuid>.jpg`), and a fresh destination bucket in us-west-2 for every
run of every contender, so each run is a first copy. Three contenders do the same server-side
work, a CopyObject per object under SSE-KMS with the DR key:

* dr       `run_backup(ctx, only="s3")` on a dr.yaml pointing at the server (`aws.endpoint_url`),
           a fresh context and a temp local state directory per run: timed from `make_context`
           to the finished run record, so it includes dr's session and client set-up, the key
           check, the bucket checks, both listings and the run record and manifest writes;
* awscli   `aws s3 sync s3://SRC s3://DST --sse aws:kms --sse-kms-key-id ARN --endpoint-url URL`,
           awscli from PyPI in its own virtualenv (created on first use, see AWSCLI_VENV), with its
           default 10 concurrent requests, and again with 16 (dr's default) set through an
           AWS_CONFIG_FILE; timed as a process, so it includes interpreter start-up;
* ceiling  the simulator's ceiling: a ThreadPoolExecutor of 16 (dr's default concurrency) over
           the known key list, one boto3 client made beforehand, the same CopyObject request dr
           sends (CopySourceIfMatch, MetadataDirective/TaggingDirective COPY, SSE-KMS), no listing.

After an untimed warm-up (a ceiling pass, and dr on one month of keys), each contender runs
--repeat times, in rotating order (the machine is small and noisy); the table gives the best, the
median and the paired same-round ratios, and what dr spends before its first CopyObject, after its
last one, and in its longest pause between two. Then the re-run with nothing changed: its time
for dr and awscli (and, as a ceiling, a bare paginated listing of both sides), and its HTTP
requests: for dr a
`before-send` hook on the context's boto3 session (every service, every attempt), for awscli the
"Sending http request" lines of `--debug` (botocore logs one per attempt), each split into
ListObjectsV2 pages, which grow with the bucket, and a constant overhead.

Never touches real AWS: dummy credentials, no config files, every client on --endpoint-url.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

try:
    import dr  # noqa: F401
except ImportError:  # not installed: run against the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3  # noqa: E402
import botocore  # noqa: E402
from botocore.config import Config as BotoConfig  # noqa: E402

from dr.backup.service import run_backup  # noqa: E402
from dr.config import load_config  # noqa: E402
from dr.context import make_context  # noqa: E402

PRIMARY, DR_REGION = "us-east-1", "us-west-2"
SRC = "bench-src"
CONCURRENCY = 16  # dr's default s3[].concurrency; the ceiling uses the same
#: awscli lives in its own virtualenv (it pins its own botocore); created here on first use.
AWSCLI_VENV = Path(os.environ.get("DR_BENCH_AWSCLI_VENV",
                                  Path(tempfile.gettempdir()) / "dr-bench-awscli-venv"))
AWSCLI_SPEC = os.environ.get("DR_BENCH_AWSCLI_SPEC", "awscli")
DUMMY = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}


# ---------------------------------------------------------------------------- set-up


def hermetic_env() -> None:
    """Dummy credentials, no profile or config file: nothing here can reach a real account."""
    os.environ.update(DUMMY)
    os.environ.update({"AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
                       "AWS_EC2_METADATA_DISABLED": "true"})
    for var in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "DR_ENDPOINT_URL",
                "DR_CONFIG", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        os.environ.pop(var, None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen, str]:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
            return proc, endpoint
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("moto server did not start")
            time.sleep(0.1)


def ensure_awscli() -> Path:
    aws = AWSCLI_VENV / "bin" / "aws"
    if not aws.exists():
        print(f"creating {AWSCLI_VENV} and installing {AWSCLI_SPEC} from PyPI ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(AWSCLI_VENV)], check=True)
        subprocess.run([str(AWSCLI_VENV / "bin" / "pip"), "install", "--quiet",
                        "--disable-pip-version-check", AWSCLI_SPEC], check=True,
                       stderr=subprocess.DEVNULL)
    return aws


def awscli_env(config_file: Path | None = None) -> dict[str, str]:
    """Dummy credentials, the DR region, and no config file but the one given (s3 settings)."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env.update(DUMMY)
    env.update({"AWS_DEFAULT_REGION": DR_REGION, "AWS_CONFIG_FILE": str(config_file or "/nonexistent"),
                "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_PAGER": ""})
    return env


@dataclass
class World:
    endpoint: str
    key_arn: str
    keys: list[str]
    etags: list[str]
    total_bytes: int
    workdir: Path
    _clients: dict = field(default_factory=dict)

    def client(self, service: str, region: str, pool: int = 10):
        k = (service, region, pool)
        if k not in self._clients:
            self._clients[k] = boto3.client(
                service, region_name=region, endpoint_url=self.endpoint,
                config=BotoConfig(max_pool_connections=pool, retries={"mode": "standard"}))
        return self._clients[k]

    def new_destination(self, name: str) -> str:
        self.client("s3", DR_REGION).create_bucket(
            Bucket=name, CreateBucketConfiguration={"LocationConstraint": DR_REGION})
        return name

    def check_copy(self, bucket: str) -> None:
        """Every key is there, and (one sampled) under the DR key: else the run did not count."""
        s3 = self.client("s3", DR_REGION)
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        n = sum(len(p.get("Contents", [])) for p in pages)
        if n != len(self.keys):
            raise SystemExit(f"{bucket}: {n} objects after the copy, expected {len(self.keys)}")
        head = s3.head_object(Bucket=bucket, Key=self.keys[len(self.keys) // 2])
        if head.get("SSEKMSKeyId") != self.key_arn:
            raise SystemExit(f"{bucket}: copy not under the DR key: {head.get('SSEKMSKeyId')}")


def seed(endpoint: str, objects: int, workdir: Path) -> World:
    kms = boto3.client("kms", region_name=DR_REGION, endpoint_url=endpoint)
    key_arn = kms.create_key(Description="dr bench")["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName="alias/dr-backups", TargetKeyId=key_arn)
    world = World(endpoint, key_arn, [], [], 0, workdir)
    src = world.client("s3", PRIMARY, pool=CONCURRENCY)
    src.create_bucket(Bucket=SRC)
    rng = random.Random(20261126)
    items = []
    for _ in range(objects):
        month = rng.randint(1, 11)
        key = f"uploads/2026/{month:02d}/{uuid.UUID(int=rng.getrandbits(128), version=4)}.jpg"
        items.append((key, rng.randbytes(rng.randint(1024, 8192))))

    def put(item):
        key, body = item
        return key, src.put_object(Bucket=SRC, Key=key, Body=body, ContentType="image/jpeg")["ETag"], len(body)

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        done = sorted(pool.map(put, items))
    world.keys = [k for k, _, _ in done]
    world.etags = [e for _, e, _ in done]
    world.total_bytes = sum(n for _, _, n in done)
    return world


# ---------------------------------------------------------------------------- contenders


@dataclass
class Result:
    seconds: float
    requests: Counter = field(default_factory=Counter)  # operation -> HTTP sends
    setup: float | None = None  # dr: start -> first CopyObject sent
    tail: float | None = None  # dr: last CopyObject sent -> finished
    pause: float | None = None  # dr: longest time between two consecutive CopyObject sends


def dr_config(world: World, destination: str, state: Path, prefix: str = "") -> Path:
    path = world.workdir / f"dr-{destination}.yaml"
    path.write_text(
        "version: 1\n"
        f"regions: {{primary: {PRIMARY}, dr: {DR_REGION}}}\n"
        f"aws: {{endpoint_url: '{world.endpoint}'}}\n"
        "objectives: {rpo: 1h, rto: 30m}\n"
        "kms: {dr_key: alias/dr-backups}\n"
        f"state: {{path: '{state}'}}\n"
        "s3:\n"
        f"  - {{name: uploads, source: {SRC}, destination: {destination}, prefix: '{prefix}', "
        "schedule: every 1h}\n")
    return path


def run_dr(world: World, destination: str, *, expect_copied: int, prefix: str = "") -> Result:
    config = load_config(dr_config(world, destination, world.workdir / f"state-{destination}", prefix))
    sends: Counter = Counter()
    copy_times: list[float] = []

    def on_send(event_name: str, **_kw) -> None:
        op = event_name.rsplit(".", 1)[-1]
        sends[op] += 1
        if op == "CopyObject":
            copy_times.append(time.perf_counter())

    start = time.perf_counter()
    ctx = make_context(config)
    ctx.aws.boto_session.events.register("before-send", on_send)
    outcome = run_backup(ctx, only="s3")
    seconds = time.perf_counter() - start
    end = start + seconds
    record = outcome.record
    summary = record.results[0].summary if record and record.results else {}
    if record is None or record.status != "completed" or summary.get("copied") != expect_copied:
        raise SystemExit(f"dr run into {destination} did not complete as expected: "
                         f"{record.status if record else None} {summary} {record.error if record else ''}")
    setup = copy_times[0] - start if copy_times else None
    tail = end - copy_times[-1] if copy_times else None
    ts = sorted(copy_times)
    pause = max((b - a for a, b in zip(ts, ts[1:])), default=None)
    return Result(seconds, sends, setup, tail, pause)


def awscli_cmd(aws: Path, world: World, destination: str, debug: bool = False) -> list[str]:
    cmd = [str(aws)] + (["--debug"] if debug else []) + [
        "s3", "sync", f"s3://{SRC}", f"s3://{destination}", "--endpoint-url", world.endpoint,
        "--sse", "aws:kms", "--sse-kms-key-id", world.key_arn, "--only-show-errors"]
    return cmd


def awscli_config(world: World, concurrency: int) -> Path:
    path = world.workdir / f"awscli-{concurrency}.config"
    path.write_text(f"[default]\ns3 =\n    max_concurrent_requests = {concurrency}\n")
    return path


def run_awscli(aws: Path, world: World, destination: str, concurrency: int | None = None) -> Result:
    cmd = awscli_cmd(aws, world, destination)
    env = awscli_env(awscli_config(world, concurrency) if concurrency else None)
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"aws s3 sync failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    return Result(seconds)


_SENDING = re.compile(r"Sending http request: ")
_MAKING = re.compile(r"Making request for OperationModel\(name=(\w+)\)")


def count_awscli(aws: Path, world: World, destination: str) -> tuple[Result, int]:
    """One `--debug` run: per-operation requests, and the count of 'Sending http request' lines."""
    log = world.workdir / f"awscli-debug-{destination}.log"
    with log.open("wb") as err:
        start = time.perf_counter()
        proc = subprocess.run(awscli_cmd(aws, world, destination, debug=True), env=awscli_env(),
                              stdout=subprocess.DEVNULL, stderr=err)
        seconds = time.perf_counter() - start
    text = log.read_text(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"aws --debug s3 sync failed ({proc.returncode}): {text[-2000:]}")
    return Result(seconds, Counter(_MAKING.findall(text))), len(_SENDING.findall(text))


def run_ceiling(world: World, destination: str) -> Result:
    s3 = world.client("s3", DR_REGION, pool=CONCURRENCY)

    def one(i: int) -> None:
        s3.copy_object(Bucket=destination, Key=world.keys[i],
                       CopySource={"Bucket": SRC, "Key": world.keys[i]}, CopySourceIfMatch=world.etags[i],
                       MetadataDirective="COPY", TaggingDirective="COPY",
                       ServerSideEncryption="aws:kms", SSEKMSKeyId=world.key_arn)

    start = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        for _ in pool.map(one, range(len(world.keys))):
            pass
    return Result(time.perf_counter() - start)


def run_list_ceiling(world: World, destination: str) -> Result:
    """The no-change ceiling: page through both listings, nothing else."""
    src, dst = world.client("s3", PRIMARY, pool=CONCURRENCY), world.client("s3", DR_REGION, pool=CONCURRENCY)
    start = time.perf_counter()
    n = 0
    for client, bucket in ((src, SRC), (dst, destination)):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            n += len(page.get("Contents", []))
    seconds = time.perf_counter() - start
    assert n == 2 * len(world.keys), n
    return Result(seconds)


# ---------------------------------------------------------------------------- report


def best_median(results: list[Result]) -> tuple[float, float]:
    secs = [r.seconds for r in results]
    return min(secs), statistics.median(secs)


def ratio_line(label: str, a: tuple[float, float], b: tuple[float, float]) -> str:
    return f"  {label:<18} best {a[0] / b[0]:5.2f}   median {a[1] / b[1]:5.2f}"


def version_of(cmd: list[str]) -> str:
    out = subprocess.run(cmd, env=awscli_env(), capture_output=True, text=True)
    return (out.stdout or out.stderr).strip().split(" ")[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n, repeat = args.objects, args.repeat
    per_k = n / 1000
    hermetic_env()
    t_all = time.perf_counter()
    aws = ensure_awscli()
    proc, endpoint = start_moto()
    try:
        with tempfile.TemporaryDirectory(prefix="dr-s3-bench-") as tmp:
            world = seed(endpoint, n, Path(tmp))
            t0 = time.perf_counter()
            subprocess.run([str(aws), "--version"], env=awscli_env(), capture_output=True)
            aws_start = time.perf_counter() - t0
            # Untimed warm-up: the server, and dr's code paths on one month of keys.
            run_ceiling(world, world.new_destination("bench-warm-up"))
            month = "uploads/2026/01/"
            run_dr(world, world.new_destination("bench-warm-up-dr"), prefix=month,
                   expect_copied=sum(k.startswith(month) for k in world.keys))

            import moto
            print(f"machine: nproc {len(os.sched_getaffinity(0))}, Python {platform.python_version()}, "
                  f"{platform.system()} {platform.machine()}, load average at start "
                  f"{os.getloadavg()[0]:.2f}")
            print(f"dr {dr.__version__}, boto3 {boto3.__version__}, botocore {botocore.__version__}, "
                  f"moto {moto.__version__} (one server process), {version_of([str(aws), '--version'])} "
                  f"in {AWSCLI_VENV}")
            print(f"source: {n:,} objects, {world.total_bytes / 1024**2:.1f} MiB (1-8 KiB each), "
                  f"e.g. {world.keys[0]}")
            print(f"every contender: one CopyObject per object under SSE-KMS with the DR key; "
                  f"dr and the ceiling {CONCURRENCY} threads")
            print()

            # -- first copy
            contenders = {
                "dr": ("dr", lambda dst: run_dr(world, dst, expect_copied=n)),
                "awscli (default 10)": ("awscli", lambda dst: run_awscli(aws, world, dst)),
                f"awscli ({CONCURRENCY} req.)": ("awscli16", lambda dst: run_awscli(aws, world, dst, CONCURRENCY)),
                "ceiling (bare loop)": ("ceiling", lambda dst: run_ceiling(world, dst)),
            }
            first: dict[str, list[Result]] = {name: [] for name in contenders}
            synced: dict[str, str] = {}
            names = list(contenders)
            for round_ in range(repeat):
                order = names[round_ % len(names):] + names[:round_ % len(names)]
                for name in order:
                    tag, run = contenders[name]
                    dst = world.new_destination(f"bench-dst-{tag}-{round_}")
                    first[name].append(run(dst))
                    world.check_copy(dst)
                    synced.setdefault(tag, dst)

            print(f"first copy, {n:,} objects into an empty bucket ({repeat} runs each, seconds; "
                  "runs listed in order)")
            print(f"  {'contender':<20} {'best':>7} {'median':>7} {'obj/s best':>11} {'obj/s median':>13}")
            fig = {}
            for name, results in first.items():
                b, m = fig[name] = best_median(results)
                print(f"  {name:<20} {b:7.2f} {m:7.2f} {n / b:11,.0f} {n / m:13,.0f}   "
                      f"runs: {', '.join(f'{r.seconds:.2f}' for r in results)}")
            print("time ratios (lower is faster; goals: dr/awscli <= 1.00, dr/ceiling <= 1.10)")
            print(ratio_line("dr / awscli", fig["dr"], fig["awscli (default 10)"]))
            print(ratio_line(f"dr / awscli {CONCURRENCY}", fig["dr"], fig[f"awscli ({CONCURRENCY} req.)"]))
            print(ratio_line("dr / ceiling", fig["dr"], fig["ceiling (bare loop)"]))
            paired = lambda other: statistics.median(  # noqa: E731
                d.seconds / o.seconds for d, o in zip(first["dr"], first[other]))
            print(f"  paired (same round), median: dr / awscli {paired('awscli (default 10)'):.2f}, "
                  f"dr / ceiling {paired('ceiling (bare loop)'):.2f}")
            drs = first["dr"]
            med = lambda attr: statistics.median(getattr(r, attr) for r in drs)  # noqa: E731
            print(f"  inside dr's time (medians): {med('setup'):.2f} s from start to the first CopyObject, "
                  f"{med('tail'):.2f} s after the last one, longest pause between two CopyObject sends "
                  f"{med('pause'):.2f} s")
            print("  dr's requests per run: " + ", ".join(
                f"{op} {c}" for op, c in sorted(drs[0].requests.items(), key=lambda x: -x[1])))
            print(f"  awscli process start-up alone (aws --version): {aws_start:.2f} s")
            print()

            # -- re-run, nothing changed
            rerun = {
                "dr": lambda: run_dr(world, synced["dr"], expect_copied=0),
                "awscli (default 10)": lambda: run_awscli(aws, world, synced["awscli"]),
                "ceiling (list both)": lambda: run_list_ceiling(world, synced["ceiling"]),
            }
            again: dict[str, list[Result]] = {name: [] for name in rerun}
            names = list(rerun)
            for round_ in range(repeat):
                for name in names[round_ % len(names):] + names[:round_ % len(names)]:
                    again[name].append(rerun[name]())
            dr_ops = run_dr(world, synced["dr"], expect_copied=0).requests
            aws_count, aws_sends = count_awscli(aws, world, synced["awscli"])
            aws_ops = aws_count.requests

            print(f"re-run with nothing changed ({n:,} objects in sync; {repeat} runs each, seconds)")
            print(f"  {'contender':<20} {'best':>7} {'median':>7}")
            fig2 = {}
            for name, results in again.items():
                b, m = fig2[name] = best_median(results)
                print(f"  {name:<20} {b:7.2f} {m:7.2f}   runs: {', '.join(f'{r.seconds:.2f}' for r in results)}")
            print(ratio_line("dr / awscli", fig2["dr"], fig2["awscli (default 10)"]))
            print(ratio_line("dr / list ceiling", fig2["dr"], fig2["ceiling (list both)"]))
            print("HTTP requests of one re-run (goal for dr: <= 2 per 1,000 unchanged objects, "
                  "one list page per side, plus a constant)")
            print(f"  {'contender':<20} {'total':>6} {'ListObjectsV2':>14} {'per 1,000 obj':>14}  constant overhead")
            for name, ops in (("dr", dr_ops), ("awscli (default 10)", aws_ops)):
                lists = ops.get("ListObjectsV2", 0)
                const = {op: c for op, c in ops.items() if op != "ListObjectsV2"}
                const_text = ", ".join(f"{op} {c}" for op, c in sorted(const.items())) or "none"
                print(f"  {name:<20} {sum(ops.values()):>6} {lists:>14} {lists / per_k:>14.2f}  "
                      f"{sum(const.values())}: {const_text}")
            print(f"  (dr: a before-send hook on its boto3 session, every service and attempt; awscli: "
                  f"--debug logged {aws_sends} 'Sending http request' lines, one per attempt, "
                  f"{sum(aws_ops.values())} 'Making request for OperationModel' lines, one per call)")
            print()
            print(f"total benchmark time {time.perf_counter() - t_all:.0f} s, load average at the end "
                  f"{os.getloadavg()[0]:.2f}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()
