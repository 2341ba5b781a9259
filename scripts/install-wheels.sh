#!/bin/sh
# The image's final stage: a virtualenv at VENV with agentos-session installed from the wheels in
# WHEELS and nothing else (no index: a dependency missing from the build stage fails here, not at
# run time). tests/packaging runs this script too, on the wheels of scripts/build-wheels.sh.
set -eu
wheels="${1:?usage: scripts/install-wheels.sh WHEELS VENV}"
venv="${2:?usage: scripts/install-wheels.sh WHEELS VENV}"
"${PYTHON:-python}" -m venv "$venv"
"$venv/bin/pip" install --no-cache-dir --no-index --find-links "$wheels" agentos-session
