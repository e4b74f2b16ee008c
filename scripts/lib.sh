# Shared by scripts/run and scripts/test: a virtualenv with the project's dependencies,
# reinstalled only when pyproject.toml changes.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

# ensure_venv [EXTRAS]: the project installed (editable) with those optional dependencies.
ensure_venv() {
  local extras="${1:-}" target="$ROOT" stamp
  if [ ! -x "$PY" ]; then
    python3 -m venv "$VENV"
    "$PY" -m pip install --quiet --upgrade pip
  fi
  stamp="$VENV/.installed-$extras-$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    echo "Installing Python dependencies into .venv ..."
    [ -n "$extras" ] && target="$ROOT[$extras]"
    "$PY" -m pip install --quiet -e "$target"
    touch "$stamp"
  fi
}

# apt_install COMMAND PACKAGE...: install the Debian packages when COMMAND is missing.
apt_install() {
  local command="$1"; shift
  command -v "$command" >/dev/null 2>&1 && return 0
  echo "Installing $* (Debian packages) ..."
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}
