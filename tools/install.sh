#!/usr/bin/env bash
# Creates the virtual environment $VENV on Python 3.9 and installs asrk2 with
# every dependency pinned by constraints.txt. Called by `make install`.
#
# kaldifeat has no wheel on PyPI; its sdist is built once as a torch C++
# extension and the wheel cached in .cache/wheels, so later installs take seconds.
set -euo pipefail
VENV=${VENV:-.venv}
CACHE=${CACHE:-.cache}
KALDIFEAT_VERSION=$(sed -n 's/^kaldifeat==//p' constraints.txt)

tools/install_system_deps.sh

if [ ! -x "$VENV/bin/python" ]; then
  python39=$(tools/find_python.sh)
  echo "Creating $VENV with $python39"
  "$python39" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 9))'; then
  echo "error: $VENV is not a Python 3.9 environment; remove it and run make install again." >&2
  exit 1
fi

pip=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install -q -c constraints.txt --upgrade pip setuptools wheel ninja
"${pip[@]}" install -q -c constraints.txt torch

torch_version=$("$VENV/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])')
wheel=$(ls "$CACHE"/wheels/kaldifeat-"$KALDIFEAT_VERSION"+torch"$torch_version"-cp39-*.whl 2>/dev/null | head -n 1 || true)
if [ -z "$wheel" ]; then
  echo "Building kaldifeat $KALDIFEAT_VERSION for torch $torch_version (a few minutes, once)"
  "${pip[@]}" download -q --no-deps --no-binary :all: -d "$CACHE/sdist" "kaldifeat==$KALDIFEAT_VERSION"
  "$VENV/bin/python" tools/build_kaldifeat.py \
    --sdist "$CACHE/sdist/kaldifeat-$KALDIFEAT_VERSION.tar.gz" --wheel-dir "$CACHE/wheels"
fi

"${pip[@]}" install -q -c constraints.txt --find-links "$CACHE/wheels" -e ".[dev]"
"$VENV/bin/python" -c 'import k2, kaldifeat, lhotse, torch; print(f"asrk2 environment ready: torch {torch.__version__}, lhotse {lhotse.__version__}, kaldifeat {kaldifeat.__version__}")'
