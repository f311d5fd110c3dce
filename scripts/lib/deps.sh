# shellcheck shell=bash
# Shared by scripts/test and scripts/demo: install what a fresh Debian 12 lacks,
# then configure and build. Sourced, not run.

FHIRSUB_APT_PACKAGES="build-essential autoconf automake libtool pkg-config
 apache2 apache2-dev apache2-utils libaprutil1-dbd-sqlite3 libaprutil1-dbd-pgsql
 libjson-c-dev libjwt-dev libwebsockets-dev libssl-dev check libpq-dev libsqlite3-dev
 sqlite3 postgresql curl ca-certificates"
# Only the tests need these: the console's browser test drives Debian's Chromium (a font so
# that its screenshot shows text); the example site's OAuth branch is checked with
# mod_auth_openidc really loaded (its postinst enables it in the system's apache2, which our
# tests never use); openssl makes test certificates; groff renders the man pages.
# shellcheck disable=SC2034  # used by scripts/test
FHIRSUB_TEST_APT_PACKAGES="chromium fonts-dejavu-core
 libapache2-mod-auth-openidc openssl groff-base"

fhirsub_log() { printf '==> %s\n' "$*"; }

# Install only what is missing, so a prepared machine starts at once. Arguments: more
# packages than FHIRSUB_APT_PACKAGES (scripts/test passes FHIRSUB_TEST_APT_PACKAGES).
fhirsub_install_deps() {
    local missing="" pkg
    for pkg in $FHIRSUB_APT_PACKAGES "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing="$missing $pkg"
    done
    if ! command -v node >/dev/null 2>&1; then missing="$missing nodejs npm"; fi
    if [ -n "$missing" ]; then
        fhirsub_log "installing:$missing"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
        # shellcheck disable=SC2086
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
    fi
    # Debian's apache2 package starts a system httpd on port 80; ours use their own
    # configs and ports, so that one is left alone.
}

# Configure (once) and build with warnings as errors.
fhirsub_build() {
    local top="$1"
    cd "$top" || return 1
    if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
        fhirsub_log "autoreconf"
        autoreconf -fi >/dev/null
    fi
    if [ ! -f Makefile ] || [ configure -nt Makefile ]; then
        fhirsub_log "configure"
        ./configure --enable-werror >/dev/null
    fi
    fhirsub_log "build"
    make -j"$(nproc)" >/dev/null
}

# The test and demo tools from npm, pinned by the lockfile.
fhirsub_npm_deps() {
    local dir="$1"
    if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
        fhirsub_log "npm ci in $dir"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || return 1
        touch "$dir/node_modules"
    fi
}
