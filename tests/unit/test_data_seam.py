"""The data tier has one seam: only ``chalicelib/repositories`` touches PynamoDB, the DynamoDB client
or the in-process read cache (``chalicelib.cache`` plugs into the seam and nowhere else).

Imports and calls are read from the source with ``ast`` (nothing is imported), so a new module that
reaches past the seam fails here however it spells the import.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REPOSITORIES = ROOT / "chalicelib" / "repositories"
FORBIDDEN_MODULES = ("pynamodb", "chalicelib.models", "chalicelib.cache")
#: Powertools idempotency persists its own records in DynamoDB (``DynamoDBPersistenceLayer``) and
#: needs a DynamoDB client for that; it is the seam's one allowed exception.
ALLOWED_DYNAMODB_CLIENTS = {"chalicelib/pipeline.py": 1}
#: ``models.py`` is the schema and ``aws.py`` binds models to their tables: the layer under the seam.
BELOW_THE_SEAM = {"chalicelib/models.py", "chalicelib/aws.py", "chalicelib/cache.py"}


def _outside_modules() -> list[Path]:
    files = [ROOT / "app.py", *sorted((ROOT / "chalicelib").rglob("*.py"))]
    return [f for f in files if REPOSITORIES not in f.parents and f.relative_to(ROOT).as_posix() not in BELOW_THE_SEAM]


def reach_past_the_seam(source: str) -> tuple[list[str], int]:
    """(forbidden imports, ``client("dynamodb")`` calls) in ``source``."""
    tree = ast.parse(source)
    imports: list[str] = []
    clients = 0
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        imports.extend(n for n in names if any(n == m or n.startswith(m + ".") for m in FORBIDDEN_MODULES))
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in ("client", "resource") and node.args and isinstance(node.args[0], ast.Constant) \
                    and node.args[0].value in ("dynamodb", "dynamodbstreams"):
                clients += 1
    return sorted(set(imports)), clients


def test_the_checker_finds_every_way_past_the_seam():
    source = ("import pynamodb.models\nfrom pynamodb.transactions import TransactWrite\n"
              "from chalicelib import models\nfrom chalicelib.models import PhotoRecord\n"
              "from chalicelib import cache\n"
              "def f():\n    aws.client('dynamodb').get_item()\n    boto3.resource('dynamodb')\n")
    imports, clients = reach_past_the_seam(source)
    assert imports == ["chalicelib.cache", "chalicelib.models", "chalicelib.models.PhotoRecord", "pynamodb.models",
                       "pynamodb.transactions", "pynamodb.transactions.TransactWrite"]
    assert clients == 2
    assert reach_past_the_seam("from chalicelib.repositories import photos\naws.client('s3')\n") == ([], 0)


@pytest.mark.parametrize("path", _outside_modules(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_only_repositories_touch_pynamodb_or_the_dynamodb_client(path: Path):
    imports, clients = reach_past_the_seam(path.read_text())
    assert imports == [], f"{path.name} imports {imports}: go through chalicelib.repositories"
    assert clients == ALLOWED_DYNAMODB_CLIENTS.get(path.relative_to(ROOT).as_posix(), 0)


def test_every_aggregate_has_its_repository():
    present = {p.stem for p in REPOSITORIES.glob("*.py")}
    assert {"users", "photos", "graph", "likes", "counters", "feeds", "sessions", "quotas", "jobs"} <= present
