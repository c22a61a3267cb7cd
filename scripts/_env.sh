# Sourced by scripts/demo and scripts/test: make sure .venv exists and holds jobvisor
# (editable) with its dev tools, then put it first on PATH. Idempotent and quick when
# nothing changed: the install is redone only when the packaging files change.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${JOBVISOR_VENV:-$ROOT/.venv}"
PYTHON_BIN="${PYTHON:-python3}"

_jv_stamp() {
    cat "$ROOT/setup.cfg" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1
}

if ! "$PYTHON_BIN" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "jobvisor needs Python >= 3.11 (found: $("$PYTHON_BIN" --version 2>&1))" >&2
    exit 1
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating virtual environment in $VENV" >&2
    "$PYTHON_BIN" -m venv "$VENV"
fi

if [ "$(cat "$VENV/.jobvisor-stamp" 2>/dev/null || true)" != "$(_jv_stamp)" ]; then
    echo "==> installing jobvisor and its dev tools into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT[dev]"
    _jv_stamp > "$VENV/.jobvisor-stamp"
fi

export PATH="$VENV/bin:$PATH"
export VIRTUAL_ENV="$VENV"
cd "$ROOT"
