"""``make run``: the whole system on one machine until Ctrl-C."""
from __future__ import annotations

import argparse
import os
import signal
import threading

from devstack.chaos import CONTROL_FILE, DEFAULT_CHAOS_DIR, REGIONS_FILE
from devstack.stack import LocalStack, StackConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--aws-port", type=int, default=int(os.environ.get("PHOTOSCALE_AWS_PORT", 4566)))
    parser.add_argument("--api-port", type=int, default=int(os.environ.get("PHOTOSCALE_API_PORT", 8001)))
    parser.add_argument("--site-port", type=int, default=int(os.environ.get("PHOTOSCALE_SITE_PORT", 8000)))
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    parser.add_argument("--dax-port", type=int, default=int(os.environ.get("PHOTOSCALE_DAX_PORT", 8111)))
    parser.add_argument("--dax-control-port", type=int, default=int(os.environ.get("PHOTOSCALE_DAX_CONTROL_PORT", 8112)))
    parser.add_argument("--replicator-port", type=int, default=int(os.environ.get("PHOTOSCALE_REPLICATOR_PORT", 8120)))
    parser.add_argument("--replication-lag-seconds", type=float,
                        default=float(os.environ.get("PHOTOSCALE_REPLICATION_LAG_SECONDS", 0.5)))
    args = parser.parse_args(argv)
    config = StackConfig(host=args.host, aws_port=args.aws_port, api_port=args.api_port, site_port=args.site_port,
                         dax_port=args.dax_port, dax_control_port=args.dax_control_port,
                         dax_control_file=CONTROL_FILE, regions_file=REGIONS_FILE, chaos_dir=DEFAULT_CHAOS_DIR,
                         replicator_port=args.replicator_port, replication_lag_seconds=args.replication_lag_seconds)
    print(f"starting the embedded AWS and, per region ({', '.join(config.regions)}), provisioning, API, "
          "event pump and DAX stand-in; then the replicator and the site ...", flush=True)
    with LocalStack(config) as stack:
        print(banner(stack), flush=True)
        stop.wait()
        print("stopping ...", flush=True)
    print("stopped.", flush=True)
    return 0


def banner(stack: LocalStack) -> str:
    """What ``make run`` prints: every region's URLs and the chaos commands."""
    lines = ["", "  Photoscale is running", f"  site          {stack.site_url}",
             f"  API           {stack.site_url}/api   (health: {stack.site_url}/api/health; routed to the nearest "
             "healthy region, header X-Photoscale-Client-Region picks the nearest)",
             f"  embedded AWS  {stack.aws_endpoint}"]
    primary = stack.config.primary_region
    for region in stack.regions.values():
        role = "primary" if region.name == primary else "replica"
        lines += [f"  {region.name:<13} ({role}) API {region.api_url}   DAX stand-in {region.dax_endpoint}"]
    if stack.replicator_url:
        lines += [f"  replicator    {stack.replicator_url}/status   (lag {stack.config.replication_lag_seconds}s)"]
    lines += ["", "  Every /api response names the region that served it: X-Photoscale-Region.",
              "  Chaos: python -m devstack.chaos region-down REGION | region-up REGION | replication-pause |",
              "         replication-resume | status | cache-down | cache-up",
              "", "  Ctrl-C stops everything.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
