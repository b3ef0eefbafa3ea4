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
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from devstack import provision as provisioning
from infra.cfn import load_template, output_env_name

ROOT = Path(__file__).resolve().parent.parent
STATEFUL_TEMPLATE = ROOT / "infra" / "stateful.yaml"
REGION = "us-east-1"


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


@dataclass
class StackConfig:
    host: str = "127.0.0.1"
    aws_port: int = 4566
    api_port: int = 8001
    site_port: int = 8000
    dax_port: int = 8111
    dax_control_port: int = 8112
    #: Where the DAX stand-in records its control URL for ``python -m devstack.chaos`` (None: nowhere).
    dax_control_file: Path | None = None
    stage: str = "local"
    run_pump: bool = True
    run_dax: bool = True
    run_site: bool = True
    pump_retry_delay_seconds: int = 1
    log_dir: Path | None = None  # None: children inherit stdout/stderr
    extra_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def ephemeral(cls, **overrides) -> StackConfig:
        """Free ports everywhere (tests run beside a developer's ``make run``)."""
        return cls(aws_port=free_port(), api_port=free_port(), site_port=free_port(), dax_port=free_port(),
                   dax_control_port=free_port(), **overrides)


class LocalStack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.outputs: dict[str, str] = {}
        self.env: dict[str, str] = {}
        self._processes: list[subprocess.Popen] = []
        self._pump: subprocess.Popen | None = None
        self._site = None
        self._site_thread: threading.Thread | None = None

    # -- addresses ---------------------------------------------------------------------------
    @property
    def aws_endpoint(self) -> str:
        return f"http://{self.config.host}:{self.config.aws_port}"

    @property
    def dax_endpoint(self) -> str:
        """The DAX stand-in (the API's ``DAX_ENDPOINT``)."""
        return f"http://{self.config.host}:{self.config.dax_port}"

    @property
    def dax_control_url(self) -> str:
        return f"http://{self.config.host}:{self.config.dax_control_port}"

    @property
    def api_url(self) -> str:
        """chalice local itself (routes without the ``/api`` prefix)."""
        return f"http://{self.config.host}:{self.config.api_port}"

    @property
    def site_url(self) -> str:
        return f"http://{self.config.host}:{self.config.site_port}"

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> LocalStack:
        try:
            self._start_aws()
            self._provision()
            if self.config.run_dax:
                self._start_dax()
            self._start_api()
            if self.config.run_pump:
                self._start_pump()
            if self.config.run_site:
                self._start_site()
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

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def base_env(self) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items()
            if not k.startswith(("AWS_", "PHOTOSCALE_")) and k not in ("PYTHONPATH",)
        }
        env.update(
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_REGION=REGION,
            AWS_DEFAULT_REGION=REGION,
            PYTHONUNBUFFERED="1",
        )
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

    def _provision(self) -> None:
        env = self.base_env()
        clients = provisioning.make_clients(self.aws_endpoint, REGION)
        self.outputs = provisioning.provision(
            load_template(STATEFUL_TEMPLATE), stage=self.config.stage, clients=clients
        )
        env.update({output_env_name(name): value for name, value in self.outputs.items()})
        env["PHOTOSCALE_AWS_ENDPOINT"] = self.aws_endpoint
        env.update(self.config.extra_env)
        self.env = env

    def _start_dax(self) -> None:
        """The DAX stand-in in front of the embedded AWS (devstack/dax_proxy.py)."""
        args = [sys.executable, "-m", "devstack.dax_proxy", "--upstream", self.aws_endpoint, "--host", self.config.host,
                "--port", str(self.config.dax_port), "--control-port", str(self.config.dax_control_port)]
        if self.config.dax_control_file is not None:
            args += ["--control-file", str(self.config.dax_control_file)]
        process = self._spawn("dax", args, self.base_env())
        wait_for(
            lambda: process.poll() is None and _port_open(self.config.host, self.config.dax_port),
            timeout=30, what=f"the DAX stand-in on {self.dax_endpoint}",
        )
        if process.poll() is not None:
            raise RuntimeError("the DAX stand-in exited; is its port in use?")

    def _start_api(self) -> None:
        # Only the API reads through the cache tier (in AWS only it is in the DAX VPC); workers do not.
        # A stand-in brought back by `devstack.chaos cache-up` is tried again after 3 s (AWS default: 10 s).
        env = {"DAX_RETRY_SECONDS": "3", **self.env, "DAX_ENDPOINT": self.dax_endpoint} if self.config.run_dax \
            else self.env
        process = self._spawn(
            "api",
            [sys.executable, "-m", "devstack.chalice_local", "local", "--stage", self.config.stage,
             "--host", self.config.host, "--port", str(self.config.api_port), "--no-autoreload"],
            env,
        )

        def healthy() -> bool:
            if process.poll() is not None:
                raise RuntimeError("chalice local exited during start-up (see its log)")
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=5) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_for(healthy, timeout=60, what=f"chalice local on {self.api_url}", interval=0.2)

    def stage_config_env(self) -> dict[str, str]:
        """The stage's ``environment_variables`` from ``.chalice/config.json``, merged as Chalice does."""
        config = json.loads((ROOT / ".chalice" / "config.json").read_text())
        env = dict(config.get("environment_variables", {}))
        env.update(config.get("stages", {}).get(self.config.stage, {}).get("environment_variables", {}))
        return env

    def _start_pump(self) -> None:
        self.start_pump()

    def start_pump(self, launcher: list[str] | None = None, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start the event pump (``launcher``: the command before the pump's arguments, by default
        ``python -m devstack.event_pump``; a test may wrap it, e.g. to kill it at a chosen request)."""
        # chalice local applies the stage's config variables itself; the pump gets them here.
        self._pump = self._spawn(
            "pump",
            [*(launcher or [sys.executable, "-m", "devstack.event_pump"]), "--app-dir", str(ROOT),
             "--endpoint", self.aws_endpoint, "--region", REGION,
             "--retry-delay-seconds", str(self.config.pump_retry_delay_seconds)],
            {**self.env, **self.stage_config_env(), **(extra_env or {})},
        )
        return self._pump

    def stop_pump(self) -> None:
        """Stop the event pump cleanly (SIGTERM: it settles the batch in hand first)."""
        if self._pump is not None and self._pump.poll() is None:
            self._pump.terminate()
            self._pump.wait(timeout=60)
        self._pump = None

    def _start_site(self) -> None:
        from devstack.edge_server import make_server

        self._site = make_server(
            self.config.host, self.config.site_port, api_url=self.api_url,
            aws_endpoint=self.aws_endpoint, media_bucket=self.outputs["MediaBucket"], region=REGION,
        )
        self._site_thread = threading.Thread(target=self._site.serve_forever, name="site", daemon=True)
        self._site_thread.start()
