# lab-common.sh: shared by scripts/cyrus-lab and scripts/courier-lab (sourced, not run).
#
# The caller sets, before sourcing:
#   LAB_NAME   short name for messages ("cyrus-lab")
#   LAB        the lab directory (everything the lab writes lives there)
#   HOST       the address every listener binds
#   PORTS      array of TCP ports the lab listens on
#
# Debian's cyrus-imapd, courier-imap and dovecot-imapd conflict with each other
# (each Provides and Conflicts imap-server), so the server packages are never
# installed: `apt-get download` fetches them and `dpkg -x` unpacks them under
# $LAB/pkg/root; only their ordinary library dependencies are installed with
# apt-get. The servers then run from that tree with LD_LIBRARY_PATH.

MAIL_OWNER=imaptestlab
PKG_DIR=$LAB/pkg
PKG_ROOT=$PKG_DIR/root

log() { printf '%s: %s\n' "$LAB_NAME" "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

need_root() {
    [[ $(id -u) -eq 0 ]] || die "must run as root"
}

take_lock() {
    mkdir -p "$LAB"
    exec 9>"$LAB/lock"
    flock -w 300 9 || die "timed out waiting for the lab lock $LAB/lock"
}

# --- packages ---------------------------------------------------------------

# apt-get wrapped so the packages' own services never start (policy-rc.d).
apt_install() {
    local policy=/usr/sbin/policy-rc.d made_policy=0 rc=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        made_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "$@" </dev/null >&2 || rc=$?
    if ((made_policy)); then rm -f "$policy"; fi
    return "$rc"
}

apt_updated=0
apt_update_once() {
    ((apt_updated)) && return 0
    log "apt-get update"
    apt-get update -qq >&2 || die "apt-get update failed"
    apt_updated=1
}

package_installed() {
    [[ $(dpkg-query -W -f '${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

# The library packages (name starts with "lib") that the unpacked packages
# depend on, first alternative of each group, without versions. Packages that
# are themselves unpacked are left out.
library_dependencies() {
    local deb
    for deb in "$PKG_DIR"/debs/*.deb; do
        dpkg-deb -f "$deb" Depends Pre-Depends
    done | tr ',' '\n' | sed -e 's/|.*//' -e 's/(.*)//' -e 's/:any//' -e 's/[[:space:]]//g' |
        grep '^lib' | sort -u | while read -r dep; do
        [[ -n $dep ]] || continue
        if ! grep -qx "$dep" "$PKG_DIR/unpacked.list" 2>/dev/null; then printf '%s\n' "$dep"; fi
    done
}

# ensure_unpacked SERVER_PACKAGES -- EXTRA_INSTALLED_PACKAGES
# Downloads and unpacks the server packages (once: a stamp records what was
# unpacked) and installs their library dependencies plus the extra packages.
ensure_unpacked() {
    local unpack=() extra=() seen_sep=0 p
    for p in "$@"; do
        if [[ $p == -- ]]; then
            seen_sep=1
        elif ((seen_sep)); then
            extra+=("$p")
        else
            unpack+=("$p")
        fi
    done
    local stamp=$PKG_DIR/unpacked.list
    if [[ ! -s $stamp ]] || [[ $(cat "$stamp") != "$(printf '%s\n' "${unpack[@]}")" ]] ||
        [[ ! -d $PKG_ROOT ]]; then
        command -v apt-get >/dev/null || die "apt-get is needed to fetch ${unpack[*]}"
        log "downloading and unpacking ${unpack[*]} into $PKG_ROOT"
        rm -rf "$PKG_DIR/debs" "$PKG_ROOT" "$stamp"
        mkdir -p "$PKG_DIR/debs"
        # _apt downloads into a directory it can write; the packages are public.
        chown _apt "$PKG_DIR/debs" 2>/dev/null || true
        if ! (cd "$PKG_DIR/debs" && apt-get download -qq "${unpack[@]}" >&2); then
            apt_update_once
            (cd "$PKG_DIR/debs" && apt-get download -qq "${unpack[@]}" >&2) ||
                die "apt-get download ${unpack[*]} failed"
        fi
        mkdir -p "$PKG_ROOT.tmp"
        local deb
        for deb in "$PKG_DIR"/debs/*.deb; do dpkg -x "$deb" "$PKG_ROOT.tmp"; done
        mv "$PKG_ROOT.tmp" "$PKG_ROOT"
        printf '%s\n' "${unpack[@]}" >"$stamp"
    fi
    local need=() dep
    while read -r dep; do
        package_installed "$dep" || need+=("$dep")
    done < <(
        library_dependencies
        printf '%s\n' "${extra[@]}"
    )
    if ((${#need[@]})); then
        log "installing ${need[*]} with apt-get"
        apt_install "${need[@]}" || {
            apt_update_once
            apt_install "${need[@]}" || die "apt-get install ${need[*]} failed"
        }
    fi
}

# The library search path for programs run from the unpacked tree.
pkg_library_path() {
    local dirs=() d
    for d in "$PKG_ROOT"/usr/lib/*-linux-gnu "$PKG_ROOT"/usr/lib; do
        [[ -d $d ]] && dirs+=("$d")
    done
    local IFS=:
    printf '%s\n' "${dirs[*]}"
}

# Fails naming the first program whose shared libraries cannot all be found.
check_libraries() {
    local prog missing
    for prog in "$@"; do
        [[ -e $prog ]] || die "$prog is missing from the unpacked packages"
        missing=$(LD_LIBRARY_PATH=$(pkg_library_path) ldd "$prog" 2>/dev/null | grep 'not found' || true)
        [[ -z $missing ]] || die "$prog: shared libraries not found: $missing"
    done
}

ensure_mail_owner() {
    if ! getent passwd "$MAIL_OWNER" >/dev/null; then
        log "creating system user $MAIL_OWNER (owner of the lab's mail)"
        useradd --system --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin --user-group "$MAIL_OWNER"
    fi
    MAIL_UID=$(id -u "$MAIL_OWNER")
    MAIL_GID=$(id -g "$MAIL_OWNER")
}

# --- processes and ports ----------------------------------------------------

# pid_alive PIDFILE COMM: prints the pid if the file names a live process
# whose command name is COMM (guards against a recycled pid).
pid_alive() {
    local pid
    [[ -s $1 ]] || return 1
    pid=$(head -n 1 "$1" 2>/dev/null) || return 1
    pid=${pid//[[:space:]]/}
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$2" ]] || return 1
    printf '%s\n' "$pid"
}

port_open() {
    # shellcheck disable=SC2016 # $0/$1 expand in the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HOST" "$1" 2>/dev/null
}

all_ports_open() {
    local p
    for p in "${PORTS[@]}"; do port_open "$p" || return 1; done
}

any_port_open() {
    local p
    for p in "${PORTS[@]}"; do port_open "$p" && return 0; done
    return 1
}

# Dies naming the ports that something else already listens on.
ensure_ports_free() {
    local p busy=()
    for p in "${PORTS[@]}"; do
        if port_open "$p"; then busy+=("$p"); fi
    done
    ((${#busy[@]} == 0)) && return 0
    if command -v ss >/dev/null; then ss -ltnp 2>/dev/null | grep -E ":($(
        IFS='|'
        echo "${busy[*]}"
    ))\b" >&2 || true; fi
    die "cannot start: ports busy: ${busy[*]}"
}

# wait_until SECONDS DESCRIPTION COMMAND...: polls COMMAND every 50 ms.
wait_until() {
    local limit=$1 what=$2 deadline
    shift 2
    deadline=$((SECONDS + limit))
    until "$@"; do
        ((SECONDS < deadline)) || {
            log "$what did not happen within ${limit}s"
            return 1
        }
        sleep 0.05
    done
}

no_port_open() { ! any_port_open; }

# stop_pid PID: TERM, then KILL after 10 s.
stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "process $pid did not stop in 10s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.2
    fi
}

raise_fd_limit() {
    local hard want=65536
    hard=$(ulimit -Hn)
    if [[ $hard != unlimited ]] && ((hard < want)); then want=$hard; fi
    ulimit -n "$want" 2>/dev/null || ulimit -n "$hard"
}

# Rotates a log over 64 MiB so many runs cannot fill the disk.
rotate_log() {
    if [[ -f $1 ]] && (($(stat -c %s "$1") > 67108864)); then mv -f "$1" "$1.old"; fi
}

show_log_tail() {
    local f
    for f in "$@"; do
        if [[ -s $f ]]; then
            printf -- '--- last lines of %s ---\n' "$f" >&2
            tail -n 40 "$f" >&2
        fi
    done
}

# install_if_changed NEW TARGET: moves NEW over TARGET if they differ; true if changed.
install_if_changed() {
    if cmp -s "$1" "$2"; then
        rm -f "$1"
        return 1
    fi
    mv -f "$1" "$2"
}

# discard PATH...: moves each path into a trash directory beside it and
# deletes that in the background (removing thousands of mail files can take
# seconds; the caller need not wait).
discard() {
    local trash
    trash=$(mktemp -d "$LAB/trash.XXXXXX")
    local p
    for p in "$@"; do
        if [[ -e $p ]]; then mv "$p" "$trash/"; fi
    done
    (rm -rf "$trash" </dev/null >/dev/null 2>&1 9>&- &)
}

# print_env NAME=VALUE...: `export` lines for eval.
print_env() {
    local kv
    for kv in "$@"; do printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}"; done
}
