#!/usr/bin/env bash
# The tools of `make deploy-check`, each set in its own virtualenv, (re)installed only when its
# pins change:
#   .venv-deploy   the project as the Dockerfile installs it (pip install -c constraints.txt .)
#                  plus tests/deploy/requirements.txt: helm-python-sdk, kubernetes-validate, pytest
#   .venv-checkov  checkov, pinned with everything it pulls in (tests/deploy/requirements-checkov.txt);
#                  apart because its pins clash with the project's
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
PIP=(--quiet --disable-pip-version-check)

stamp() { cat "$@" | sha1sum | cut -c1-12; }

# venv_install VENV PIP-ARGS... : create VENV and pip install into it, unless already done for
# the same inputs (the stamp file is named after their hash).
venv_install() {
  local venv=$1 stamp=$2; shift 2
  if [[ -f "$venv/.installed-$stamp" ]]; then return 0; fi
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install "${PIP[@]}" "$@"
  touch "$venv/.installed-$stamp"
}

deploy_stamp=$(stamp pyproject.toml constraints.txt tests/deploy/requirements.txt)
checkov_stamp=$(stamp tests/deploy/requirements-checkov.txt)

# Both at once: they share nothing, and each is mostly waiting on downloads.
venv_install .venv-deploy "$deploy_stamp" \
  -c constraints.txt -r tests/deploy/requirements.txt . &
deploy=$!
venv_install .venv-checkov "$checkov_stamp" -r tests/deploy/requirements-checkov.txt &
checkov=$!
status=0
wait "$deploy" || status=$?
wait "$checkov" || status=$?
exit "$status"
