"""The production artifact, built once per input change: `make package STAGE=prod` and an x86_64 twin.

The builds run ``infra.package`` in ``.venv-package`` (the Lambda runtime's Python, made by
``make package-venv``, a prerequisite of ``make test``). They are cached on their inputs by
``infra.package`` itself (``inputs.sha256``), so a second ``make test`` does not rebuild, and
serialised with a file lock so parallel pytest workers build each artifact once.
"""
from __future__ import annotations

import fcntl
import json
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_PYTHON = ROOT / ".venv-package" / "bin" / "python"
BUILD = ROOT / "build" / "package"
STAGE = "prod"


@dataclass(frozen=True)
class Artifact:
    out: Path
    architecture: str

    @property
    def template(self) -> dict:
        return json.loads((self.out / "sam.json").read_text())

    @property
    def function_zip(self) -> Path:
        return self.out / "deployment.zip"

    @property
    def layer_zip(self) -> Path:
        return self.out / "imaging-layer.zip"


def _build(out: Path, *extra: str) -> Path:
    if not PACKAGE_PYTHON.exists():
        pytest.fail(f"{PACKAGE_PYTHON} is missing: run `make package-venv` (needs the runtime's Python, "
                    "see infra/deploy.json)")
    BUILD.mkdir(parents=True, exist_ok=True)
    with open(BUILD / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.run([str(PACKAGE_PYTHON), "-m", "infra.package", "--stage", STAGE, "--out", str(out),
                               *extra], cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.fail(f"infra.package failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return out


@pytest.fixture(scope="session")
def prod_package() -> Artifact:
    """`make package STAGE=prod`'s artifact, for the stage's declared architecture."""
    from infra.package import architecture_of

    return Artifact(_build(BUILD / STAGE), architecture_of(STAGE))


@pytest.fixture(scope="session")
def x86_package() -> Artifact:
    """The same package built for x86_64, which this host can load (the import check)."""
    return Artifact(_build(BUILD / f"{STAGE}-x86_64", "--architecture", "x86_64"), "x86_64")


@pytest.fixture(scope="session")
def unzipped_x86(x86_package: Artifact, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("task")
    with zipfile.ZipFile(x86_package.function_zip) as zf:
        zf.extractall(target)
    return target
