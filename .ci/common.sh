# Sourced by .ci/serial and .ci/sanitize, which build gconv in a way the checkout's own build
# must not be replaced with (a serial or an ASan-instrumented extension). scratch_copy NAME
# copies this checkout as it stands (tracked files and untracked ones git does not ignore, so
# uncommitted changes and new tests count; no build products) into a fresh directory and cds
# there; each script then builds in place in the copy and tests that build. The copy is
# removed when the script succeeds and kept, its path printed, when it fails.

scratch_copy() {
    local src
    src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/gconv-$1.XXXXXX")"
    trap 'status=$?; if [ $status -eq 0 ]; then rm -rf "$SCRATCH"; else echo "$(basename "$0"): failed (exit $status); the build is kept in $SCRATCH" >&2; fi' EXIT
    python - "$src" "$SCRATCH" <<'PY'
import os, shutil, subprocess, sys
src, dst = sys.argv[1:]
try:
    listed = subprocess.run(["git", "-C", src, "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], check=True, capture_output=True).stdout
    files = [f for f in listed.decode().split("\0") if f]
except (OSError, subprocess.CalledProcessError):    # not a git checkout: all but build products
    files = []
    for d, dirs, names in os.walk(src):
        dirs[:] = [x for x in dirs if x not in (".git", "build", "dist", "__pycache__")]
        files += [os.path.relpath(os.path.join(d, f), src) for f in names
                  if not f.endswith((".so", ".o", ".pyd"))]
for f in files:
    path = os.path.join(src, f)
    if os.path.isfile(path):                          # a deleted tracked file is left out
        os.makedirs(os.path.dirname(os.path.join(dst, f)), exist_ok=True)
        shutil.copy2(path, os.path.join(dst, f))
PY
    cd "$SCRATCH"
    echo "$(basename "$0"): building and testing a copy of $src in $SCRATCH"
}

# the build in the copy is the one imported, not one installed in site-packages ($1: python)
check_imported_from_copy() {
    "${1:-python}" -c 'import gconv, os, sys
here, where = os.path.realpath(os.getcwd()), os.path.realpath(gconv.__file__)
sys.exit(0 if where.startswith(here + os.sep) else f"gconv was imported from {where}, not from the copy {here}")'
}
