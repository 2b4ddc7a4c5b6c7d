#!/usr/bin/env bash
# Install an rpy2 that loads with the R on this machine (see docs/rpy2.md for the measurements).
#
# Why a script and not a pin in pyproject.toml: the rpy2 that works depends on the R version.
# rpy2-rinterface >= 3.6.6 (pulled in by every rpy2 3.6.x, since `rpy2` became a meta-package
# over rpy2-rinterface/rpy2-robjects without upper bounds) calls R_getVar and R_ParentEnv,
# which exist only from R 4.5.0 on. On R 4.2.2 it fails to load with
#   undefined symbol: R_ParentEnv      (API mode)
#   symbol 'R_getVar' not found in library '.../libR.so'   (ABI mode fallback)
# So: R < 4.5 -> rpy2 3.5.x (last: 3.5.17); R >= 4.5 -> rpy2 >= 3.6.
#
# rpy2 builds its cffi interface at install time: ABI mode always, API mode (a compiled module,
# 1.3-4x faster per call) only when a test compile/link against `R CMD config --ldflags`
# succeeds. That link needs R's headers and the -dev packages of every library R names there
# (on Debian: r-base-dev, plus libtirpc-dev for -ltirpc). When they are missing rpy2 silently
# builds ABI mode only; this script installs them when it can (root + apt-get), and says which
# mode it got.
#
# Usage: bash scripts/install_rpy2.sh [--abi] [--dry-run]
#   PYTHON=/path/to/python  chooses the interpreter (default: python3)
#   --abi       skip the build dependencies and install the ABI mode only
#   --dry-run   print the pip requirement that would be installed and exit
set -euo pipefail

PYTHON="${PYTHON:-python3}"
MODE="ANY"
DRY_RUN=0
for arg in "$@"; do
    case "$arg" in
        --abi) MODE="ABI" ;;
        --dry-run) DRY_RUN=1 ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "install_rpy2.sh: unknown option $arg" >&2; exit 2 ;;
    esac
done

say() { printf 'install_rpy2: %s\n' "$*" >&2; }

if ! command -v Rscript >/dev/null 2>&1 || ! command -v R >/dev/null 2>&1; then
    say "R is not on PATH. Install it first:"
    say "  apt-get install r-base-core r-cran-lme4 r-cran-ordinal"
    exit 1
fi

# "4 2.2" -> major 4, minor 2
R_VERSION_WORDS="$(Rscript --vanilla -e 'cat(R.version$major, R.version$minor)')"
R_MAJOR="${R_VERSION_WORDS%% *}"
R_MINOR_FULL="${R_VERSION_WORDS#* }"
R_MINOR="${R_MINOR_FULL%%.*}"
R_VERSION="${R_MAJOR}.${R_MINOR_FULL}"
say "found R ${R_VERSION} ($(command -v R))"

if [ "$R_MAJOR" -lt 4 ]; then
    say "R ${R_VERSION} is older than 4.0, which rpy2 3.5 needs; install a newer R"
    exit 1
fi
if [ "$R_MAJOR" -eq 4 ] && [ "$R_MINOR" -lt 5 ]; then
    # rpy2-rinterface 3.6.0-3.6.5 also load on R 4.2 (measured), but every rpy2 3.6.x meta
    # release resolves to the newest rpy2-rinterface, which does not; 3.5.17 is one package.
    REQUIREMENT='rpy2>=3.5.17,<3.6'
else
    REQUIREMENT='rpy2>=3.6.6'
fi
say "R ${R_VERSION} -> ${REQUIREMENT}"
if [ "$DRY_RUN" -eq 1 ]; then
    echo "$REQUIREMENT"
    exit 0
fi

# ---- build prerequisites for the API mode ------------------------------------------------------
can_link_r() {
    # The same check rpy2's setup.py makes: compile and link a stub against R's flags.
    local tmp rc
    tmp="$(mktemp -d)"
    printf '#include <Rinternals.h>\nint main(void){ return Rf_isNull(R_NilValue) ? 0 : 1; }\n' \
        > "$tmp/t.c"
    # shellcheck disable=SC2046
    if cc $(R CMD config --cppflags) "$tmp/t.c" -o "$tmp/t" $(R CMD config --ldflags) \
        >"$tmp/log" 2>&1; then rc=0; else rc=1; cat "$tmp/log" >&2; fi
    rm -rf "$tmp"
    return $rc
}

if [ "$MODE" = "ANY" ]; then
    if command -v cc >/dev/null 2>&1 && can_link_r; then
        say "C compiler and R link flags work: the API mode will be built"
    elif [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "cannot compile against R yet; installing r-base-dev libtirpc-dev with apt-get"
        apt-get install -y -qq r-base-dev libtirpc-dev >/dev/null || {
            apt-get update -qq && apt-get install -y -qq r-base-dev libtirpc-dev >/dev/null; }
        if can_link_r; then
            say "build prerequisites installed: the API mode will be built"
        else
            say "still cannot link against R: rpy2 will fall back to the ABI mode"
        fi
    else
        say "cannot compile against R and cannot apt-get install r-base-dev libtirpc-dev:"
        say "rpy2 will fall back to the ABI mode (slower per call, fine for model fits)"
    fi
fi

# --no-cache-dir: never reuse a wheel cached from a build against another R or without the API mode.
RPY2_CFFI_MODE="$MODE" "$PYTHON" -m pip install --no-cache-dir \
    "$REQUIREMENT" >&2

# ---- check it loads, and say which mode ----------------------------------------------------------
"$PYTHON" - <<'EOF'
import importlib.metadata as md
import rpy2.robjects as ro

try:
    import _rinterface_cffi_api  # noqa: F401  (the compiled API-mode module)
    mode = "API"
except ImportError:
    mode = "ABI"
assert ro.r("1 + 1")[0] == 2
ok = ro.r('isTRUE(requireNamespace("lme4", quietly = TRUE))')[0]  # r() gives None for invisible values
print(f"install_rpy2: rpy2 {md.version('rpy2')} loads {ro.r('R.version.string')[0]} "
      f"in {mode} mode; lme4 {'loads' if ok else 'is NOT installed (apt-get install r-cran-lme4)'}")
EOF
