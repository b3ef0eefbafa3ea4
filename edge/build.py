#!/usr/bin/env python3
"""Build the web client: ``edge/index.html`` + ``edge/src/`` → ``edge/dist/`` with content-hashed assets.

Rules:
- Every file under ``src/`` is copied to ``dist/assets/`` keeping its folder, renamed ``name.<hash>.ext``
  where ``<hash>`` is the first 10 hex digits of the SHA-256 of its *final* bytes. JS import specifiers
  (``from "./x.js"``, ``import "./x.js"``, ``import("./x.js")``) and CSS ``url(...)`` references to other
  source files are rewritten first, so a change anywhere changes the hash of everything that imports it.
  Import cycles are rejected (they would make the hash undefined).
- ``index.html`` is copied with ``/src/...`` references rewritten to the hashed ``/assets/...`` names, plus a
  ``<link rel="modulepreload">`` per module (no request waterfall). It is the only unhashed file: the edge
  serves it with ``Cache-Control: no-cache`` and hashed assets as ``immutable``.
- The build writes a sibling temp folder and swaps it in, so a running server never sees half a build.
Standard library only. Usage: ``python edge/build.py [--out DIR]``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import posixpath
import re
import shutil
import sys
from pathlib import Path

EDGE = Path(__file__).resolve().parent
SRC = EDGE / "src"
INDEX = EDGE / "index.html"
OUT = EDGE / "dist"
HASH_LENGTH = 10

JS_IMPORT = re.compile(r"""(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(["'])(\.{1,2}/[^"'\s]+)\2""")
CSS_URL = re.compile(r"""url\(\s*(["']?)(?!data:|https?:|//|#)([^"')\s]+)\1\s*\)""")
HTML_SRC_REF = re.compile(r"""(["'])/src/([^"'?#]+)\1""")


class BuildError(Exception):
    pass


class Builder:
    def __init__(self, src: Path = SRC, index: Path = INDEX) -> None:
        self.src = src
        self.index = index
        self.hashed: dict[str, str] = {}  # source path (posix, relative to src) → hashed relative path
        self.output: dict[str, bytes] = {}  # hashed relative path → bytes
        self._visiting: list[str] = []

    def build_all(self) -> None:
        for path in sorted(p for p in self.src.rglob("*") if p.is_file()):
            if path.name.startswith("."):
                continue
            self.asset(path.relative_to(self.src).as_posix())

    def asset(self, rel: str) -> str:
        """Hashed relative path of source file ``rel``, building it (and its imports) on first use."""
        if rel in self.hashed:
            return self.hashed[rel]
        if rel in self._visiting:
            cycle = " → ".join(self._visiting[self._visiting.index(rel):] + [rel])
            raise BuildError(f"import cycle: {cycle}")
        source = self.src / rel
        if not source.is_file():
            importer = self._visiting[-1] if self._visiting else "index.html"
            raise BuildError(f"{importer} references {rel}, which does not exist")
        self._visiting.append(rel)
        try:
            data = source.read_bytes()
            if source.suffix in (".js", ".mjs"):
                data = self._rewrite(rel, data.decode("utf-8"), JS_IMPORT, spec_group=3).encode("utf-8")
            elif source.suffix == ".css":
                data = self._rewrite(rel, data.decode("utf-8"), CSS_URL, spec_group=2).encode("utf-8")
        finally:
            self._visiting.pop()
        digest = hashlib.sha256(data).hexdigest()[:HASH_LENGTH]
        stem, dot, ext = posixpath.basename(rel).partition(".")
        name = f"{stem}.{digest}.{ext}" if dot else f"{stem}.{digest}"
        hashed = posixpath.join(posixpath.dirname(rel), name)
        self.hashed[rel] = hashed
        self.output[hashed] = data
        return hashed

    def _rewrite(self, rel: str, text: str, pattern: re.Pattern, spec_group: int) -> str:
        base = posixpath.dirname(rel)

        def replace(match: re.Match) -> str:
            spec = match.group(spec_group)
            target = posixpath.normpath(posixpath.join(base, spec))
            if target.startswith("../"):
                raise BuildError(f"{rel}: {spec} points outside src/")
            hashed = self.asset(target)
            new_spec = posixpath.relpath(hashed, base or ".")
            if not new_spec.startswith("."):
                new_spec = "./" + new_spec
            start, end = match.span(spec_group)
            whole_start = match.start()
            return match.group(0)[: start - whole_start] + new_spec + match.group(0)[end - whole_start:]

        return pattern.sub(replace, text)

    def index_html(self) -> str:
        text = self.index.read_text("utf-8")
        referenced: list[str] = []

        def replace(match: re.Match) -> str:
            hashed = self.asset(match.group(2))
            referenced.append(hashed)
            return f"{match.group(1)}/assets/{hashed}{match.group(1)}"

        text = HTML_SRC_REF.sub(replace, text)
        entry = next((h for h in referenced if h.endswith(".js")), None)
        modules = sorted(h for h in self.output if h.endswith(".js") and h != entry)
        if modules:
            preload = "".join(f'  <link rel="modulepreload" href="/assets/{m}">\n' for m in modules)
            text = text.replace("</head>", preload + "</head>", 1)
        return text


def build(out: Path = OUT) -> dict[str, str]:
    builder = Builder()
    html = builder.index_html()
    builder.build_all()
    tmp = out.with_name(out.name + ".tmp")
    old = out.with_name(out.name + ".old")
    for leftover in (tmp, old):
        if leftover.exists():
            shutil.rmtree(leftover)
    (tmp / "assets").mkdir(parents=True)
    for rel, data in builder.output.items():
        target = tmp / "assets" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    manifest = {f"src/{k}": f"assets/{v}" for k, v in sorted(builder.hashed.items())}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
    (tmp / "index.html").write_text(html, "utf-8")
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    if old.exists():
        shutil.rmtree(old)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="output folder (default: edge/dist)")
    args = parser.parse_args(argv)
    try:
        manifest = build(args.out.resolve())
    except BuildError as exc:
        print(f"edge build failed: {exc}", file=sys.stderr)
        return 1
    print(f"edge build: {len(manifest)} assets → {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
