"""Benchmark: a headless locust load scenario against the local stack (issue 11).

Run: ``.venv/bin/python bench/load.py [--users 8] [--seconds 60] [--seed 11] [--json artifacts/load.json]``
or against a running ``make run``: ``bench/load.py --site http://127.0.0.1:8000 --aws http://127.0.0.1:4566``.

What it prints: throughput (app requests a second), p50/p95/p99 per route, errors by category (goal
0; a 429 is an error of its own category, never a pass), the time from upload to ``ready``, and per
route the app's overhead: its latency against the same AWS calls made directly to the embedded AWS
in the same run, as a ratio. Also the CPU each local process used, which names the local ceiling.

The scenario (:mod:`bench.locustfile`): every simulated member signs up and logs in, tours every
route once, then picks actions with realistic weights (feed and photo reads dominate; likes,
follows, profile reads, uploads rarer). Which user or photo an action targets is drawn from a Zipf
law (rank = order of arrival: the earliest members and photos are the celebrities). Every draw comes
from a per-member ``random.Random`` seeded from ``--seed``; the interleaving of members is the
scheduler's, so the mix is reproducible and the exact request order is not. No think time: members
send back to back, so the run measures the stack's ceiling. An upload is ``POST /photos``, the
presigned POST of a small real JPEG to the URL it returns, then polling ``GET /photos/{id}`` until
the pipeline has made it ready; the polls are their own route and the wait is ``upload -> ready``.

The direct baseline ("the same AWS calls made directly"): before the load, one probe world (a reader
following an author with ready photos, plus spare users) is built over HTTP, then each route's warm
request is sent once to the real app *in this process* (``chalice.test.Client``, authorizer
included, the way ``bench/roundtrips.py`` counts), pointed at the run's embedded AWS, and every AWS
call it makes is recorded at the botocore boundary with its parameters. During the load one extra
locust user, ``DirectAws``, replays each route's recorded calls in order with plain boto3 against the
embedded AWS, timed as one sample ``direct <route>``. The app's requests and the replays therefore
see the same embedded AWS under the same load.
Before the load, a quiet baseline does the same one request at a time: the app's repeatable
requests over HTTP against the replays, both from this process and from a fresh plain Python
process (``bench/replay_direct.py``; the load generator's own process, gevent and a large heap,
pays ~30% more client-side per call, so the in-load ratio is a lower bound). The ceiling comes
from the embedded AWS's CPU: the AWS calls the run sent it and the share of its one core it used.
Replayed writes drop their condition expressions
(the first run made them true or false already, and a cancelled transaction is not the work the app
did); they touch only the probe world's items. Sign-up is not replayed (it creates a user), so it
has no ratio.

By default the script starts its own stack (``devstack.stack.LocalStack`` on free ports, in a child
process, logs under ``artifacts/load-stack``) with per-user and per-IP quotas opened up (every
request comes from 127.0.0.1); with ``--site`` it targets a running stack whose quotas it cannot
change, so 429s may appear there. Only loopback targets are accepted; the run is bounded by
``--seconds`` and stops by itself. Nothing here asserts; it exits 0 unless the stack fails to start.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

#: Quotas of the stack this script starts (``QUOTA_<ACTION>``): room for a whole run from one IP.
OPEN_QUOTAS = {
    "QUOTA_SIGNUPS": "1000000/3600", "QUOTA_FAILED_LOGINS": "1000000/900", "QUOTA_UPLOAD_GRANTS": "1000000/3600",
    "QUOTA_PENDING_UPLOADS": "1000000", "QUOTA_FOLLOWS": "1000000/60", "QUOTA_LIKES": "1000000/60",
}
MAX_SECONDS = 600
MAX_USERS = 50


def loopback_url(url: str) -> str:
    """``url`` without a trailing slash if its host is a loopback address; ``ValueError`` otherwise."""
    host = urlsplit(url).hostname or ""
    if host != "localhost":
        try:
            if not ipaddress.ip_address(host).is_loopback:
                raise ValueError
        except ValueError:
            raise ValueError(f"only loopback targets are allowed, got {url!r}") from None
    return url.rstrip("/")


# --- the stack (child process: gevent never patches it) ------------------------------------------

def serve_stack(state_file: Path, log_dir: Path) -> int:
    """Run a LocalStack on free ports until SIGTERM (or the parent dies); write its addresses and env."""
    from devstack.stack import LocalStack, StackConfig

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    parent = os.getppid()
    stack = LocalStack(StackConfig.ephemeral(regions=("us-east-1",), log_dir=log_dir, extra_env=dict(OPEN_QUOTAS)))
    stack.start()
    try:
        tmp = state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({
            "site_url": stack.site_url, "aws_endpoint": stack.aws_endpoint,
            "env": {**stack.env, **stack.stage_config_env()},
        }))
        tmp.replace(state_file)
        deadline = time.monotonic() + MAX_SECONDS * 2 + 300
        while not stop and os.getppid() == parent and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stack.stop()
    return 0


def start_stack(log_dir: Path) -> tuple[subprocess.Popen, dict]:
    log_dir.mkdir(parents=True, exist_ok=True)
    state_file = Path(tempfile.mkdtemp(prefix="load-stack-")) / "state.json"
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve-stack", str(state_file), "--log-dir", str(log_dir)],
        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=open(log_dir / "stack.log", "ab"), stderr=subprocess.STDOUT,  # noqa: SIM115
    )
    deadline = time.monotonic() + 180
    while not state_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            stop_stack(process)
            raise RuntimeError(f"the local stack did not start (see {log_dir}/stack.log)")
        time.sleep(0.2)
    return process, json.loads(state_file.read_text())


def stop_stack(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def running_stack_env(aws_endpoint: str) -> dict[str, str]:
    """The API's environment of a running stack: its outputs (provisioning is idempotent) and stage config."""
    from devstack import provision as provisioning
    from devstack.stack import REGION, LocalStack, StackConfig
    from infra.cfn import STATEFUL_TEMPLATE, load_template, output_env_name

    outputs = provisioning.provision(load_template(STATEFUL_TEMPLATE), stage="local",
                                     clients=provisioning.make_clients(aws_endpoint, REGION))
    env = {output_env_name(name): value for name, value in outputs.items()}
    env["PHOTOSCALE_AWS_ENDPOINT"] = aws_endpoint
    env.update(LocalStack(StackConfig()).stage_config_env())
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", help="a running stack's site origin (loopback only); default: start one")
    parser.add_argument("--aws", default="http://127.0.0.1:4566", help="its embedded AWS (with --site)")
    parser.add_argument("--users", type=int, default=8, help=f"simulated members at once (at most {MAX_USERS})")
    parser.add_argument("--seconds", type=float, default=60, help=f"length of the load (at most {MAX_SECONDS})")
    parser.add_argument("--seed", type=int, default=11, help="seed of every Zipf and task draw")
    parser.add_argument("--zipf", type=float, default=1.1, help="Zipf exponent of user and photo popularity")
    parser.add_argument("--creators", type=int, default=4, help="seed members with one ready photo each")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--log-dir", type=Path, default=ROOT / "artifacts" / "load-stack")
    parser.add_argument("--serve-stack", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_stack:
        return serve_stack(args.serve_stack, args.log_dir)
    if not (1 <= args.users <= MAX_USERS and 0 < args.seconds <= MAX_SECONDS):
        parser.error(f"--users must be 1..{MAX_USERS} and --seconds 0..{MAX_SECONDS}")

    # locust patches the standard library with gevent: import it before requests/boto3 exist here.
    import locustfile

    process = None
    try:
        if args.site:
            site, aws = loopback_url(args.site), loopback_url(args.aws)
            env = running_stack_env(aws)
            stack_pids: list[int] = []
            log_dir = None
        else:
            print("starting a local stack on free ports ...", flush=True)
            process, state = start_stack(args.log_dir)
            site, aws, env = state["site_url"], state["aws_endpoint"], state["env"]
            stack_pids = [process.pid]
            log_dir = args.log_dir
        config = locustfile.RunConfig(site=site, aws_endpoint=aws, api_env=env, users=args.users,
                                      seconds=args.seconds, seed=args.seed, zipf=args.zipf,
                                      creators=args.creators, stack_pids=stack_pids, log_dir=log_dir)
        result = locustfile.run(config)
    finally:
        if process is not None:
            stop_stack(process)
    locustfile.report(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
