"""The capacity and cost planner: scaling with DAU, measured inputs moving the figures, limit search."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from bench import planner
from chalicelib import follows as social

WORKLOAD = json.loads(planner.WORKLOAD.read_text())
PRICES = json.loads(planner.PRICES.read_text())
CONFIG = json.loads(planner.CHALICE_CONFIG.read_text())


def measure(total: int, rru: float, wru: float, *, sessions: int = 0, ops: dict | None = None,
            cacheable: float = 0.0) -> dict:
    tables = {"photoscale-local-users": {"rru": rru, "wru": wru, "calls": total - sessions}}
    if sessions:
        tables["photoscale-local-sessions"] = {"rru": 0.0, "wru": 0.0, "calls": sessions}
    return {"total": total, "http": 0, "rru": rru, "wru": wru, "cacheable_rru": cacheable, "tables": tables,
            "operations": ops or {"dynamodb.GetItem": total}}


PROTECTED = {"GET /feed", "PUT /photos/{id}/like", "PUT /users/{u}/follow", "PATCH /me", "GET /me"}


def crafted_roundtrips(rru: float = 2.0, wru: float = 1.0, trips: int = 4) -> dict:
    routes = [{"route": name, "authorizer": name in PROTECTED, "cold": measure(trips + 1, rru, wru, sessions=1),
               "warm": measure(trips, rru, wru, sessions=1, cacheable=rru / 2)}
              for name in WORKLOAD["requests_per_dau_per_day"]]
    upload = {
        "POST /photos": {**measure(2, 0.0, 2.0, sessions=1), "authorizer": True},
        "process_upload": measure(10, 1.5, 6.0, ops={"dynamodb.GetItem": 3, "s3.PutObject": 3, "s3.GetObject": 1,
                                                      "s3.HeadObject": 1, "sqs.SendMessage": 1}),
        "fan_out": {**measure(12, 4.5, 5.0), "feeds_gsis": 0},
    }
    return {"routes": routes, "upload": upload, "upload_followers": 1, "warm_total": trips * len(routes)}


RENDITIONS = {"wall_s": 0.5, "cpu_s": 0.4, "input_bytes": 4_000_000,
              "outputs": {"large.jpg": 600_000, "medium.jpg": 200_000, "medium.webp": 150_000, "thumb.jpg": 20_000}}


def make_inputs(**changes) -> planner.Inputs:
    memory, architecture = planner.lambda_memory(CONFIG)
    base = planner.Inputs(roundtrips=crafted_roundtrips(), renditions=RENDITIONS, workload=WORKLOAD, prices=PRICES,
                          memory_mb=memory, architecture=architecture, shards_for=social.shards_for)
    return dataclasses.replace(base, **changes)


def cost(inputs: planner.Inputs, dau: float, service: str, item_start: str = "") -> float:
    lines = planner.monthly_cost(inputs, planner.daily_usage(inputs, dau))
    return sum(line.usd for line in lines if line.service == service and line.item.startswith(item_start))


# --------------------------------------------------------------------------- scaling


@pytest.mark.parametrize("service,item", [("DynamoDB", "read"), ("DynamoDB", "write"), ("Lambda", "requests"),
                                          ("S3", "PUT"), ("S3", "GET"), ("CloudFront", "HTTPS")])
def test_usage_priced_linearly_doubles_when_dau_doubles(service: str, item: str) -> None:
    inputs = make_inputs()
    assert cost(inputs, 200_000, service, item) == pytest.approx(2 * cost(inputs, 100_000, service, item))
    assert cost(inputs, 100_000, service, item) > 0


def test_tiered_prices_grow_slower_than_usage_once_past_the_first_tier() -> None:
    tiers = [[100, 1.0], [200, 0.5], [None, 0.25]]
    assert planner.tiered(50, tiers) == 50
    assert planner.tiered(150, tiers) == 100 + 25
    assert planner.tiered(400, tiers) == 100 + 50 + 50
    inputs = make_inputs()
    # Cognito: the first 10,000 MAU are free, above that each MAU costs the same
    assert cost(inputs, 3_000, "Cognito") == 0
    assert cost(inputs, 1_000_000, "Cognito") == pytest.approx((3_000_000 - 10_000) * 0.015)


def test_defaults_credit_nothing_the_code_lacks_no_replicas_no_dax_no_inter_region_traffic() -> None:
    inputs = make_inputs()
    assert cost(inputs, 1e6, "DynamoDB", "replicated") == 0
    assert cost(inputs, 1e6, "DAX") == 0
    assert cost(inputs, 1e6, "Data transfer") == 0


# --------------------------------------------------------------------------- measured inputs move the figures


def test_fewer_measured_read_units_lower_the_dynamodb_read_cost_in_proportion() -> None:
    before = make_inputs(roundtrips=crafted_roundtrips(rru=2.0))
    after = make_inputs(roundtrips=crafted_roundtrips(rru=1.0))
    assert cost(after, 1e6, "DynamoDB", "read") < cost(before, 1e6, "DynamoDB", "read")
    # the API routes' share halves exactly; the upload steps are the same in both
    routes_before = planner.daily_usage(before, 1e6).rru - planner.daily_usage(after, 1e6).rru
    api_requests = 1e6 * sum(WORKLOAD["requests_per_dau_per_day"].values())
    assert routes_before == pytest.approx(api_requests * 1.0)


def test_more_round_trips_per_request_mean_more_lambda_gb_seconds_and_concurrency() -> None:
    few, many = make_inputs(roundtrips=crafted_roundtrips(trips=3)), make_inputs(roundtrips=crafted_roundtrips(trips=9))
    u_few, u_many = planner.daily_usage(few, 1e6), planner.daily_usage(many, 1e6)
    assert u_many.lambda_gb_seconds["api_handler"] > u_few.lambda_gb_seconds["api_handler"]
    assert u_many.lambda_peak_concurrency > u_few.lambda_peak_concurrency


def test_a_cache_tier_what_if_cuts_only_the_cacheable_reads_and_adds_its_nodes() -> None:
    plain, cached = make_inputs(), make_inputs(dax_nodes=3)
    u_plain, u_cached = planner.daily_usage(plain, 1e6), planner.daily_usage(cached, 1e6)
    api_requests = 1e6 * sum(WORKLOAD["requests_per_dau_per_day"].values())
    # half of each route's 2 RRU is cacheable (crafted), served at the workload's hit rate
    assert u_plain.rru - u_cached.rru == pytest.approx(api_requests * 1.0 * WORKLOAD["dax_hit_rate"])
    assert u_cached.wru == u_plain.wru
    assert cost(cached, 1e6, "DAX") == pytest.approx(3 * PRICES["dax"]["node_hour"] * 24 * planner.DAYS_PER_MONTH)


def test_a_second_region_replicates_every_write_once() -> None:
    usage = planner.daily_usage(make_inputs(regions=2), 1e6)
    assert usage.replicated_wru == pytest.approx(usage.wru)
    assert usage.inter_region_gb > 0


def test_routes_with_the_authorizer_invoke_it_once_per_request_and_the_others_never() -> None:
    usage = planner.daily_usage(make_inputs(), 1e6)
    # crafted: every route makes a sessions-table call, but only PROTECTED routes and POST /photos have the authorizer
    per_dau = WORKLOAD["requests_per_dau_per_day"]
    protected = 1e6 * (sum(per_dau[name] for name in PROTECTED) + WORKLOAD["uploads_per_dau_per_day"])
    assert usage.lambda_invocations["bearer_auth"] == pytest.approx(protected)
    assert usage.lambda_invocations["api_handler"] == pytest.approx(usage.api_requests)


# --------------------------------------------------------------------------- constants come from code and config


def test_lambda_memory_sizes_are_the_prod_stage_config_of_chalice() -> None:
    memory, architecture = planner.lambda_memory(CONFIG)
    prod = CONFIG["stages"]["prod"]
    assert memory["api_handler"] == prod["lambda_memory_size"]
    for function, overrides in prod["lambda_functions"].items():
        assert memory[function] == overrides.get("lambda_memory_size", prod["lambda_memory_size"])
    assert architecture == prod["lambda_architecture"]


def test_a_bigger_worker_in_the_config_costs_more_gb_seconds() -> None:
    changed = json.loads(json.dumps(CONFIG))
    changed["stages"]["prod"]["lambda_functions"]["process_uploads"]["lambda_memory_size"] *= 2
    memory, _ = planner.lambda_memory(changed)
    base, bigger = make_inputs(), make_inputs(memory_mb=memory)
    assert planner.daily_usage(bigger, 1e5).lambda_gb_seconds["process_uploads"] == pytest.approx(
        2 * planner.daily_usage(base, 1e5).lambda_gb_seconds["process_uploads"])


def test_load_inputs_takes_the_shard_policy_from_the_social_module_and_reads_saved_measurements(tmp_path: Path) -> None:
    roundtrips, renditions = tmp_path / "rt.json", tmp_path / "rd.json"
    roundtrips.write_text(json.dumps(crafted_roundtrips()))
    renditions.write_text(json.dumps(RENDITIONS))
    inputs = planner.load_inputs(roundtrips, renditions, measure=False, regions=1, dax=0, waf="auto")
    assert inputs.shards_for is social.shards_for
    assert inputs.memory_mb == planner.lambda_memory(CONFIG)[0]
    assert inputs.roundtrips["routes"] == crafted_roundtrips()["routes"]


def test_hot_like_counter_writes_follow_the_codes_shard_policy() -> None:
    inputs = make_inputs()
    limit = next(x for x in planner.limits(inputs) if x.name.startswith("Hot key: top photo's likes shard (w"))
    dau = 2_000_000
    followers = int(dau * WORKLOAD["top_account"]["followers_per_dau"])
    likes_per_dau = WORKLOAD["requests_per_dau_per_day"]["PUT /photos/{id}/like"]
    peak_likes = dau * likes_per_dau * WORKLOAD["peak_to_average"] / 86_400
    expected = peak_likes * WORKLOAD["top_account"]["share_of_likes"] * 2 / social.shards_for(followers)
    assert limit.usage_at(dau) == pytest.approx(expected)
    unsharded = next(x for x in planner.limits(make_inputs(shards_for=lambda n: 1)) if x.name == limit.name)
    assert unsharded.usage_at(dau) > limit.usage_at(dau)


def test_waf_cost_follows_the_edge_template(tmp_path: Path) -> None:
    template = tmp_path / "edge.yaml"
    template.write_text("Resources:\n  Acl:\n    Type: AWS::WAFv2::WebACL\n    Properties:\n"
                        "      Rules: [{Name: a}, {Name: b}]\n  Other:\n    Type: AWS::S3::Bucket\n")
    assert planner.waf_rules(template) == 2
    template.write_text("Resources:\n  Other:\n    Type: AWS::S3::Bucket\n")
    assert planner.waf_rules(template) is None
    assert cost(make_inputs(waf_rules=2), 1e5, "WAF") > cost(make_inputs(waf_rules=None), 1e5, "WAF") == 0


def test_the_smallest_stored_format_of_each_rendition_is_what_is_served() -> None:
    assert planner.rendition_bytes(RENDITIONS) == {"large": 600_000, "medium": 150_000, "thumb": 20_000}


# --------------------------------------------------------------------------- limits


def test_first_breaking_dau_of_a_linear_limit_is_where_usage_meets_the_quota() -> None:
    limit = planner.Limit("linear", quota=10.0, usage_at=lambda dau: dau * 0.001)
    assert planner.first_breaking_dau(limit) == pytest.approx(10_000, rel=0.002)
    assert planner.first_breaking_dau(planner.Limit("flat", 10.0, lambda dau: 1.0)) is None


def test_first_breaking_dau_finds_the_first_crossing_of_a_limit_that_dips_after_a_reshard() -> None:
    # usage grows, drops when a shard step is crossed at 50,000 DAU, grows again
    def usage(dau: float) -> float:
        return dau / 1_000 if dau < 50_000 else dau / 8_000

    assert planner.first_breaking_dau(planner.Limit("stepped", 40.0, usage)) == pytest.approx(40_000, rel=0.002)
    assert planner.first_breaking_dau(planner.Limit("stepped", 60.0, usage)) == pytest.approx(480_000, rel=0.002)


def test_first_to_break_is_the_limit_reached_at_the_lowest_dau() -> None:
    limits = [planner.Limit("late", 1.0, lambda d: d / 1e7), planner.Limit("early", 1.0, lambda d: d / 1e5),
              planner.Limit("never", 1.0, lambda d: 0.0)]
    limit, dau = planner.first_to_break(limits)
    assert limit.name == "early"
    assert dau == pytest.approx(1e5, rel=0.002)


def test_the_planner_takes_the_stage_throttle_from_the_deploy_settings() -> None:
    # Given the prod stage's throttling as infra/deploy.json declares it (what post_deploy applies)
    declared = json.loads((planner.ROOT / "infra" / "deploy.json").read_text())["throttling"]["prod"]
    assert planner.stage_throttling() == declared
    # When the limits are modelled with it
    inputs = make_inputs(stage_throttling=declared)
    stage, = (limit for limit in planner.limits(inputs) if limit.name.startswith("API Gateway stage throttle"))
    account, = (limit for limit in planner.limits(inputs) if limit.name == "API Gateway throttle")
    # Then its quota is the declared rate, the burst is reported, and it loads the same peak requests
    # as the account throttle (so it breaks where peak API requests/s reach the stage rate)
    assert stage.quota == declared["rate_limit"] and str(declared["burst_limit"]) in stage.note
    assert stage.usage_at(1e6) == pytest.approx(account.usage_at(1e6))
    breaks = planner.first_breaking_dau(stage)
    assert stage.usage_at(breaks) == pytest.approx(declared["rate_limit"], rel=0.002)


def test_a_higher_stage_throttle_moves_the_dau_at_which_it_breaks_and_none_drops_the_limit() -> None:
    low = make_inputs(stage_throttling={"rate_limit": 1_000, "burst_limit": 2_000})
    high = make_inputs(stage_throttling={"rate_limit": 4_000, "burst_limit": 8_000})

    def breaks(inputs: planner.Inputs) -> float:
        limit, = (x for x in planner.limits(inputs) if x.name.startswith("API Gateway stage throttle"))
        return planner.first_breaking_dau(limit)

    assert breaks(high) == pytest.approx(4 * breaks(low), rel=0.01)
    assert not [x for x in planner.limits(make_inputs()) if x.name.startswith("API Gateway stage throttle")]
