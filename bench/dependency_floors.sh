#!/usr/bin/env bash
# Run the whole test suite on the lowest versions pyproject.toml allows (docs/dependencies.md).
#
# Every direct dependency (runtime and dev) is held at its floor — uv's `--resolution lowest-direct` —
# while indirect ones resolve to the newest release that the floors accept, which is what a fresh
# `pip install moneytrail` next to an old pinned dependency gets. Not part of `make test` (it installs
# ~90 packages from PyPI); run it by hand after changing a floor:
#
#   bash bench/dependency_floors.sh [VENV_DIR]      # default /tmp/moneytrail-floors; 6–10 minutes
#
# Needs python3.11, network access to PyPI, npm for anvil (`make anvil`) and /usr/bin/chromium (`make browser`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-/tmp/moneytrail-floors}"
TOOLS="$VENV-uv"
PYTHON="${PYTHON:-python3.11}"

# uv comes from PyPI into its own venv, so neither the project's .venv nor the system Python is touched.
[ -x "$TOOLS/bin/uv" ] || { "$PYTHON" -m venv "$TOOLS" && "$TOOLS/bin/pip" install -q uv; }
UV="$TOOLS/bin/uv"

cd "$ROOT"
LOCK="$VENV.lowest.txt"
"$UV" pip compile -q --resolution lowest-direct --python-version 3.11 --extra dev pyproject.toml -o "$LOCK"
[ -x "$VENV/bin/python" ] || "$UV" venv -q --python "$PYTHON" "$VENV"
"$UV" pip sync -q --python "$VENV/bin/python" "$LOCK"

echo "floors under test (direct dependencies of pyproject.toml):"
names=$("$VENV/bin/python" - <<'EOF'
import re, tomllib
p = tomllib.load(open("pyproject.toml", "rb"))["project"]
deps = p["dependencies"] + p["optional-dependencies"]["dev"]
print(" ".join(re.split(r"[<>=!~ \[]", d, maxsplit=1)[0].lower() for d in deps))
EOF
)
for n in $names; do grep -i -E "^$n==" "$LOCK" | sed 's/^/  /'; done

make -s anvil >/dev/null
export PATH="$ROOT/.tools/node_modules/.bin:$PATH"
export PYTHONPATH="$ROOT"
"$VENV/bin/ruff" check --no-cache tracer heuristics dashboard tests bench
# -p no:cacheprovider: leave the clone's .pytest_cache to the normal venv
"$VENV/bin/python" -m pytest -q -p no:cacheprovider "${@:2}"
