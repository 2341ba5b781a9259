#!/bin/sh
# The image's build stage: the project's wheel and a wheel of every runtime dependency, pinned by
# constraints.txt, into OUTDIR. The Dockerfile runs this script and tests/packaging runs it the
# same way (there is no Docker daemon in CI), so what the test installs is what the image installs.
set -eu
out="${1:?usage: scripts/build-wheels.sh OUTDIR}"
cd "$(dirname "$0")/.."
"${PYTHON:-python}" -m pip wheel --wheel-dir "$out" --constraint constraints.txt .
