"""What `make package STAGE=prod` produces is deployable on Lambda: runtime, binaries, size, template."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from infra.package import IMAGING_FUNCTIONS, REPORT_BATCH_ITEM_FAILURES, deploy_settings
from infra.policies import FUNCTIONS, function_name

ROOT = Path(__file__).resolve().parents[2]

RUNTIME = deploy_settings()["runtime"]
# glibc of the Lambda base image per runtime (Amazon Linux 2023 for python3.12+).
RUNTIME_GLIBC = {"python3.12": (2, 34), "python3.13": (2, 34), "python3.14": (2, 34)}
ELF_MACHINE = {"arm64": 183, "x86_64": 62}  # e_machine: EM_AARCH64, EM_X86_64
WHEEL_MACHINE = {"arm64": "aarch64", "x86_64": "x86_64"}
MB = 2**20
DIRECT_UPLOAD_LIMIT = 50 * MB  # zipped, direct upload
UNZIPPED_LIMIT = 250 * MB  # function + all its layers
DEV_ONLY = ("moto", "pytest", "_pytest", "playwright", "cfnlint", "pytest_socket", "xdist", "numpy",
            "matplotlib", "chalice/cli", "chalice/deploy", "chalice/local.py", "chalice/package.py")


def _functions(template: dict) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}


def _names(zip_path: Path) -> list[str]:
    with zipfile.ZipFile(zip_path) as zf:
        return zf.namelist()


def _elf_facts(data: bytes) -> tuple[int, tuple[int, int]]:
    """(e_machine, newest GLIBC_2.x symbol version referenced) of an ELF file."""
    assert data[:4] == b"\x7fELF"
    machine = int.from_bytes(data[18:20], "little")
    versions = [(2, int(m)) for m in re.findall(rb"GLIBC_2\.(\d+)", data)]
    return machine, max(versions, default=(2, 0))


def _compiled_files(zip_path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(zip_path) as zf:
        return {n: zf.read(n) for n in zf.namelist() if re.search(r"\.so(\.\d+)*$", n)}


def _wheel_tags(zip_path: Path) -> dict[str, list[str]]:
    with zipfile.ZipFile(zip_path) as zf:
        return {n: [line.split(":", 1)[1].strip() for line in zf.read(n).decode().splitlines()
                    if line.startswith("Tag:")]
                for n in zf.namelist() if n.endswith(".dist-info/WHEEL")}


# --------------------------------------------------------------------------- runtime and binaries


def test_every_function_has_the_declared_runtime_and_architecture(prod_package) -> None:
    # Given the packaged template
    functions = _functions(prod_package.template)
    # Then all five functions run on the runtime from infra/deploy.json and the stage's architecture
    assert len(functions) == len(FUNCTIONS)
    for logical_id, function in functions.items():
        assert function["Properties"]["Runtime"] == RUNTIME, logical_id
        assert function["Properties"]["Architectures"] == [prod_package.architecture], logical_id
    assert prod_package.architecture == "arm64"  # .chalice/config.json, stage prod


@pytest.mark.parametrize("which", ["function_zip", "layer_zip"])
def test_every_compiled_file_matches_the_architecture_and_the_runtime_glibc(prod_package, which: str) -> None:
    # Given the shared objects in the function package and in the imaging layer
    compiled = _compiled_files(getattr(prod_package, which))
    assert compiled, "expected compiled extensions (pydantic-core, cryptography / libvips, Pillow)"
    # Then each is an ELF for the function's architecture needing no newer glibc than the runtime has
    for name, data in compiled.items():
        machine, glibc = _elf_facts(data)
        assert machine == ELF_MACHINE[prod_package.architecture], name
        assert glibc <= RUNTIME_GLIBC[RUNTIME], f"{name} needs GLIBC_{glibc[0]}.{glibc[1]}"


@pytest.mark.parametrize("which", ["function_zip", "layer_zip"])
def test_every_wheel_tag_is_pure_or_for_the_target_platform(prod_package, which: str) -> None:
    # Given the WHEEL metadata of every installed distribution
    machine = WHEEL_MACHINE[prod_package.architecture]
    major, minor = RUNTIME_GLIBC[RUNTIME]
    for dist, tags in _wheel_tags(getattr(prod_package, which)).items():
        for tag in tags:
            platform = tag.split("-")[-1]
            # Then the platform is "any" or a manylinux tag of this machine and an old-enough glibc
            if platform == "any":
                continue
            found = re.fullmatch(rf"manylinux_(\d+)_(\d+)_{machine}", platform.replace("manylinux2014", "manylinux_2_17"))
            assert found, f"{dist}: {tag}"
            assert (int(found[1]), int(found[2])) <= (major, minor), f"{dist}: {tag}"


def test_libvips_ships_in_the_workers_layer_and_not_in_the_api_package(prod_package) -> None:
    # Given both zips
    layer, function = _names(prod_package.layer_zip), _names(prod_package.function_zip)
    # Then the layer holds libvips, its binding, Pillow and pi-heif under python/ (Lambda's /opt/python)
    assert any(re.search(r"^python/pyvips_binary\.libs/libvips[^/]*\.so", n) for n in layer)
    for module in ("pyvips/__init__.py", "PIL/Image.py", "pi_heif/__init__.py"):
        assert f"python/{module}" in layer, module
    # And the function package (every function's code) has none of them
    assert not [n for n in function if n.split("/")[0] in ("pyvips", "pyvips_binary.libs", "PIL", "pillow.libs",
                                                          "pi_heif", "pi_heif.libs")]


def test_no_development_dependency_is_inside(prod_package) -> None:
    # Given every file of the function package and the layer
    names = _names(prod_package.function_zip) + [n.removeprefix("python/") for n in _names(prod_package.layer_zip)]
    # Then nothing of the test and build toolchain ships (Chalice's runtime module chalice/app.py may)
    assert [n for n in names if n.startswith(DEV_ONLY)] == []
    assert not [n for n in names if n.startswith(("tests/", "devstack/", "bench/", "infra/", "edge/"))]


def test_sizes_are_within_lambda_limits(prod_package, capsys: pytest.CaptureFixture[str]) -> None:
    # Given the function package and the imaging layer
    sizes = {}
    for label, path in (("function", prod_package.function_zip), ("layer", prod_package.layer_zip)):
        with zipfile.ZipFile(path) as zf:
            sizes[label] = (path.stat().st_size, sum(i.file_size for i in zf.infolist()))
    with capsys.disabled():  # shown in every `make test` run
        print("\nprod package sizes: " + "; ".join(f"{k} {z / MB:.1f} MB zipped, {u / MB:.1f} MB unzipped"
                                                   for k, (z, u) in sizes.items()))
    # Then each zip can be uploaded directly, and a worker (function + layer) unzips within 250 MB
    assert sizes["function"][0] <= DIRECT_UPLOAD_LIMIT and sizes["layer"][0] <= DIRECT_UPLOAD_LIMIT
    assert sizes["function"][1] + sizes["layer"][1] <= UNZIPPED_LIMIT


# --------------------------------------------------------------------------- template


def test_packaged_template_passes_cfn_lint(prod_package) -> None:
    # When cfn-lint checks sam.json / Then it reports nothing
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), str(prod_package.out / "sam.json")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_sqs_event_source_reports_batch_item_failures(prod_package) -> None:
    # Given the SQS event sources in the packaged template
    events = [(logical_id, event) for logical_id, fn in _functions(prod_package.template).items()
              for event in fn["Properties"].get("Events", {}).values() if event["Type"] == "SQS"]
    # Then there is one per worker and each reports individual failures
    assert len(events) == 3
    for logical_id, event in events:
        assert REPORT_BATCH_ITEM_FAILURES in event["Properties"]["FunctionResponseTypes"], logical_id


def test_log_groups_name_the_functions_they_belong_to(prod_package) -> None:
    # Given the template's log groups and functions
    resources = prod_package.template["Resources"]
    names = {fn["Properties"]["FunctionName"] for fn in _functions(prod_package.template).values()}
    groups = [r["Properties"]["LogGroupName"] for r in resources.values() if r["Type"] == "AWS::Logs::LogGroup"]
    # Then each function (named as `chalice deploy` names it) has its own log group, by literal name
    assert names == {function_name("prod", f) for f in FUNCTIONS}
    assert sorted(groups) == sorted(f"/aws/lambda/{n}" for n in names)


def test_the_imaging_layer_is_attached_to_the_image_workers_only(prod_package) -> None:
    resources = prod_package.template["Resources"]
    with_layer = {fn["Properties"]["FunctionName"] for fn in _functions(prod_package.template).values()
                  if {"Ref": "ImagingLayer"} in fn["Properties"].get("Layers", [])}
    assert with_layer == {function_name("prod", f) for f in IMAGING_FUNCTIONS}
    layer = resources["ImagingLayer"]["Properties"]
    assert layer["CompatibleRuntimes"] == [RUNTIME] and layer["CompatibleArchitectures"] == ["arm64"]
    assert (prod_package.out / layer["ContentUri"]).resolve() == prod_package.layer_zip.resolve()


def test_the_api_stage_is_throttled_as_declared(prod_package) -> None:
    throttle = deploy_settings()["throttling"]["prod"]
    settings = prod_package.template["Resources"]["RestAPI"]["Properties"]["MethodSettings"]
    assert settings == [{"ResourcePath": "/*", "HttpMethod": "*", "ThrottlingRateLimit": throttle["rate_limit"],
                         "ThrottlingBurstLimit": throttle["burst_limit"]}]


def test_role_policies_use_the_stack_region_and_account(prod_package) -> None:
    # Given the per-function roles in the template
    roles = [r for r in prod_package.template["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
    assert len(roles) == len(FUNCTIONS)
    text = json.dumps([r["Properties"]["Policies"] for r in roles])
    # Then no resource spans every region/account, and pseudo parameters are substituted by CloudFormation
    assert ":*:*:" not in text and "photoscale-*" not in text
    assert '{"Fn::Sub": "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/photoscale-prod-' in text


# --------------------------------------------------------------------------- import as Lambda would

IMPORT_AS_LAMBDA = r"""
import json, sys
task = sys.argv[1]
sys.path[:] = [task] + [p for p in sys.path if p and "site-packages" not in p]
import app
class Context:
    function_name = "photoscale-prod"; function_version = "$LATEST"; memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:photoscale-prod"
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    def get_remaining_time_in_millis(self): return 29000
event = {
    "resource": "/auth/signup", "path": "/auth/signup", "httpMethod": "POST",
    "headers": {"content-type": "application/json"}, "multiValueHeaders": {"content-type": ["application/json"]},
    "queryStringParameters": None, "multiValueQueryStringParameters": None, "pathParameters": None,
    "stageVariables": None, "body": "{\"username\": \"\"}", "isBase64Encoded": False,
    "requestContext": {"resourcePath": "/auth/signup", "httpMethod": "POST", "path": "/api/auth/signup",
                       "stage": "api", "requestId": "r-1", "identity": {"sourceIp": "192.0.2.1"}},
}
response = app.app(event, Context())
outside = sorted({m.__file__ for m in list(sys.modules.values())
                  if getattr(m, "__file__", None) and "site-packages" in m.__file__})
print(json.dumps({"status": response["statusCode"], "body": json.loads(response["body"]), "outside": outside}))
"""


def test_packaged_api_imports_from_the_package_alone_and_answers_a_pure_route(unzipped_x86: Path,
                                                                             tmp_path: Path) -> None:
    # Given the x86_64 build of the prod package, unzipped, and the prod stage's environment
    from bench.coldstart import prod_environment

    env = prod_environment(tmp_path)
    env["AWS_EXECUTION_ENV"] = f"AWS_Lambda_{RUNTIME}"
    python = subprocess.run([str(ROOT / "infra" / "find_python.sh"), RUNTIME.removeprefix("python")],
                            capture_output=True, text=True).stdout.strip()
    assert python, f"no {RUNTIME} interpreter found"
    # When a fresh runtime interpreter, whose path is only the package and the stdlib, imports app and
    # handles an invalid sign-up (validated before any AWS call)
    proc = subprocess.run([python, "-I", "-S", "-c", IMPORT_AS_LAMBDA, str(unzipped_x86)], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    # Then it answers 400 with our error body, having loaded nothing from outside the package
    assert result["status"] == 400, result
    assert set(result["body"]["error"]) >= {"code", "message"}
    assert result["outside"] == []


def test_the_api_carries_our_json_gateway_responses(prod_package) -> None:
    # Given infra/gateway_responses.json (what post_deploy applies on the chalice-deploy path)
    from infra.post_deploy import load_gateway_responses

    responses = prod_package.template["Resources"]["RestAPI"]["Properties"]["GatewayResponses"]
    # Then the packaged API has each of them, with our error body
    for response_type, expected in load_gateway_responses().items():
        got = responses[response_type]
        assert json.loads(got["ResponseTemplates"]["application/json"]) == expected.body()
        assert got.get("StatusCode") == expected.status_code
        assert got["ResponseParameters"]["Headers"] == expected.header_values()
    # And an authorizer outage is a 503 that says when to retry
    assert responses["AUTHORIZER_CONFIGURATION_ERROR"]["StatusCode"] == 503
    assert "Retry-After" in responses["AUTHORIZER_CONFIGURATION_ERROR"]["ResponseParameters"]["Headers"]
