#!/usr/bin/env bash
# Print the path of a working python<VERSION> (PATH first, then pyenv's installs), or nothing.
# Used by the Makefile to build .venv-package for the Lambda runtime (infra/deploy.json).
version="$1"
for candidate in "python$version" "$(command -v pyenv >/dev/null 2>&1 && pyenv root)/versions/$version"*/bin/"python$version"; do
  path="$(command -v "$candidate" 2>/dev/null)" || continue
  if "$path" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$version'.split('.'))))" 2>/dev/null; then
    echo "$path"; exit 0
  fi
done
