"""Capacity and cost planner: monthly AWS cost per service, and the first limit to break, vs DAU.

Run: ``.venv/bin/python bench/planner.py --dau 1000000 [--regions 1] [--dax 0] [--waf auto]
[--roundtrips artifacts/roundtrips.json] [--renditions artifacts/renditions.json] [--measure]``

Inputs, each from one place:
- Per-request AWS usage is MEASURED, never typed in: ``bench/roundtrips.py``'s JSON (round trips,
  DynamoDB read/write request units per table, S3/SQS calls, per route and per upload step). With
  ``--measure`` (or when the file is missing) the planner runs that benchmark in-process and saves
  its JSON. The image worker's time per upload and the rendition sizes come from one
  ``bench/renditions.py`` child run (``--child ours --work`` on its 12 MP test photo), saved as JSON.
- The behaviour mix (requests per DAU per day, uploads, logins, followers per uploader, media
  downloads, peak-to-average, round-trip latency) is ``bench/planner_workload.json``.
- Prices (with their date and region) are ``bench/planner_prices.json``.
- Lambda memory sizes and architecture are read from ``.chalice/config.json`` (stage ``prod``), the
  followers/likes shard policy from ``chalicelib.follows.shards_for``, the GSIs and tables from
  ``infra/stateful.yaml`` (through the benchmark), whether a WAF web ACL exists (and its rules) from
  ``infra/edge.yaml``. A change in any of them moves the figures.

Defaults are what the code does now: one region (``--regions 1``: no replicated writes, no
inter-region transfer), no DAX (``--dax 0``: the app has no DAX client). ``--regions N`` / ``--dax N``
are what-ifs and are labelled so: with DAX, the measured *cacheable* reads (eventually consistent
GetItem/BatchGetItem/Query) are served at ``dax_hit_rate``; consistent reads (the authorizer's
revocation check) and transactions always reach DynamoDB.

Model (per day, then x 30.4 per month; peaks = average x ``peak_to_average``):
- API requests = sum of route rates; each is one API Gateway request, one ``api_handler`` invocation
  and, on routes with the authorizer (read from the app's route table by the benchmark), one
  ``bearer_auth`` invocation (authorizer TTL 0). Lambda duration = CPU ms + measured
  round trips x ``aws_round_trip_ms`` (+ cold share x (init + the cold request's extra round trips
  and JWKS download)). The authorizer's share of a request's round trips is its sessions-table calls.
- An upload = ``POST /photos`` + ``process_upload`` (renditions wall time x ``renditions_time_scale``
  + its round trips) + ``fan_out``, measured with one follower and extended linearly: each further
  follower is one more feed item put (1 WRU x (1 + FeedsTable GSIs)) and 1/25 of a BatchWriteItem.
- S3: originals and renditions kept ``storage_months``; PUTs = the browser's upload + the
  measured PutObjects; GETs = the measured worker reads + CDN misses. CloudFront: rendition
  downloads x measured sizes + API responses. SQS: per message one send, receive and delete, plus
  the pollers' empty receives. Cognito: MAU = DAU x ``mau_per_dau``.

Limits (default quotas, adjustable by request unless marked): Lambda concurrency per region
(1,000), API Gateway account throttle (10,000 rps), the prod stage's own throttle (rate and burst
read from ``infra/deploy.json``, the values post_deploy applies), Cognito UserAuthentication (120 rps) and
UserCreation (50 rps), CloudFront requests per distribution (250,000 rps), DynamoDB per partition
key (3,000 RCU/s, 1,000 WCU/s: hard) for the hottest keys (the top account's likes and followers
counter shards, with shard counts from ``shards_for``), DynamoDB on-demand per table (40,000 RRU/s
and WRU/s). Each is a function of DAU; the first DAU at which each reaches 100 % is found by a
geometric scan refined by bisection (the shard policy makes some non-monotonic).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BENCH = ROOT / "bench"
PRICES = BENCH / "planner_prices.json"
WORKLOAD = BENCH / "planner_workload.json"
CHALICE_CONFIG = ROOT / ".chalice" / "config.json"
EDGE_TEMPLATE = ROOT / "infra" / "edge.yaml"
ARTIFACTS = ROOT / "artifacts"
DAYS_PER_MONTH = 30.4
SECONDS_PER_DAY = 86_400.0
#: Chalice's functions (``process_edits`` and the 15-minute ``reconcile_counters`` are priced at their memory
#: but are not in the workload mix yet: a few invocations a day).
FUNCTIONS = ("api_handler", "bearer_auth", "process_uploads", "process_edits", "fan_out_feed", "reconcile_counters")
SESSIONS_TABLE_SUFFIX = "-sessions"
FEEDS_TABLE_SUFFIX = "-feeds"

#: Default quotas per region (the number, what it limits, whether AWS raises it on request).
QUOTAS = {
    "lambda_concurrency": (1_000, "Lambda concurrent executions per region (adjustable)"),
    "api_gateway_rps": (10_000, "API Gateway account-level throttle, requests/s per region (adjustable)"),
    "cognito_auth_rps": (120, "Cognito UserAuthentication requests/s, InitiateAuth etc. (adjustable)"),
    "cognito_signup_rps": (50, "Cognito UserCreation requests/s, SignUp (adjustable)"),
    "cloudfront_rps": (250_000, "CloudFront requests/s per distribution (adjustable)"),
    "partition_rcu": (3_000, "DynamoDB read units/s per partition key (hard)"),
    "partition_wcu": (1_000, "DynamoDB write units/s per partition key (hard)"),
    "table_rru": (40_000, "DynamoDB on-demand read units/s per table (adjustable)"),
    "table_wru": (40_000, "DynamoDB on-demand write units/s per table (adjustable)"),
}


# --- inputs -----------------------------------------------------------------------------------------

def load_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def lambda_memory(config: dict, stage: str = "prod") -> tuple[dict[str, int], str]:
    """Memory (MB) per function and the architecture of ``stage``, as Chalice resolves them."""
    stage_cfg = config["stages"][stage]
    default = stage_cfg.get("lambda_memory_size", config.get("lambda_memory_size", 128))
    per_function = stage_cfg.get("lambda_functions", {})
    memory = {f: int(per_function.get(f, {}).get("lambda_memory_size", default)) for f in (*FUNCTIONS, *per_function)}
    architecture = stage_cfg.get("lambda_architecture", config.get("lambda_architecture", "x86_64"))
    return memory, architecture


def waf_rules(edge_template: Path = EDGE_TEMPLATE) -> int | None:
    """Rules of the WAF web ACL in ``infra/edge.yaml``, or None when the template has no web ACL."""
    from infra.cfn import load_template

    acls = [r for r in load_template(edge_template)["Resources"].values() if r["Type"] == "AWS::WAFv2::WebACL"]
    if not acls:
        return None
    return sum(len(acl["Properties"].get("Rules", [])) for acl in acls)


def measure_roundtrips(path: Path) -> dict:
    """Run ``bench/roundtrips.py`` in a child process (it owns the process's moto) and read its JSON."""
    subprocess.run([sys.executable, str(BENCH / "roundtrips.py"), "--json", str(path)], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    return load_json(path)


def measure_renditions(path: Path) -> dict:
    """One ``bench/renditions.py`` child run of our pipeline on its 12 MP test photo, saved as JSON."""
    script = str(BENCH / "renditions.py")
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "input.jpg"
        subprocess.run([sys.executable, script, "--make-input", str(photo)], check=True, cwd=ROOT)
        out = subprocess.run([sys.executable, script, "--child", "ours", "--input", str(photo), "--work"],
                             check=True, cwd=ROOT, capture_output=True, text=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["input_bytes"] = photo.stat().st_size
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return result


# --- pure model ---------------------------------------------------------------------------------------

def tiered(quantity: float, tiers: Sequence[Sequence[float | None]]) -> float:
    """Cost of ``quantity`` under ``[[up_to, unit_price], ...]`` tiers (``up_to`` None = unbounded)."""
    cost, floor = 0.0, 0.0
    for up_to, price in tiers:
        ceiling = math.inf if up_to is None else float(up_to)
        if quantity <= floor:
            break
        cost += (min(quantity, ceiling) - floor) * float(price)
        floor = ceiling
    return cost


def rendition_bytes(renditions: dict) -> dict[str, int]:
    """Bytes served per rendition name: the smallest format the pipeline stored for it."""
    sizes: dict[str, int] = {}
    for filename, nbytes in renditions["outputs"].items():
        name = filename.split(".")[0]
        sizes[name] = min(nbytes, sizes.get(name, nbytes))
    return sizes


@dataclass(frozen=True)
class Inputs:
    """Everything the model needs, loaded once (pure data: tests build it from crafted dicts)."""

    roundtrips: dict
    renditions: dict
    workload: dict
    prices: dict
    memory_mb: dict[str, int]
    architecture: str
    shards_for: Callable[[int], int]
    regions: int = 1
    dax_nodes: int = 0
    waf_rules: int | None = None
    #: The prod stage's API Gateway throttling ``{"rate_limit", "burst_limit"}`` from ``infra/deploy.json``
    #: (what infra/post_deploy.py applies); None: no stage throttle.
    stage_throttling: dict[str, int] | None = None


def _routes(inputs: Inputs) -> dict[str, dict]:
    return {r["route"]: r for r in inputs.roundtrips["routes"]}


def _table_calls(measure: dict, suffix: str) -> float:
    return sum(row["calls"] for name, row in measure.get("tables", {}).items() if name.endswith(suffix))


def _ops(measure: dict, prefix: str) -> float:
    return sum(n for op, n in measure.get("operations", {}).items() if op.startswith(prefix))


@dataclass
class Usage:
    """Daily usage of one DAU level (all quantities per day unless named otherwise)."""

    api_requests: float = 0.0
    protected_requests: float = 0.0
    lambda_invocations: dict[str, float] | None = None
    lambda_gb_seconds: dict[str, float] | None = None
    lambda_peak_concurrency: float = 0.0
    rru: float = 0.0
    wru: float = 0.0
    table_rru: dict[str, float] | None = None
    table_wru: dict[str, float] | None = None
    uploads: float = 0.0
    s3_puts: float = 0.0
    s3_gets: float = 0.0
    s3_stored_gb: float = 0.0
    cdn_requests: float = 0.0
    cdn_egress_gb: float = 0.0
    sqs_requests: float = 0.0
    mau: float = 0.0
    logins: float = 0.0
    signups: float = 0.0
    replicated_wru: float = 0.0
    inter_region_gb: float = 0.0


def daily_usage(inputs: Inputs, dau: float) -> Usage:
    """What ``dau`` daily active users make the system do in one day, from the measured per-request usage."""
    w, routes = inputs.workload, _routes(inputs)
    rt_ms = float(w["aws_round_trip_ms"])
    cold = float(w["cold_start_fraction"])
    mem_gb = {f: inputs.memory_mb[f] / 1024 for f in FUNCTIONS}
    usage = Usage(lambda_invocations=dict.fromkeys(FUNCTIONS, 0.0), lambda_gb_seconds=dict.fromkeys(FUNCTIONS, 0.0),
                  table_rru={}, table_wru={})
    hit = float(w["dax_hit_rate"]) if inputs.dax_nodes > 0 else 0.0
    busy_seconds = dict.fromkeys(FUNCTIONS, 0.0)  # invocation-seconds per day, for concurrency

    def invoke(function: str, count: float, round_trips: float, extra_cold_ms: float = 0.0) -> None:
        ms = float(w["handler_cpu_ms"][function]) + round_trips * rt_ms
        ms += cold * (float(w["init_ms"][function]) + extra_cold_ms)
        usage.lambda_invocations[function] += count
        usage.lambda_gb_seconds[function] += count * ms / 1000 * mem_gb[function]
        busy_seconds[function] += count * ms / 1000

    def dynamodb(count: float, measure: dict) -> None:
        cached = float(measure.get("cacheable_rru", 0.0)) * hit
        usage.rru += count * (float(measure["rru"]) - cached)
        usage.wru += count * float(measure["wru"])
        for table, row in measure.get("tables", {}).items():
            share = (float(measure["rru"]) - cached) / float(measure["rru"]) if measure["rru"] else 1.0
            usage.table_rru[table] = usage.table_rru.get(table, 0.0) + count * row["rru"] * share
            usage.table_wru[table] = usage.table_wru.get(table, 0.0) + count * row["wru"]

    def api_request(count: float, route: dict) -> None:
        warm, cold_m = route["warm"], route["cold"]
        protected = bool(route.get("authorizer", warm.get("authorizer", False)))
        auth_trips = _table_calls(warm, SESSIONS_TABLE_SUFFIX) if protected else 0.0
        extra_cold = (max(cold_m["total"] - warm["total"], 0) * rt_ms
                      + cold_m.get("http", 0) * float(w["jwks_download_ms"]))
        usage.api_requests += count
        invoke("api_handler", count, warm["total"] - auth_trips, extra_cold)
        if protected:
            usage.protected_requests += count
            invoke("bearer_auth", count, auth_trips)
        dynamodb(count, warm)

    for name, per_dau in w["requests_per_dau_per_day"].items():
        api_request(dau * float(per_dau), routes[name])

    # uploads: POST /photos (an API request), the image worker, the fan-out worker
    upload = inputs.roundtrips["upload"]
    uploads = dau * float(w["uploads_per_dau_per_day"])
    usage.uploads = uploads
    api_request(uploads, {"warm": upload["POST /photos"], "cold": upload["POST /photos"]})
    process = upload["process_upload"]
    worker_ms = float(inputs.renditions["wall_s"]) * float(w["renditions_time_scale"]) * 1000
    invoke("process_uploads", uploads, process["total"], 0.0)
    usage.lambda_gb_seconds["process_uploads"] += uploads * worker_ms / 1000 * mem_gb["process_uploads"]
    busy_seconds["process_uploads"] += uploads * worker_ms / 1000
    dynamodb(uploads, process)
    fan = upload["fan_out"]
    measured_followers = float(inputs.roundtrips.get("upload_followers", 1))
    extra_followers = max(float(w["avg_followers_per_uploader"]) - measured_followers, 0.0)
    feeds_gsis = _feeds_gsis(fan)
    extra_trips = extra_followers / float(w["feed_items_per_batch_write"])
    invoke("fan_out_feed", uploads, fan["total"] + extra_trips)
    dynamodb(uploads, fan)
    feed_wru = uploads * extra_followers * (1 + feeds_gsis)
    usage.wru += feed_wru
    feeds_table = next((t for t in fan.get("tables", {}) if t.endswith(FEEDS_TABLE_SUFFIX)), "feeds")
    usage.table_wru[feeds_table] = usage.table_wru.get(feeds_table, 0.0) + feed_wru

    # S3, CloudFront, SQS
    sizes = rendition_bytes(inputs.renditions)
    stored_per_photo = float(inputs.renditions["input_bytes"]) + sum(sizes.values())
    usage.s3_stored_gb = uploads * DAYS_PER_MONTH * float(w["storage_months"]) * stored_per_photo / 1e9
    downloads = {n: dau * float(k) for n, k in w["rendition_downloads_per_dau_per_day"].items()}
    misses = sum(downloads.values()) * (1 - float(w["cdn_hit_ratio"]))
    usage.s3_puts = uploads * (1 + _ops(process, "s3.PutObject"))
    usage.s3_gets = uploads * (_ops(process, "s3.GetObject") + _ops(process, "s3.HeadObject")) + misses
    usage.cdn_requests = sum(downloads.values()) + usage.api_requests
    usage.cdn_egress_gb = (sum(downloads[n] * sizes[n] for n in downloads)
                           + usage.api_requests * float(w["api_response_bytes"])) / 1e9
    messages = uploads * (1 + _ops(process, "sqs.SendMessage") + _ops(fan, "sqs.SendMessage"))
    usage.sqs_requests = messages * 3 + float(w["sqs_empty_receives_per_day"])

    # identity, regions
    usage.mau = dau * float(w["mau_per_dau"])
    usage.logins = dau * float(w["logins_per_dau_per_day"])
    usage.signups = dau * float(w["signups_per_dau_per_day"])
    others = inputs.regions - 1
    usage.replicated_wru = usage.wru * others
    usage.inter_region_gb = others * (usage.wru * 1024 + uploads * stored_per_photo) / 1e9

    peak = float(w["peak_to_average"]) / SECONDS_PER_DAY
    usage.lambda_peak_concurrency = sum(busy_seconds.values()) * peak
    return usage


def _feeds_gsis(fan: dict) -> int:
    return int(fan.get("feeds_gsis", 0))


# --- cost ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CostLine:
    service: str
    item: str
    quantity: float
    unit: str
    usd: float


def monthly_cost(inputs: Inputs, usage: Usage) -> list[CostLine]:
    """Monthly cost lines per service (prices from the price file)."""
    p, m = inputs.prices, DAYS_PER_MONTH
    lines: list[CostLine] = []
    invocations = sum(usage.lambda_invocations.values()) * m
    gb_s = sum(usage.lambda_gb_seconds.values()) * m
    lines.append(CostLine("Lambda", "requests", invocations, "requests",
                          invocations / 1e6 * p["lambda"]["requests_per_million"]))
    lines.append(CostLine("Lambda", f"GB-seconds ({inputs.architecture})", gb_s, "GB-s",
                          tiered(gb_s, p["lambda"]["gb_second"][inputs.architecture])))
    api = usage.api_requests * m
    lines.append(CostLine("API Gateway", "REST requests", api, "requests",
                          tiered(api / 1e6, _per_million_tiers(p["api_gateway_rest"]["requests_per_million"]))))
    ddb = p["dynamodb_on_demand"]
    lines.append(CostLine("DynamoDB", "read request units", usage.rru * m, "RRU",
                          usage.rru * m / 1e6 * ddb["read_request_units_per_million"]))
    lines.append(CostLine("DynamoDB", "write request units", usage.wru * m, "WRU",
                          usage.wru * m / 1e6 * ddb["write_request_units_per_million"]))
    lines.append(CostLine("DynamoDB", f"replicated write units ({inputs.regions - 1} replica regions)",
                          usage.replicated_wru * m, "rWRU",
                          usage.replicated_wru * m / 1e6 * ddb["replicated_write_request_units_per_million"]))
    nodes = inputs.dax_nodes * inputs.regions
    lines.append(CostLine("DAX", f"{p['dax']['node_type']} nodes", nodes, "nodes",
                          nodes * p["dax"]["node_hour"] * 24 * m))
    s3 = p["s3_standard"]
    lines.append(CostLine("S3", f"storage after {inputs.workload['storage_months']} months", usage.s3_stored_gb,
                          "GB-month", tiered(usage.s3_stored_gb, s3["storage_gb_month"]) * inputs.regions))
    lines.append(CostLine("S3", "PUT requests", usage.s3_puts * m, "requests",
                          usage.s3_puts * m / 1000 * s3["put_per_thousand"] * inputs.regions))
    lines.append(CostLine("S3", "GET requests", usage.s3_gets * m, "requests",
                          usage.s3_gets * m / 1000 * s3["get_per_thousand"]))
    cf = p["cloudfront"]
    lines.append(CostLine("CloudFront", "egress", usage.cdn_egress_gb * m, "GB",
                          tiered(usage.cdn_egress_gb * m, cf["egress_gb"])))
    lines.append(CostLine("CloudFront", "HTTPS requests", usage.cdn_requests * m, "requests",
                          usage.cdn_requests * m / 1e4 * cf["https_requests_per_10000"]))
    lines.append(CostLine("SQS", "requests", usage.sqs_requests * m, "requests",
                          usage.sqs_requests * m / 1e6 * p["sqs_standard"]["requests_per_million"] * inputs.regions))
    lines.append(CostLine("Cognito", "monthly active users", usage.mau, "MAU",
                          tiered(usage.mau, p["cognito_essentials"]["mau"])))
    if inputs.waf_rules is None:
        lines.append(CostLine("WAF", "no web ACL in infra/edge.yaml", 0, "-", 0.0))
    else:
        waf = p["waf"]
        fixed = waf["web_acl_month"] + waf["rule_month"] * inputs.waf_rules
        lines.append(CostLine("WAF", f"web ACL + {inputs.waf_rules} rules + requests", usage.cdn_requests * m,
                              "requests", fixed + usage.cdn_requests * m / 1e6 * waf["requests_per_million"]))
    lines.append(CostLine("Data transfer", "between regions", usage.inter_region_gb * m, "GB",
                          usage.inter_region_gb * m * p["data_transfer"]["inter_region_gb"]))
    return lines


def _per_million_tiers(tiers: Sequence[Sequence[float | None]]) -> list[list[float | None]]:
    """API Gateway tiers are in requests; the prices are per million: express both in millions."""
    return [[None if up_to is None else float(up_to) / 1e6, price] for up_to, price in tiers]


# --- limits -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Limit:
    name: str
    quota: float
    usage_at: Callable[[float], float]  # DAU -> peak usage in the quota's unit
    note: str = ""

    def utilisation(self, dau: float) -> float:
        return self.usage_at(dau) / self.quota


def first_breaking_dau(limit: Limit, low: float = 1.0, high: float = 1e11, step: float = 1.05) -> float | None:
    """The smallest DAU in [low, high] at which ``limit`` reaches 100 % (None if it never does).

    A geometric scan finds the first grid point over the quota (usage need not be monotonic: shard
    counts step up with audience), then bisection narrows it to 0.1 %.
    """
    previous, dau = low, low
    if limit.utilisation(dau) >= 1:
        return dau
    while dau < high:
        previous, dau = dau, min(dau * step, high)
        if limit.utilisation(dau) >= 1:
            lo, hi = previous, dau
            while hi / lo > 1.001:
                mid = math.sqrt(lo * hi)
                lo, hi = (lo, mid) if limit.utilisation(mid) >= 1 else (mid, hi)
            return hi
    return None


def stage_throttle_limits(inputs: Inputs, api_peak_rps: Callable[[float], float]) -> list[Limit]:
    """The stage throttle as a limit: the steady rate (the token bucket's refill) caps the peak
    requests/s per region; the burst (the bucket's size) only absorbs spikes shorter than a second
    above it, which peak-hour rates do not resolve, so it is reported, not modelled."""
    throttle = inputs.stage_throttling
    if not throttle:
        return []
    return [Limit("API Gateway stage throttle (prod rate)", float(throttle["rate_limit"]), api_peak_rps,
                  f"stage throttling in infra/deploy.json: rate {throttle['rate_limit']} requests/s, burst "
                  f"{throttle['burst_limit']}; raise it there (post_deploy applies it) up to the account quota")]


def first_to_break(limits: Sequence[Limit], **scan: float) -> tuple[Limit, float] | None:
    """The limit that breaks at the lowest DAU, with that DAU."""
    found = [(limit, dau) for limit in limits if (dau := first_breaking_dau(limit, **scan)) is not None]
    return min(found, key=lambda pair: pair[1]) if found else None


def limits(inputs: Inputs) -> list[Limit]:
    """Every modelled limit as a function of DAU (peak rates)."""
    w = inputs.workload
    peak = float(w["peak_to_average"]) / SECONDS_PER_DAY
    top = w["top_account"]
    per_dau = w["requests_per_dau_per_day"]
    regions = max(inputs.regions, 1)  # per-region quotas: reads and requests split; every replica takes all writes
    miss = 1 - float(w["dax_hit_rate"]) if inputs.dax_nodes > 0 else 1.0

    def rate(dau: float, name: str) -> float:
        return dau * float(per_dau[name]) * peak

    def shards(dau: float) -> int:
        return max(1, int(inputs.shards_for(int(dau * float(top["followers_per_dau"])))))

    def like_shard_wcu(dau: float) -> float:
        # each like: one transactional ADD (2 WCU) on one random shard of the photo's likes counter
        return rate(dau, "PUT /photos/{id}/like") * float(top["share_of_likes"]) * 2 / shards(dau)

    def like_shard_rcu(dau: float) -> float:
        # every view and every like reads every shard of the counter (0.5 RCU each): sharding does not help
        views = rate(dau, "GET /photos/{id} (signed in)") + rate(dau, "GET /photos/{id} (anonymous)")
        return (views * float(top["share_of_photo_views"])
                + rate(dau, "PUT /photos/{id}/like") * float(top["share_of_likes"])) * 0.5 * miss / regions

    def followers_shard_rcu(dau: float) -> float:
        return rate(dau, "GET /users/{u}") * float(top["share_of_profile_views"]) * 0.5 * miss / regions

    def followers_shard_wcu(dau: float) -> float:
        return rate(dau, "PUT /users/{u}/follow") * float(top["share_of_follows"]) * 2 / shards(dau)

    def table_peak(kind: str) -> Callable[[float], float]:
        def at(dau: float) -> float:
            usage = daily_usage(inputs, dau)
            per_table = usage.table_rru if kind == "rru" else usage.table_wru
            return max(per_table.values(), default=0.0) * peak / (regions if kind == "rru" else 1)
        return at

    def q(key: str) -> float:
        return float(QUOTAS[key][0])

    return [
        Limit("Lambda concurrency", q("lambda_concurrency"),
              lambda d: daily_usage(inputs, d).lambda_peak_concurrency / regions, QUOTAS["lambda_concurrency"][1]),
        Limit("API Gateway throttle", q("api_gateway_rps"),
              lambda d: daily_usage(inputs, d).api_requests * peak / regions,
              QUOTAS["api_gateway_rps"][1]),
        *stage_throttle_limits(inputs, lambda d: daily_usage(inputs, d).api_requests * peak / regions),
        Limit("Cognito log-ins", q("cognito_auth_rps"), lambda d: d * float(w["logins_per_dau_per_day"]) * peak,
              QUOTAS["cognito_auth_rps"][1]),
        Limit("Cognito sign-ups", q("cognito_signup_rps"), lambda d: d * float(w["signups_per_dau_per_day"]) * peak,
              QUOTAS["cognito_signup_rps"][1]),
        Limit("CloudFront requests", q("cloudfront_rps"), lambda d: daily_usage(inputs, d).cdn_requests * peak,
              QUOTAS["cloudfront_rps"][1]),
        Limit("Hot key: top photo's likes shard (writes)", q("partition_wcu"), like_shard_wcu,
              QUOTAS["partition_wcu"][1]),
        Limit("Hot key: top photo's likes shards (reads)", q("partition_rcu"), like_shard_rcu,
              QUOTAS["partition_rcu"][1]),
        Limit("Hot key: top account's followers shards (reads)", q("partition_rcu"), followers_shard_rcu,
              QUOTAS["partition_rcu"][1]),
        Limit("Hot key: top account's followers shard (writes)", q("partition_wcu"), followers_shard_wcu,
              QUOTAS["partition_wcu"][1]),
        Limit("DynamoDB busiest table (reads)", q("table_rru"), table_peak("rru"), QUOTAS["table_rru"][1]),
        Limit("DynamoDB busiest table (writes)", q("table_wru"), table_peak("wru"), QUOTAS["table_wru"][1]),
    ]


# --- assembly and report ------------------------------------------------------------------------------

def load_inputs(roundtrips_path: Path, renditions_path: Path, measure: bool, regions: int, dax: int,
                waf: str, workload_path: Path = WORKLOAD, prices_path: Path = PRICES) -> Inputs:
    from chalicelib.follows import shards_for
    from infra.cfn import STATEFUL_TEMPLATE, load_template

    roundtrips = measure_roundtrips(roundtrips_path) if measure or not roundtrips_path.exists() \
        else load_json(roundtrips_path)
    renditions = measure_renditions(renditions_path) if measure or not renditions_path.exists() \
        else load_json(renditions_path)
    feeds = load_template(STATEFUL_TEMPLATE)["Resources"]["FeedsTable"]["Properties"]
    roundtrips["upload"]["fan_out"]["feeds_gsis"] = len(feeds.get("GlobalSecondaryIndexes", []))
    memory, architecture = lambda_memory(load_json(CHALICE_CONFIG))
    rules = waf_rules() if waf == "auto" else (None if waf == "none" else int(waf))
    return Inputs(roundtrips=roundtrips, renditions=renditions, workload=load_json(workload_path),
                  prices=load_json(prices_path), memory_mb=memory, architecture=architecture,
                  shards_for=shards_for, regions=regions, dax_nodes=dax, waf_rules=rules,
                  stage_throttling=stage_throttling())


def stage_throttling(stage: str = "prod") -> dict[str, int] | None:
    """The stage's API Gateway throttling as declared in ``infra/deploy.json``."""
    from infra.package import throttling

    return throttling(stage)


def _num(value: float) -> str:
    for bound, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= bound:
            return f"{value / bound:.2f}{suffix}"
    return f"{value:.2f}" if value % 1 else f"{value:.0f}"


def report(inputs: Inputs, dau: float, out: Callable[[str], None] = print) -> dict[str, Any]:
    usage = daily_usage(inputs, dau)
    lines = monthly_cost(inputs, usage)
    prices = inputs.prices
    whatif = []
    if inputs.regions > 1:
        whatif.append(f"{inputs.regions} regions")
    if inputs.dax_nodes:
        whatif.append(f"DAX {inputs.dax_nodes} nodes/region at {inputs.workload['dax_hit_rate']:.0%} hits")
    out(f"Photoscale monthly cost at {_num(dau)} DAU, {prices['region']}, prices as of {prices['as_of']}")
    out(f"measured: {inputs.roundtrips['warm_total']} warm round trips over {len(inputs.roundtrips['routes'])} routes; "
        f"renditions {inputs.renditions['wall_s']:.3f} s/upload; memory MB {inputs.memory_mb} ({inputs.architecture})")
    out("what-if: " + (", ".join(whatif) if whatif else "none (what the code does now: one region, no DAX)"))
    out(f"{'service':14} {'item':48} {'quantity':>12} {'unit':>9} {'USD/month':>12}")
    for line in lines:
        out(f"{line.service:14} {line.item:48} {_num(line.quantity):>12} {line.unit:>9} {line.usd:>12,.2f}")
    total = sum(line.usd for line in lines)
    out(f"{'total':14} {'':48} {'':>12} {'':>9} {total:>12,.2f}   ({total / dau * 1000:.2f} USD per 1,000 DAU)")
    out("")
    out(f"{'limit':50} {'quota':>9} {'use at DAU':>11} {'breaks at DAU':>14}")
    found = []
    for limit in limits(inputs):
        breaks = first_breaking_dau(limit)
        found.append((limit, breaks))
        out(f"{limit.name:50} {_num(limit.quota):>9} {limit.utilisation(dau):>10.1%} "
            f"{'never' if breaks is None else _num(breaks):>14}")
    broken = [(limit, d) for limit, d in found if d is not None]
    first = min(broken, key=lambda pair: pair[1]) if broken else None
    if first:
        out(f"first to break: {first[0].name} at {_num(first[1])} DAU ({first[0].note})")
    return {"dau": dau, "total_usd": total, "lines": [line.__dict__ for line in lines],
            "first_to_break": None if first is None else {"limit": first[0].name, "dau": first[1]}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dau", type=float, default=1_000_000)
    parser.add_argument("--regions", type=int, default=1, help="what-if: active regions (the code: 1)")
    parser.add_argument("--dax", type=int, default=0, help="what-if: DAX nodes per region (the code: none)")
    parser.add_argument("--waf", default="auto", help="rules of the WAF web ACL: auto (from infra/edge.yaml), none, N")
    parser.add_argument("--roundtrips", type=Path, default=ARTIFACTS / "roundtrips.json")
    parser.add_argument("--renditions", type=Path, default=ARTIFACTS / "renditions.json")
    parser.add_argument("--measure", action="store_true", help="run both benchmarks now instead of reading their JSON")
    parser.add_argument("--workload", type=Path, default=WORKLOAD)
    parser.add_argument("--prices", type=Path, default=PRICES)
    args = parser.parse_args(argv)
    inputs = load_inputs(args.roundtrips, args.renditions, args.measure, args.regions, args.dax, args.waf,
                         args.workload, args.prices)
    report(inputs, args.dau)
    print("")
    print("what-ifs against this run (same measurements; DAX and regions are not in the code today):")
    base = sum(line.usd for line in monthly_cost(inputs, daily_usage(inputs, args.dau)))
    for label, changed in (("DAX 3 nodes", dataclasses.replace(inputs, dax_nodes=3)),
                           ("2 regions", dataclasses.replace(inputs, regions=2))):
        usage = daily_usage(changed, args.dau)
        total = sum(line.usd for line in monthly_cost(changed, usage))
        print(f"  {label:12} total {total:>12,.2f} USD ({total - base:+,.2f}); DynamoDB RRU/day {_num(usage.rru)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
