#!/usr/bin/env bash
# Regenerates deploy/requirements.txt, the image's lock file: every runtime dependency of
# pyproject.toml, and theirs, at one version each with the hashes of all its files on PyPI. Run it
# after changing the dependencies in pyproject.toml (the image's `pip check` fails until then);
# `deploy/lock-requirements.sh --upgrade` moves the unpinned transitive ones to their newest
# versions. pip-tools is pinned too, in a throwaway venv, so the file does not depend on the
# machine that made it (its resolution is for CPython 3.11 on Linux, as in the image).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
venv=$(mktemp -d)
trap 'rm -rf "$venv"' EXIT
"$PYTHON" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "pip-tools==7.6.2"
CUSTOM_COMPILE_COMMAND="deploy/lock-requirements.sh" "$venv/bin/pip-compile" --quiet \
  --generate-hashes --strip-extras --no-emit-index-url --no-emit-find-links \
  --output-file deploy/requirements.txt "$@" pyproject.toml
