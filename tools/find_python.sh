#!/usr/bin/env bash
# Prints the path of a Python 3.9 interpreter, or explains how to get one.
#
# Why 3.9: the only k2 wheel on the package registry (k2==1.23.4) is built for
# CPython 3.9 against torch 1.13.1. Other Pythons need k2 built from source.
#
# Order: $PYTHON if set, python3.9 on PATH, then pyenv's versions folder.
set -u

is_py39() {
  [ -x "$1" ] && "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 9) else 1)' 2>/dev/null
}

if [ -n "${PYTHON:-}" ]; then
  if is_py39 "$(command -v "$PYTHON" || echo "$PYTHON")"; then
    command -v "$PYTHON" || echo "$PYTHON"
    exit 0
  fi
  echo "error: PYTHON=$PYTHON is not a working Python 3.9 interpreter." >&2
  exit 1
fi

for candidate in "$(command -v python3.9 2>/dev/null)" \
    "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.9*/bin/python3.9; do
  if [ -n "$candidate" ] && is_py39 "$candidate"; then
    echo "$candidate"
    exit 0
  fi
done

cat >&2 <<'MSG'
error: no Python 3.9 interpreter found.
asrk2 needs CPython 3.9 because the only k2 wheel on PyPI (k2==1.23.4) is built
for Python 3.9 and torch 1.13.1. Either
  - install it, e.g. `pyenv install 3.9` or `apt-get install python3.9 python3.9-venv`, or
  - point to one: `make install PYTHON=/path/to/python3.9`.
To use another Python/torch, build k2 and kaldifeat yourself (see README.md).
MSG
exit 1
