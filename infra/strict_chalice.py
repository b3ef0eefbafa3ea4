"""Run the Chalice CLI with one change: a dependency it cannot install for Lambda is an error.

Chalice 1.34 catches ``MissingDependencyError`` in ``_build_python_dependencies``, prints
"Could not install dependencies ... your deployment will continue" and builds a package without
them (pyvips-binary on a glibc-2.26 runtime, for example). Here that becomes a failure::

    .venv-package/bin/python -m infra.strict_chalice deploy --stage prod

Used by ``infra.package`` (in-process) and ``make deploy``. Runs in the packaging virtualenv only.
"""
from __future__ import annotations

import sys


class MissingLambdaDependencies(RuntimeError):
    """Some requirement has no wheel (nor buildable sdist) for the target runtime and architecture."""


def make_chalice_strict() -> None:
    """Patch Chalice's packager so missing dependencies raise instead of being skipped (idempotent)."""
    from chalice.deploy import packager

    base = packager.BaseLambdaDeploymentPackager
    if getattr(base, "_photoscale_strict", False):
        return

    def _build_python_dependencies(self, python_version, requirements_filepath, site_packages_dir):
        abi = self._RUNTIME_TO_ABI[python_version]
        try:
            self._dependency_builder.build_site_packages(abi, requirements_filepath, site_packages_dir)
        except packager.MissingDependencyError as exc:
            names = ", ".join(sorted(p.identifier for p in exc.missing))
            raise MissingLambdaDependencies(
                f"cannot install for Lambda {python_version}/{self._architecture}: {names} "
                "(no compatible manylinux wheel and no sdist that builds; check the runtime in "
                "infra/deploy.json and the architecture in .chalice/config.json)") from None

    base._build_python_dependencies = _build_python_dependencies
    base._photoscale_strict = True


def run(argv: list[str]) -> int:
    """Run ``chalice <argv>`` strictly; returns the exit status."""
    make_chalice_strict()
    from chalice.cli import cli

    try:
        cli.main(args=argv, prog_name="chalice", obj={}, standalone_mode=False)
    except MissingLambdaDependencies as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
