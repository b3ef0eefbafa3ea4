"""Benchmark: cold start of the API function (``import app``) vs a Chalice + boto3 baseline.

Run: ``.venv/bin/python bench/coldstart.py [--rounds 15]``

Sides, each run in a fresh subprocess of the same interpreter, alternating (the order flips every
round so drift hits both sides alike), after one untimed warm-up run each (writes ``.pyc`` files,
warms the page cache):
- ``ours``: ``import app`` (the Chalice app in the repo root) with the prod stage's environment:
  ``.chalice/config.json`` top-level ``environment_variables`` merged with ``stages.prod``'s, plus a
  plausible value for every CloudFormation output of ``infra/stateful.yaml`` (``UsersTable`` →
  ``USERS_TABLE``, ...), ``AWS_REGION=us-east-1``, fake credentials and the variables Lambda itself sets.
- ``baseline``: ``import chalice, boto3`` and ``boto3.client('dynamodb', region_name='us-east-1')``.

Both sides get the same, freshly built environment: nothing is inherited from the caller except
``PATH`` (no ``PYTHON*`` variables, no real ``~/.aws`` config or credentials, IMDS disabled).

Measures (median and p90 = nearest-rank 90th percentile over ``--rounds``):
- ``wall``: the whole process from spawn to exit, interpreter start-up included (what an init adds);
- ``import``: ``perf_counter`` around the side's work inside the child, printed back by the child;
- ``cpu``: user + sys CPU of the child (``RUSAGE_CHILDREN`` delta), ``rss``: the child's peak RSS.

Goal: ratio = ours / baseline of the medians <= 1.5, for wall and for import (PASS/MISS printed).

Diagnosis, from extra untimed runs of ``ours``:
- ``-X importtime`` of ``import app``: the 10 most expensive imports (cumulative µs), the cost per
  top-level package (sum of self µs), and for each heavy third-party package the first-party module
  (``app`` / ``chalicelib.*``) whose import pulled it in: that is the import to defer;
- a network guard: ``socket`` connect / DNS lookups are recorded (and refused) during ``import app``.
  Any attempt is a finding: the app must not talk to AWS at import time.

``--package``: the API function's cold start from the packaged artifact, with and without libvips.
Takes the x86_64 build of the prod package (``build/package/prod-x86_64``, built by ``infra.package``
in ``.venv-package`` if missing; the host cannot load arm64) and times, in fresh runtime-Python
children whose path is only the unzipped package plus the stdlib (as on Lambda):
- ``api``: ``import app`` from the package as shipped (imaging libraries in the workers' layer);
- ``api+vips``: the same with the layer's contents (libvips, pyvips, Pillow, pi-heif) inside the package;
plus the time to unzip each variant (Lambda fetches and unpacks the package on every cold start), and
prints both ratios and the zipped/unzipped sizes.

Nothing here asserts; it prints, and exits 0 either way.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / ".chalice" / "config.json"
TEMPLATE = ROOT / "infra" / "stateful.yaml"
RATIO_GOAL = 1.5
REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK = "photoscale-prod"
FIRST_PARTY = ("app", "chalicelib")

# The timed children. Each prints "<seconds inside> <peak rss KiB> [<seconds of imports only>]".
# ``resource`` is a tiny built-in extension and is imported after the timer by both sides alike.
CHILD_CODE = {
    "ours": (
        "import time\n"
        "t0 = time.perf_counter()\n"
        "import app\n"
        "t1 = time.perf_counter()\n"
        "import resource\n"
        "print(f'{t1 - t0:.9f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}')\n"
    ),
    "baseline": (
        "import time\n"
        "t0 = time.perf_counter()\n"
        "import chalice\n"
        "import boto3\n"
        "tm = time.perf_counter()\n"
        "boto3.client('dynamodb', region_name='us-east-1')\n"
        "t1 = time.perf_counter()\n"
        "import resource\n"
        "print(f'{t1 - t0:.9f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss} {tm - t0:.9f}')\n"
    ),
    # Informational, not part of the goal: ours plus what its first request pays for the client the
    # baseline builds at import (settings + boto3 session + dynamodb client through chalicelib.aws).
    "ours+client": (
        "import time\n"
        "t0 = time.perf_counter()\n"
        "import app\n"
        "tm = time.perf_counter()\n"
        "from chalicelib import aws\n"
        "aws.client('dynamodb')\n"
        "t1 = time.perf_counter()\n"
        "import resource\n"
        "print(f'{t1 - t0:.9f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss} {tm - t0:.9f}')\n"
    ),
    # Informational: prod's API function, whose first request routed to DAX also imports the DAX client
    # (chalicelib.aws imports amazondax lazily; constructing it would open a connection, so it is not timed).
    "ours+dax": (
        "import time\n"
        "t0 = time.perf_counter()\n"
        "import app\n"
        "tm = time.perf_counter()\n"
        "from chalicelib import aws\n"
        "aws.client('dynamodb')\n"
        "import amazondax\n"
        "t1 = time.perf_counter()\n"
        "import resource\n"
        "print(f'{t1 - t0:.9f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss} {tm - t0:.9f}')\n"
    ),
}
SIDES = ("ours", "baseline", "ours+client", "ours+dax")

IMPORTTIME_MARKER = "@@coldstart-begin@@"
IMPORTTIME_CODE = {
    side: "import sys\n"
    f"sys.stderr.write({IMPORTTIME_MARKER!r} + '\\n'); sys.stderr.flush()\n"
    + "".join(
        line + "\n"
        for line in code.split("t0 = time.perf_counter()\n", 1)[1].split("t1 = ", 1)[0].splitlines()
        if "perf_counter" not in line
    )
    for side, code in CHILD_CODE.items()
    if side in ("ours", "baseline")
}

# Records (and refuses) every attempt to reach the network while ``app`` is imported.
GUARD_CODE = r"""
import json, socket, sys, threading, traceback
attempts = []
def _refuse(kind):
    def refuse(*args, **kwargs):
        frames = traceback.extract_stack()[:-1]
        ours = [f for f in frames if "site-packages" not in f.filename and not f.filename.startswith("<")
                and not f.filename.startswith(sys.base_prefix)]
        where = [f"{f.filename}:{f.lineno} {f.name}" for f in ours[-4:] + frames[-1:]]
        attempts.append({"call": kind, "args": repr(args[1:] if kind.startswith("socket.") else args)[:200],
                         "stack": where})
        raise OSError(f"coldstart guard: network refused at import time ({kind})")
    return refuse
socket.socket.connect = _refuse("socket.connect")
socket.socket.connect_ex = _refuse("socket.connect_ex")
socket.create_connection = _refuse("create_connection")
socket.getaddrinfo = _refuse("getaddrinfo")
threads_before = {t.ident for t in threading.enumerate()}
error = None
try:
    import app
except BaseException as exc:
    error = f"{type(exc).__name__}: {exc}"
mods = sys.modules
heavy = ["boto3", "botocore", "botocore.session", "botocore.client", "pynamodb", "pynamodb.connection",
         "pydantic", "pydantic_core", "jwt", "cryptography", "aws_lambda_powertools", "aws_xray_sdk",
         "pyvips", "PIL", "requests", "urllib3"]
clients = []
import gc
for obj in gc.get_objects():
    cls = type(obj)
    if cls.__module__ == "botocore.client" and cls.__name__ not in ("BaseClient", "ClientCreator", "ClientMeta", "Config"):
        clients.append(cls.__name__)
print(json.dumps({
    "error": error,
    "attempts": attempts,
    "new_threads": [t.name for t in threading.enumerate() if t.ident not in threads_before],
    "modules": len(mods),
    "loaded": {name: name in mods for name in heavy},
    "botocore_clients": clients,
}))
"""


# --------------------------------------------------------------------------------------- environment


def _cfn_outputs() -> list[str]:
    """Output names of ``infra/stateful.yaml`` (parsed as text: no YAML dependency, no CFN tags)."""
    names: list[str] = []
    try:
        lines = TEMPLATE.read_text().splitlines()
    except OSError:
        return names
    inside = False
    for line in lines:
        if re.match(r"^Outputs:\s*$", line):
            inside = True
            continue
        if inside:
            if line and not line[0].isspace() and not line.startswith("#"):
                break
            found = re.match(r"^  ([A-Za-z][A-Za-z0-9]*):", line)
            if found:
                names.append(found.group(1))
    return names


def _env_name(output: str) -> str:
    """``UsersTable`` → ``USERS_TABLE``; ``UploadsDlqUrl`` → ``UPLOADS_DLQ_URL``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", output).upper()


def _plausible(env_name: str) -> str:
    """A realistic value for an output-provided variable (its shape matters, not its content)."""
    stem = env_name.lower().replace("_", "-")
    if env_name.endswith("_TABLE"):
        return f"{STACK}-{stem.removesuffix('-table')}-1A2B3C4D5E6F"
    if env_name.endswith("_BUCKET"):
        return f"{STACK}-{stem}-1a2b3c4d5e6f"
    if env_name.endswith("_QUEUE_NAME") or env_name.endswith("_DLQ_NAME"):
        return f"{STACK}-{stem.removesuffix('-name')}"
    if env_name.endswith("_URL") and ("QUEUE" in env_name or "DLQ" in env_name):
        return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{STACK}-{stem.removesuffix('-url')}"
    if env_name.endswith("_ARN") and ("QUEUE" in env_name):
        return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{STACK}-{stem.removesuffix('-arn')}"
    if env_name == "USER_POOL_ID":
        return f"{REGION}_AbCdEf123"
    if env_name == "USER_POOL_CLIENT_ID":
        return "1example23456789abcdefghij"
    if env_name == "USER_POOL_ARN":
        return f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/{REGION}_AbCdEf123"
    if env_name.endswith("SECRET_ARN"):
        return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{STACK}-{stem.removesuffix('-arn')}-AbCdEf"
    return f"{STACK}-{stem}"


# Always provided, whatever the template says (docs/conventions.md's list of output-provided variables).
_DOCUMENTED_OUTPUTS = (
    "USERS_TABLE SESSIONS_TABLE PHOTOS_TABLE COUNTERS_TABLE GRAPH_TABLE FEEDS_TABLE IDEMPOTENCY_TABLE "
    "JOBS_TABLE QUOTAS_TABLE MEDIA_BUCKET WEB_BUCKET UPLOADS_QUEUE_NAME UPLOADS_QUEUE_URL UPLOADS_DLQ_URL EDITS_QUEUE_NAME "
    "EDITS_QUEUE_URL EDITS_DLQ_URL FANOUT_QUEUE_NAME FANOUT_QUEUE_URL FANOUT_DLQ_URL USER_POOL_ID "
    "USER_POOL_CLIENT_ID CURSOR_SECRET_ARN"
).split()


def prod_environment(scratch: Path) -> dict[str, str]:
    """The prod API function's environment, built from scratch (nothing of the caller's leaks in)."""
    config = json.loads(CONFIG.read_text())
    env: dict[str, str] = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
                           "HOME": str(scratch), "TZ": ":UTC"}
    for name in [*_DOCUMENTED_OUTPUTS, *map(_env_name, _cfn_outputs())]:
        env[name] = _plausible(name)
    stage = config.get("stages", {}).get("prod", {})
    env.update(config.get("environment_variables", {}))
    env.update(stage.get("environment_variables", {}))  # stage and config win over guessed values
    memory = str(stage.get("lambda_memory_size", 128))
    env.update({
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "ASIAEXAMPLEFAKEKEY00",
        "AWS_SECRET_ACCESS_KEY": "fakeSecretAccessKeyForColdStartBench0000",
        "AWS_SESSION_TOKEN": "fakeSessionToken",
        # No real AWS config/credentials files, no instance-metadata lookups.
        "AWS_CONFIG_FILE": str(scratch / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(scratch / "aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        # What the Lambda runtime itself sets for the API function.
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
        "AWS_LAMBDA_FUNCTION_NAME": f"{config.get('app_name', 'photoscale')}-prod",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": memory,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "_HANDLER": "app.app",
    })
    return env


# -------------------------------------------------------------------------------------------- running


def run_once(side: str, env: dict[str, str]) -> dict:
    """One fresh child: wall time spawn→exit, inside time, CPU and peak RSS."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD_CODE[side]], cwd=ROOT, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{side} child failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    inside, rss, *split = proc.stdout.split()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "import": float(inside), "cpu": cpu, "rss_mb": int(rss) / 1024,
            "imports_only": float(split[0]) if split else float(inside)}


def p90(values: list[float]) -> float:
    """Nearest-rank 90th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def importtime(side: str, env: dict[str, str]) -> list[dict]:
    """``-X importtime`` rows of the side's work only (after start-up), with depth and first-party owner."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", IMPORTTIME_CODE[side]], cwd=ROOT, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"importtime child failed:\n{proc.stderr[-3000:]}")
    text = proc.stderr
    text = text[text.index(IMPORTTIME_MARKER) + len(IMPORTTIME_MARKER):] if IMPORTTIME_MARKER in text else text
    rows: list[dict] = []
    for line in text.splitlines():
        found = re.match(r"^import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)", line)
        if found:
            rows.append({"self": int(found.group(1)), "cum": int(found.group(2)),
                         "depth": len(found.group(3)) // 2, "name": found.group(4), "children": []})
    # Output is post-order (children before parent): rebuild the tree with a stack of pending nodes.
    pending: list[dict] = []
    for row in rows:
        kids = [node for node in pending if node["depth"] == row["depth"] + 1]
        pending = [node for node in pending if node["depth"] <= row["depth"]]
        row["children"] = kids
        for kid in kids:
            kid["parent"] = row["name"]
        pending.append(row)
    for root in pending:
        _mark_first_party(root, None)
    return rows


def _is_first_party(name: str) -> bool:
    return name.split(".")[0] in FIRST_PARTY


def _mark_first_party(node: dict, owner: str | None) -> None:
    """Record, for each node, the nearest first-party module at or above it (who to blame)."""
    node["owner"] = owner
    here = node["name"] if _is_first_party(node["name"]) else owner
    for child in node["children"]:
        _mark_first_party(child, here)


def network_guard(env: dict[str, str]) -> dict:
    proc = subprocess.run([sys.executable, "-c", GUARD_CODE], cwd=ROOT, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        return {"error": f"guard child failed (exit {proc.returncode}): {proc.stderr[-2000:]}", "attempts": []}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------------- main


PACKAGE_CHILD = (
    "import sys, time\n"
    "sys.path[:] = [sys.argv[1]] + [p for p in sys.path if p and 'site-packages' not in p]\n"
    "t0 = time.perf_counter()\n"
    "import app\n"
    "t1 = time.perf_counter()\n"
    "import resource\n"
    "print(f'{t1 - t0:.9f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}')\n"
)


def _zip_dir(source: Path, target: Path) -> None:
    import zipfile

    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(source).as_posix())


def package_comparison(rounds: int) -> None:
    """API cold start from the package as shipped vs with libvips inside it (see module doc)."""
    import shutil
    import zipfile

    sys.path.insert(0, str(ROOT))
    from infra.package import deploy_settings

    runtime = deploy_settings()["runtime"]
    out = ROOT / "build" / "package" / "prod-x86_64"
    subprocess.run([str(ROOT / ".venv-package" / "bin" / "python"), "-m", "infra.package", "--stage", "prod",
                    "--out", str(out), "--architecture", "x86_64"], cwd=ROOT, check=True)
    python = subprocess.run([str(ROOT / "infra" / "find_python.sh"), runtime.removeprefix("python")],
                            capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="coldstart-pkg-") as scratch_dir:
        scratch = Path(scratch_dir)
        env = prod_environment(scratch)
        env["AWS_EXECUTION_ENV"] = f"AWS_Lambda_{runtime}"
        variants = {"api": scratch / "api", "api+vips": scratch / "api+vips"}
        with zipfile.ZipFile(out / "deployment.zip") as zf:
            zf.extractall(variants["api"])
            zf.extractall(variants["api+vips"])
        with zipfile.ZipFile(out / "imaging-layer.zip") as zf:
            zf.extractall(scratch / "layer")
        shutil.copytree(scratch / "layer" / "python", variants["api+vips"], dirs_exist_ok=True)
        zips = {"api": out / "deployment.zip", "api+vips": scratch / "api+vips.zip"}
        _zip_dir(variants["api+vips"], zips["api+vips"])

        def once(name: str) -> tuple[float, float, float]:
            target = scratch / f"unzip-{name}"
            t0 = time.perf_counter()
            with zipfile.ZipFile(zips[name]) as zf:
                zf.extractall(target)
            unzip = time.perf_counter() - t0
            shutil.rmtree(target)
            t0 = time.perf_counter()
            proc = subprocess.run([python, "-I", "-S", "-c", PACKAGE_CHILD, str(variants[name])], env=env,
                                  cwd=scratch, stdin=subprocess.DEVNULL, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                raise RuntimeError(f"{name} child failed:\n{proc.stderr[-3000:]}")
            return unzip, wall, float(proc.stdout.split()[0])

        for name in variants:  # warm-up (.pyc written into the unzipped trees, page cache)
            once(name)
        samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in variants}
        for i in range(rounds):
            for name in (tuple(variants) if i % 2 == 0 else tuple(reversed(variants))):
                samples[name].append(once(name))
        print(f"API cold start from the x86_64 prod package, {python} (-I -S, path = package + stdlib), "
              f"{rounds} rounds, alternating")
        print(f"{'variant':<10}{'zip MB':>8}{'unzipped MB':>13}{'unzip med':>11}{'wall med':>10}{'import med':>12}")
        med: dict[str, tuple[float, float, float]] = {}
        for name in variants:
            with zipfile.ZipFile(zips[name]) as zf:
                unzipped = sum(i.file_size for i in zf.infolist()) / 2**20
            med[name] = tuple(statistics.median(s[k] for s in samples[name]) for k in range(3))  # type: ignore
            print(f"{name:<10}{zips[name].stat().st_size / 2**20:>8.1f}{unzipped:>13.1f}"
                  f"{med[name][0] * 1e3:>9.1f}ms{med[name][1] * 1e3:>8.1f}ms{med[name][2] * 1e3:>10.1f}ms")
        base, vips = med["api"], med["api+vips"]
        print(f"ratio api+vips / api: unzip {vips[0] / base[0]:.2f}, wall {vips[1] / base[1]:.2f}, "
              f"import {vips[2] / base[2]:.2f}; unzip + wall {(vips[0] + vips[1]) / (base[0] + base[1]):.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15, help="timed runs per side (default 15)")
    ap.add_argument("--top", type=int, default=10, help="how many imports to list (default 10)")
    ap.add_argument("--package", action="store_true",
                    help="compare the packaged API's cold start with and without libvips in the package")
    args = ap.parse_args()
    rounds = max(1, args.rounds)
    if args.package:
        package_comparison(rounds)
        return 0

    with tempfile.TemporaryDirectory(prefix="coldstart-") as scratch:
        env = prod_environment(Path(scratch))
        print(f"python: {sys.executable} ({sys.version.split()[0]}); cwd {ROOT}; {os.cpu_count()} CPUs")
        print(f"ours: `import app` with stage prod ({sum(1 for k in env if k not in ('PATH', 'LANG', 'HOME', 'TZ'))}"
              " env vars); baseline: `import chalice, boto3` + boto3.client('dynamodb')")
        print(f"{rounds} rounds per side, fresh subprocess per run, alternating (order flips each round), "
              "1 warm-up run each")

        for side in SIDES:  # warm-up: .pyc files, page cache
            run_once(side, env)
        samples: dict[str, list[dict]] = {side: [] for side in SIDES}
        for i in range(rounds):
            for side in SIDES if i % 2 == 0 else tuple(reversed(SIDES)):
                samples[side].append(run_once(side, env))

        stats = {
            side: {
                metric: (statistics.median(r[metric] for r in runs), p90([r[metric] for r in runs]))
                for metric in ("wall", "import", "cpu", "rss_mb")
            }
            for side, runs in samples.items()
        }
        print()
        header = (f"{'side':<12}{'wall med':>10}{'wall p90':>10}{'import med':>12}{'import p90':>12}"
                  f"{'cpu med':>10}{'rss MB':>9}")
        print(header)
        print("-" * len(header))
        for side in SIDES:
            s = stats[side]
            print(f"{side:<12}{s['wall'][0] * 1e3:>8.1f}ms{s['wall'][1] * 1e3:>8.1f}ms"
                  f"{s['import'][0] * 1e3:>10.1f}ms{s['import'][1] * 1e3:>10.1f}ms"
                  f"{s['cpu'][0] * 1e3:>8.1f}ms{s['rss_mb'][0]:>9.1f}")
        print()
        for metric, label in (("wall", "wall (spawn→exit)"), ("import", "in-process import")):
            ratio = stats["ours"][metric][0] / stats["baseline"][metric][0]
            verdict = "PASS" if ratio <= RATIO_GOAL else "MISS"
            print(f"ratio ours / baseline, {label:<18} median: {ratio:5.2f}  (goal <= {RATIO_GOAL}) {verdict}")
        cpu_ratio = stats["ours"]["cpu"][0] / stats["baseline"]["cpu"][0]
        print(f"(informational) ratio ours / baseline, child CPU median: {cpu_ratio:5.2f}; "
              f"ours+client / baseline, import median: "
              f"{stats['ours+client']['import'][0] / stats['baseline']['import'][0]:5.2f} "
              "(ours plus the dynamodb client its first request builds); ours+dax / baseline: "
              f"{stats['ours+dax']['import'][0] / stats['baseline']['import'][0]:5.2f}, the DAX client adds "
              f"{(stats['ours+dax']['import'][0] - stats['ours+client']['import'][0]) * 1e3:.0f} ms to prod's first request")
        noisy = [side for side in SIDES if stats[side]["wall"][1] > 1.3 * stats[side]["wall"][0]]
        if noisy:
            print(f"note: p90 > 1.3 x median for {', '.join(noisy)}: the machine was busy; "
                  "compare medians (and CPU), or rerun with more --rounds")
        extra = stats["ours"]["import"][0] - stats["baseline"]["import"][0]
        print(f"ours spends {extra * 1e3:+.1f} ms more than baseline inside the import "
              f"(median), i.e. per cold start of every function of the app")

        # ---- diagnosis
        rows = importtime("ours", env)
        baseline_modules = {row["name"] for row in importtime("baseline", env)}
        total = max((r["cum"] for r in rows if r["name"] == "app"), default=sum(r["self"] for r in rows))
        print()
        print(f"top {args.top} imports of `import app` by cumulative time (one -X importtime run, "
              f"app total {total / 1e3:.1f} ms; nesting shown by indent; 'via' = first-party importer):")
        print(f"{'cum ms':>8}{'self ms':>9}  module")
        seen: set[str] = set()
        ranked = []
        for row in sorted(rows, key=lambda r: -r["cum"]):
            if row["name"] not in seen:  # ``import a.b.c`` can report a.b.c twice (wrapping its parent)
                seen.add(row["name"])
                ranked.append(row)
        for row in ranked[: args.top]:
            via = f"   (via {row['owner']})" if row["owner"] and not _is_first_party(row["name"]) else ""
            print(f"{row['cum'] / 1e3:>8.1f}{row['self'] / 1e3:>9.1f}  {'  ' * row['depth']}{row['name']}{via}")

        by_package: dict[str, int] = {}
        for row in rows:
            top_name = row["name"].split(".")[0]
            by_package[top_name] = by_package.get(top_name, 0) + row["self"]
        print()
        print("cost per top-level package (sum of self time of its modules loaded by `import app`):")
        for name, us in sorted(by_package.items(), key=lambda kv: -kv[1])[: args.top]:
            print(f"{us / 1e3:>8.1f} ms  {name}  ({100 * us / max(total, 1):.0f}%)")

        only_ours: dict[str, int] = {}
        for row in rows:
            if row["name"] not in baseline_modules:
                top_name = row["name"].split(".")[0]
                only_ours[top_name] = only_ours.get(top_name, 0) + row["self"]
        print()
        print("what ours loads that the baseline does not (sum of self time per top-level package):")
        for name, us in sorted(only_ours.items(), key=lambda kv: -kv[1])[: args.top]:
            print(f"{us / 1e3:>8.1f} ms  {name}")
        print(f"{sum(only_ours.values()) / 1e3:>8.1f} ms  total; the baseline's dynamodb client costs "
              f"{(stats['baseline']['import'][0] - statistics.median(r['imports_only'] for r in samples['baseline'])) * 1e3:.1f} ms"
              " (median, timed runs), which ours does not spend at import")

        print()
        print("which first-party module pulls in each third-party package first (cumulative, incl. "
              "shared deps such as botocore; defer the import to the function that needs it):")
        entry_points: dict[tuple[str, str], int] = {}
        for row in rows:
            if _is_first_party(row["name"]) or not _is_first_party(row.get("parent", "")):
                continue
            key = (row["parent"], row["name"].split(".")[0])
            entry_points[key] = entry_points.get(key, 0) + row["cum"]
        for (owner, package), cum in sorted(entry_points.items(), key=lambda kv: -kv[1])[: args.top]:
            if cum >= 1000:
                print(f"{cum / 1e3:>8.1f} ms  {package:<24} imported by {owner}")

        guard = network_guard(env)
        print()
        if guard.get("error"):
            print(f"FINDING: `import app` failed under the network guard / prod env: {guard['error']}")
        if guard.get("attempts"):
            print(f"FINDING: {len(guard['attempts'])} network attempt(s) during `import app` "
                  "(the app must not call AWS at import):")
            for attempt in guard["attempts"]:
                print(f"  {attempt['call']}{attempt['args']}  at {' <- '.join(reversed(attempt['stack']))}")
        else:
            print("network at import: none (socket connect / DNS lookups were guarded during `import app`)")
        if "loaded" in guard:
            loaded = [name for name, yes in guard["loaded"].items() if yes]
            print(f"modules after `import app`: {guard['modules']}; heavy ones loaded: {', '.join(loaded) or 'none'}")
            print(f"botocore clients built at import: {len(guard['botocore_clients'])}; "
                  f"threads started at import: {guard['new_threads'] or 'none'}")
    return 0


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # a benchmark reports, it does not fail the build
        print(f"coldstart benchmark could not complete: {type(exc).__name__}: {exc}", file=sys.stderr)
    sys.exit(0)
