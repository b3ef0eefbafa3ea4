"""``make run``: the whole system on one machine until Ctrl-C."""
from __future__ import annotations

import argparse
import os
import signal
import threading

from devstack.chaos import CONTROL_FILE
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
    args = parser.parse_args(argv)
    config = StackConfig(host=args.host, aws_port=args.aws_port, api_port=args.api_port, site_port=args.site_port,
                         dax_port=args.dax_port, dax_control_port=args.dax_control_port,
                         dax_control_file=CONTROL_FILE)
    print("starting the embedded AWS, provisioning, API, event pump and site ...", flush=True)
    with LocalStack(config) as stack:
        print(
            f"\n  Photoscale is running\n"
            f"  site          {stack.site_url}\n"
            f"  API           {stack.site_url}/api   (health: {stack.site_url}/api/health)\n"
            f"  embedded AWS  {stack.aws_endpoint}\n"
            f"  DAX stand-in  {stack.dax_endpoint}   (python -m devstack.chaos cache-down | cache-up)\n\n"
            f"  Ctrl-C stops everything.\n",
            flush=True,
        )
        stop.wait()
        print("stopping ...", flush=True)
    print("stopped.", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
