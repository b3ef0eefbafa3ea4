"""The whole system on one machine: embedded AWS, provisioning, API, event pump and site.

Used by ``make run`` (``python -m devstack.run``) and by the integration and end-to-end test
fixtures, so tests exercise exactly what developers run. Every process gets its settings the way
Lambda does in AWS: environment variables named after the CloudFormation outputs.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from devstack import provision as provisioning
from devstack.chaos import CHAOS_DIR_ENV, ChaosFlags
from infra.cfn import global_table_names, load_template, output_env_name

ROOT = Path(__file__).resolve().parent.parent
STATEFUL_TEMPLATE = ROOT / "infra" / "stateful.yaml"
REGION = "us-east-1"  # the primary of the default pair (single-region tools use it)
DEFAULT_REGIONS = ("us-east-1", "eu-west-1")
#: Port offset of each further region (8001 -> 8011, DAX 8111 -> 8121).
REGION_PORT_STRIDE = 10


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_for(predicate, *, timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``predicate`` until it is true, failing with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@dataclass(frozen=True)
class RegionPorts:
    """The ports one region's processes listen on."""

    api: int
    dax: int
    dax_control: int


def default_regions() -> tuple[str, ...]:
    """``PHOTOSCALE_REGIONS`` (comma list, primary first), else the default pair."""
    raw = os.environ.get("PHOTOSCALE_REGIONS", "").strip() or ",".join(DEFAULT_REGIONS)
    regions = tuple(dict.fromkeys(r.strip() for r in raw.split(",") if r.strip()))
    if not regions:
        raise ValueError("PHOTOSCALE_REGIONS names no region")
    return regions


@dataclass
class StackConfig:
    host: str = "127.0.0.1"
    aws_port: int = 4566
    api_port: int = 8001
    site_port: int = 8000
    dax_port: int = 8111
    dax_control_port: int = 8112
    #: Serving regions, primary first. Each gets its own API, pump and DAX stand-in on one embedded AWS.
    regions: tuple[str, ...] = field(default_factory=default_regions)
    #: Ports per region; a region not named here gets the base ports plus ``REGION_PORT_STRIDE`` per position.
    region_ports: dict[str, RegionPorts] = field(default_factory=dict)
    #: Where the DAX stand-in records its control URL for ``python -m devstack.chaos`` (None: nowhere).
    dax_control_file: Path | None = None
    #: Where ``make run`` records the regions, chaos directory and replicator URL for ``devstack.chaos``.
    regions_file: Path | None = None
    #: The chaos flag directory (see ``devstack.chaos``); None: a fresh temporary one per stack.
    chaos_dir: Path | None = None
    stage: str = "local"
    run_pump: bool = True
    run_dax: bool = True
    run_site: bool = True
    #: The replication stand-ins (DynamoDB, S3, Cognito) between the regions (only with two or more).
    run_replicator: bool = True
    replication_lag_seconds: float = 0.5
    replicator_port: int = 8120
    #: How often the edge polls each region's ``/api/health``.
    health_interval_seconds: float = 0.5
    pump_retry_delay_seconds: int = 1
    log_dir: Path | None = None  # None: children inherit stdout/stderr
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.regions = tuple(self.regions)
        for index, region in enumerate(self.regions):
            offset = index * REGION_PORT_STRIDE
            self.region_ports.setdefault(region, RegionPorts(
                api=self.api_port + offset, dax=self.dax_port + offset, dax_control=self.dax_control_port + offset,
            ))

    @property
    def primary_region(self) -> str:
        return self.regions[0]

    @classmethod
    def ephemeral(cls, **overrides) -> StackConfig:
        """Free ports everywhere (tests run beside a developer's ``make run``)."""
        regions = tuple(overrides.pop("regions", None) or default_regions())
        ports = {r: RegionPorts(api=free_port(), dax=free_port(), dax_control=free_port()) for r in regions}
        first = ports[regions[0]]
        return cls(aws_port=free_port(), api_port=first.api, site_port=free_port(), dax_port=first.dax,
                   dax_control_port=first.dax_control, regions=regions, region_ports=ports,
                   replicator_port=free_port(), **overrides)


@dataclass
class RegionRuntime:
    """One region of the running stack: its addresses, provisioned outputs and process environment."""

    name: str
    host: str
    ports: RegionPorts
    outputs: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        """chalice local itself (routes without the ``/api`` prefix)."""
        return f"http://{self.host}:{self.ports.api}"

    @property
    def dax_endpoint(self) -> str:
        return f"http://{self.host}:{self.ports.dax}"

    @property
    def dax_control_url(self) -> str:
        return f"http://{self.host}:{self.ports.dax_control}"

    @property
    def issuer(self) -> str:
        """The ``iss`` of the tokens this region's pool issues (moto uses AWS's form)."""
        return f"https://cognito-idp.{self.name}.amazonaws.com/{self.outputs['UserPoolId']}"


def region_environment(runtime: RegionRuntime, all_regions: list[RegionRuntime]) -> dict[str, str]:
    """The multi-region contract's variables for ``runtime``'s API and workers (``docs``: issue 10).

    Pure: from the provisioned outputs of every region. ``all_regions`` is primary first.
    """
    primary = all_regions[0]
    return {
        "AWS_REGION": runtime.name,
        "AWS_DEFAULT_REGION": runtime.name,
        "ACTIVE_REGIONS": ",".join(r.name for r in all_regions),
        "PRIMARY_REGION": primary.name,
        "PRIMARY_USER_POOL_ID": primary.outputs["UserPoolId"],
        "PRIMARY_USER_POOL_CLIENT_ID": primary.outputs["UserPoolClientId"],
        # Locally each region has its own pool (in AWS the replica shares the primary's id): trust all of them.
        "TRUSTED_ISSUERS": json.dumps({r.issuer: r.outputs["UserPoolClientId"] for r in all_regions}),
        "REGION_API_URLS": json.dumps({r.name: r.api_url for r in all_regions}),
        "MEDIA_BUCKETS": json.dumps({r.name: r.outputs["MediaBucket"] for r in all_regions}),
        "FANOUT_QUEUE_URLS": json.dumps({r.name: r.outputs["FanoutQueueUrl"] for r in all_regions}),
    }


class LocalStack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.regions: dict[str, RegionRuntime] = {
            name: RegionRuntime(name, config.host, config.region_ports[name]) for name in config.regions
        }
        self._processes: list[subprocess.Popen] = []
        self._pumps: dict[str, subprocess.Popen] = {}
        self._site = None
        self._site_thread: threading.Thread | None = None
        self._tmp_chaos: tempfile.TemporaryDirectory | None = None
        if config.chaos_dir is None:
            self._tmp_chaos = tempfile.TemporaryDirectory(prefix="photoscale-chaos-")
            self.chaos_dir = Path(self._tmp_chaos.name)
        else:
            self.chaos_dir = Path(config.chaos_dir)
        self.chaos = ChaosFlags(self.chaos_dir)

    # -- addresses (the primary region's, for single-region callers) --------------------------
    @property
    def primary(self) -> RegionRuntime:
        return self.regions[self.config.primary_region]

    @property
    def outputs(self) -> dict[str, str]:
        return self.primary.outputs

    @property
    def env(self) -> dict[str, str]:
        return self.primary.env

    @property
    def aws_endpoint(self) -> str:
        return f"http://{self.config.host}:{self.config.aws_port}"

    @property
    def dax_endpoint(self) -> str:
        """The primary region's DAX stand-in (its API's ``DAX_ENDPOINT``)."""
        return self.primary.dax_endpoint

    @property
    def dax_control_url(self) -> str:
        return self.primary.dax_control_url

    @property
    def api_url(self) -> str:
        """The primary region's chalice local itself (routes without the ``/api`` prefix)."""
        return self.primary.api_url

    @property
    def site_url(self) -> str:
        return f"http://{self.config.host}:{self.config.site_port}"

    @property
    def replicator_url(self) -> str | None:
        if not self._replicates:
            return None
        return f"http://{self.config.host}:{self.config.replicator_port}"

    @property
    def _replicates(self) -> bool:
        return self.config.run_replicator and len(self.regions) > 1

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> LocalStack:
        try:
            self.chaos.clear()
            self._start_aws()
            for region in self.regions.values():
                self._provision(region)
            runtimes = list(self.regions.values())
            for region in runtimes:
                region.env.update(region_environment(region, runtimes))
                region.env.update(self.config.extra_env)
            if self._replicates:
                self._start_replicator()
            for region in runtimes:
                if self.config.run_dax:
                    self._start_dax(region)
                self._start_api(region)
                if self.config.run_pump:
                    self._start_pump(region)
            if self.config.run_site:
                self._start_site()
            self._write_regions_file()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._site is not None:
            self._site.shutdown()
            self._site.server_close()
            self._site = None
        for process in reversed(self._processes):  # consumers first, the embedded AWS last
            if process.poll() is None:
                process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes.clear()
        if self.config.regions_file is not None:
            self.config.regions_file.unlink(missing_ok=True)
        if self._tmp_chaos is not None:
            self._tmp_chaos.cleanup()
            self._tmp_chaos = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def base_env(self, region: str | None = None) -> dict[str, str]:
        region = region or self.config.primary_region
        env = {
            k: v for k, v in os.environ.items()
            if not k.startswith(("AWS_", "PHOTOSCALE_")) and k not in ("PYTHONPATH",)
        }
        env.update(
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_REGION=region,
            AWS_DEFAULT_REGION=region,
            PYTHONUNBUFFERED="1",
        )
        env[CHAOS_DIR_ENV] = str(self.chaos_dir)
        return env

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        if self.config.log_dir is not None:
            self.config.log_dir.mkdir(parents=True, exist_ok=True)
            out = open(self.config.log_dir / f"{name}.log", "ab")  # noqa: SIM115 (owned by the child)
            stdio = {"stdout": out, "stderr": subprocess.STDOUT}
        else:
            stdio = {}
        # Own session: Ctrl-C reaches only the runner, which stops children in order (consumers first).
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, start_new_session=True, **stdio)
        self._processes.append(process)
        return process

    def _name(self, process: str, region: RegionRuntime) -> str:
        """Log name of a per-region process: ``api`` for the primary (as before), ``api-eu-west-1`` else."""
        return process if region.name == self.config.primary_region else f"{process}-{region.name}"

    def _start_aws(self) -> None:
        process = self._spawn(
            "moto",
            # moto's server with one request at a time: moto is not thread-safe (see devstack.embedded_aws)
            [sys.executable, "-m", "devstack.embedded_aws", "-H", self.config.host, "-p", str(self.config.aws_port)],
            self.base_env(),
        )
        wait_for(
            lambda: process.poll() is None and _port_open(self.config.host, self.config.aws_port),
            timeout=30, what=f"the embedded AWS on {self.aws_endpoint}",
        )
        if process.poll() is not None:
            raise RuntimeError("moto server exited; is the port in use?")

    def _provision(self, region: RegionRuntime) -> None:
        env = self.base_env(region.name)
        clients = provisioning.make_clients(self.aws_endpoint, region.name)
        template = load_template(STATEFUL_TEMPLATE)
        region.outputs = provisioning.provision(
            template, stage=self.config.stage, clients=clients, parameters=self.region_parameters(template),
        )
        env.update({output_env_name(name): value for name, value in region.outputs.items()})
        env["PHOTOSCALE_AWS_ENDPOINT"] = self.aws_endpoint
        region.env = env

    def region_parameters(self, template: dict) -> dict[str, str]:
        """The stateful template's region parameters (primary, replica; empty replica for one region),
        for the templates that declare them."""
        regions = self.config.regions
        values = {"PrimaryRegion": regions[0], "ReplicaRegion": regions[1] if len(regions) > 1 else ""}
        return {k: v for k, v in values.items() if k in template.get("Parameters", {})}

    def _start_replicator(self) -> None:
        """The replication stand-ins between the regions (devstack/replicator.py)."""
        from devstack import replicator

        runtimes = list(self.regions.values())
        template = load_template(STATEFUL_TEMPLATE)
        tables = global_table_names(template, self.config.stage)
        args = [sys.executable, "-m", "devstack.replicator", "--endpoint", self.aws_endpoint,
                "--regions", ",".join(r.name for r in runtimes), "--tables", json.dumps(tables),
                "--prefixes", json.dumps(replicator.replicated_prefixes(template)),
                "--secrets", json.dumps({r.name: r.outputs["CursorSecretArn"] for r in runtimes}),
                "--lag-seconds", str(self.config.replication_lag_seconds),
                "--host", self.config.host, "--port", str(self.config.replicator_port),
                "--pools", json.dumps({r.name: [r.outputs["UserPoolId"], r.outputs["UserPoolClientId"]]
                                       for r in runtimes}),
                "--buckets", json.dumps({r.name: r.outputs["MediaBucket"] for r in runtimes})]
        process = self._spawn("replicator", args, self.base_env())
        wait_for(
            lambda: process.poll() is None and _port_open(self.config.host, self.config.replicator_port),
            timeout=30, what=f"the replicator on {self.replicator_url}",
        )
        if process.poll() is not None:
            raise RuntimeError("the replicator exited during start-up (see its log)")

    def _start_dax(self, region: RegionRuntime) -> None:
        """The region's DAX stand-in in front of the embedded AWS (devstack/dax_proxy.py)."""
        args = [sys.executable, "-m", "devstack.dax_proxy", "--upstream", self.aws_endpoint, "--host", self.config.host,
                "--port", str(region.ports.dax), "--control-port", str(region.ports.dax_control),
                "--region", region.name]  # a DAX cluster is regional: it forwards to its own region's tables
        if self.config.dax_control_file is not None and region.name == self.config.primary_region:
            args += ["--control-file", str(self.config.dax_control_file)]
        process = self._spawn(self._name("dax", region), args, self.base_env(region.name))
        wait_for(
            lambda: process.poll() is None and _port_open(self.config.host, region.ports.dax),
            timeout=30, what=f"the DAX stand-in on {region.dax_endpoint}",
        )
        if process.poll() is not None:
            raise RuntimeError("the DAX stand-in exited; is its port in use?")

    def _start_api(self, region: RegionRuntime) -> None:
        # Only the API reads through the cache tier (in AWS only it is in the DAX VPC); workers do not.
        # A stand-in brought back by `devstack.chaos cache-up` is tried again after 3 s (AWS default: 10 s).
        env = {"DAX_RETRY_SECONDS": "3", **region.env, "DAX_ENDPOINT": region.dax_endpoint} if self.config.run_dax \
            else region.env
        process = self._spawn(
            self._name("api", region),
            [sys.executable, "-m", "devstack.chalice_local", "local", "--stage", self.config.stage,
             "--host", self.config.host, "--port", str(region.ports.api), "--no-autoreload"],
            env,
        )

        def healthy() -> bool:
            if process.poll() is not None:
                raise RuntimeError("chalice local exited during start-up (see its log)")
            try:
                with urllib.request.urlopen(f"{region.api_url}/health", timeout=5) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_for(healthy, timeout=60, what=f"chalice local on {region.api_url}", interval=0.2)

    def stage_config_env(self) -> dict[str, str]:
        """The stage's ``environment_variables`` from ``.chalice/config.json``, merged as Chalice does."""
        config = json.loads((ROOT / ".chalice" / "config.json").read_text())
        env = dict(config.get("environment_variables", {}))
        env.update(config.get("stages", {}).get(self.config.stage, {}).get("environment_variables", {}))
        return env

    def _start_pump(self, region: RegionRuntime) -> None:
        self.start_pump(region=region.name)

    def start_pump(self, launcher: list[str] | None = None, extra_env: dict[str, str] | None = None,
                   region: str | None = None) -> subprocess.Popen:
        """Start ``region``'s event pump (default: the primary's). ``launcher``: the command before the
        pump's arguments, by default ``python -m devstack.event_pump``; a test may wrap it, e.g. to kill
        it at a chosen request."""
        runtime = self.regions[region or self.config.primary_region]
        # chalice local applies the stage's config variables itself; the pump gets them here.
        self._pumps[runtime.name] = self._spawn(
            self._name("pump", runtime),
            [*(launcher or [sys.executable, "-m", "devstack.event_pump"]), "--app-dir", str(ROOT),
             "--endpoint", self.aws_endpoint, "--region", runtime.name,
             "--retry-delay-seconds", str(self.config.pump_retry_delay_seconds),
             "--stream-checkpoint-dir", str(self.chaos_dir / "stream-checkpoints" / runtime.name)],
            {**runtime.env, **self.stage_config_env(), **(extra_env or {})},
        )
        return self._pumps[runtime.name]

    def stop_pump(self, region: str | None = None) -> None:
        """Stop ``region``'s event pump cleanly (SIGTERM: it settles the batch in hand first)."""
        pump = self._pumps.pop(region or self.config.primary_region, None)
        if pump is not None and pump.poll() is None:
            pump.terminate()
            pump.wait(timeout=60)

    def _start_site(self) -> None:
        from devstack.edge_server import EdgeRegion, make_server

        self._site = make_server(
            self.config.host, self.config.site_port, aws_endpoint=self.aws_endpoint,
            regions=[EdgeRegion(r.name, r.api_url, r.outputs["MediaBucket"]) for r in self.regions.values()],
            health_interval_seconds=self.config.health_interval_seconds,
        )
        self._site_thread = threading.Thread(target=self._site.serve_forever, name="site", daemon=True)
        self._site_thread.start()

    def _write_regions_file(self) -> None:
        if self.config.regions_file is None:
            return
        self.config.regions_file.parent.mkdir(parents=True, exist_ok=True)
        self.config.regions_file.write_text(json.dumps({
            "regions": list(self.regions), "chaos_dir": str(self.chaos_dir), "replicator": self.replicator_url,
            "api": {r.name: r.api_url for r in self.regions.values()}, "site": self.site_url,
        }, indent=2))
