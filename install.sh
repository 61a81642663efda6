#!/bin/sh
# install.sh: installs, upgrades or removes extprov on a device, or in a device's root file
# system (--root). Run it from the unpacked release folder; `install.sh --help` says how.
#
# All checks come before the first change, and nothing runs until `main` at the very end,
# so a script cut off half way (a broken download) does nothing at all.

set -eu

BIN=/usr/bin/extprov
CONF_DIR=/etc/extprov
CONF_FILE=/etc/extprov/config.yaml
SECRETS_DIR=/etc/extprov/secrets
DOC_DIR=/usr/share/doc/extprov
UNIT_FILE=/lib/systemd/system/extprov.service
WANTS_LINK=/etc/systemd/system/multi-user.target.wants/extprov.service
INIT_SCRIPT=/etc/init.d/extprov
LOGROTATE_FILE=/etc/logrotate.d/extprov
OPENRC_LINK=/etc/runlevels/default/extprov
# The system folders this script made, so that --uninstall removes only those (if empty).
MADE_RECORD=/var/lib/extprov/made-folders
IOTEDGE_CONFIG=/etc/iotedge/config.yaml
DEFAULT_ENDPOINT=unix:///var/run/external/external.sock
SUPPORTED="x64 (x86_64) and arm64 (aarch64), each with glibc or musl"

# Set by the options.
ROOT_ARG=/
ACTION=install
PURGE=no
DRY_RUN=no
# yes while the changes are planned: each is checked, none is made or shown.
PLANNING=no
ARCH=""
LIBC=""
INIT=""
CONFIGURE_IOTEDGE=no

# Set by the checks: LIVE is yes when installing on the running system, and R is the
# prefix of every path written ("" on the running system, the image's folder otherwise).
LIVE=yes
R=""
HERE=""
EXE=""
NEW_VERSION=""
CPU_AVX2=unknown
TMP_FILE=""
BLOCK_FILE=""
EDITED_FILE=""
IOTEDGE_BACKUP=""
CHANGES=0
BIN_CHANGED=no
SERVICE_CHANGED=no
MADE_FOLDERS=""
HOST_PATH=""

usage() {
    cat <<'EOF'
install.sh: install, upgrade or remove extprov, the external provisioning endpoint for
Azure IoT Edge 1.1, on this device or in a device's root file system.

Usage:
  sudo ./install.sh [options]                   install, or upgrade what is installed
  sudo ./install.sh --uninstall [--purge]       remove it

Options:
  --root DIR            Install into the root file system at DIR (a device image) instead
                        of this system: accounts are added to DIR/etc/passwd and group,
                        the service is enabled by links, nothing is started.
  --arch x64|arm64      The device's CPU (default: from uname -m).
  --libc glibc|musl     The device's C library (default: ld-musl-* in DIR/lib means musl).
  --init systemd|sysv|openrc
                        The device's init (default: systemd where /run/systemd/system is
                        on this system, or DIR/lib/systemd/systemd in an image; OpenRC
                        where it booted this system (/run/openrc/softlevel), or where
                        DIR/sbin/openrc-run is; else SysV or BusyBox init).
  --configure-iotedge   Also point iotedged at extprov: replace the provisioning: section
                        of DIR/etc/iotedge/config.yaml, keeping a dated backup.
  --dry-run             Check everything and print what would be done; change nothing.
  --uninstall           Remove the executable, the service and the docs; keep /etc/extprov
                        and the accounts, and warn if DIR/etc/iotedge/config.yaml still
                        sends iotedged to extprov's endpoint.
  --purge               With --uninstall: also remove /etc/extprov (secrets included)
                        and /var/log/extprov.log.
  -h, --help            Show this help.

Environment (for tests and for images made on another machine):
  EXTPROV_UNAME_M       Use this instead of `uname -m` (x86_64, aarch64, armv7l, ...).
  EXTPROV_CPUINFO       Read CPU flags from this file instead of /proc/cpuinfo.

What it does: puts the executable from bin/ (chosen for the CPU and C library) at
/usr/bin/extprov, adds the system user and group extprov and the group iotedge, installs
/etc/extprov/config.yaml unless one exists (never overwritten), and the systemd unit or
the init script. Running it again changes nothing; with a newer release it upgrades and,
on a running system, restarts extprov.

Exit codes: 0 done (or nothing to do), 1 refused or failed, 2 wrong options.
EOF
}

say() {
    [ "$PLANNING" = no ] || return 0
    printf 'install.sh: %s\n' "$*" >&2
}

warn() {
    [ "$PLANNING" = no ] || return 0
    printf 'install.sh: warning: %s\n' "$*" >&2
}

die() {
    printf 'install.sh: error: %s\n' "$*" >&2
    exit 1
}

usage_error() {
    printf 'install.sh: %s; see ./install.sh --help\n' "$*" >&2
    exit 2
}

need_cmd() {
    command -v "$1" >/dev/null 2>&1 || die "needs the command $1, which is not installed"
}

# A path as the user knows it: inside the image when --root is given.
shown() {
    printf '%s\n' "$R$1"
}

# Every change goes through here: its paths in an image are checked first, and --dry-run
# shows it instead of making it.
change() {
    check_in_image "$@"
    [ "$PLANNING" = no ] || return 0
    CHANGES=$((CHANGES + 1))
    if [ "$DRY_RUN" = yes ]; then
        say "would run: $*"
        return 0
    fi
    say "+ $*"
    "$@"
}

cleanup() {
    for file in "$TMP_FILE" "$BLOCK_FILE" "$EDITED_FILE"; do
        if [ -n "$file" ]; then
            rm -f "$file"
        fi
    done
}

# ---------------------------------------------------------------------------------------
# Options

parse_args() {
    while [ $# -gt 0 ]; do
        case $1 in
        -h | --help) usage && exit 0 ;;
        --root | --arch | --libc | --init)
            [ $# -ge 2 ] || usage_error "$1 needs a value"
            set_option "$1" "$2"
            shift
            ;;
        --root=* | --arch=* | --libc=* | --init=*) set_option "${1%%=*}" "${1#*=}" ;;
        --configure-iotedge) CONFIGURE_IOTEDGE=yes ;;
        --dry-run) DRY_RUN=yes ;;
        --uninstall) ACTION=uninstall ;;
        --purge) PURGE=yes ;;
        *) usage_error "unknown option $1" ;;
        esac
        shift
    done
    check_option_combinations
}

set_option() {
    case $1=$2 in
    --root=) usage_error "--root needs a folder" ;;
    --root=*) ROOT_ARG=$2 ;;
    --arch=x64 | --arch=x86_64 | --arch=amd64) ARCH=x64 ;;
    --arch=arm64 | --arch=aarch64) ARCH=arm64 ;;
    --libc=glibc | --libc=musl) LIBC=$2 ;;
    --init=systemd | --init=sysv | --init=openrc) INIT=$2 ;;
    --arch=*) usage_error "--arch $2 is not supported; extprov runs on $SUPPORTED" ;;
    *) usage_error "$1 takes $(option_values "$1"), not $2" ;;
    esac
}

option_values() {
    case $1 in
    --libc) echo "glibc or musl" ;;
    *) echo "systemd, sysv or openrc" ;;
    esac
}

check_option_combinations() {
    if [ "$PURGE" = yes ] && [ "$ACTION" != uninstall ]; then
        usage_error "--purge removes /etc/extprov and goes only with --uninstall"
    fi
    if [ "$ACTION" = uninstall ] && [ "$CONFIGURE_IOTEDGE" = yes ]; then
        usage_error "--configure-iotedge goes only with an install"
    fi
}

# ---------------------------------------------------------------------------------------
# Checks: nothing below changes anything.

check_tools() {
    for tool in uname id cat ls mkdir chmod chown cp mv rm ln cmp stat od cut tr awk sed \
        grep mktemp date readlink dirname basename tail sort rmdir; do
        need_cmd "$tool"
    done
    if [ "$(id -u)" != 0 ]; then
        die "run as root (sudo ./install.sh), or under fakeroot or pseudo for an image"
    fi
}

check_root() {
    [ -d "$ROOT_ARG" ] || die "--root $ROOT_ARG is not a folder"
    # ./ keeps cd from taking a folder named -x for an option (and from searching CDPATH).
    case $ROOT_ARG in
    /*) root=$ROOT_ARG ;;
    *) root=./$ROOT_ARG ;;
    esac
    root=$(cd "$root" && pwd -P)
    if [ "$root" = / ]; then
        LIVE=yes
        R=""
        return 0
    fi

    LIVE=no
    R=$root
    if [ ! -f "$R/etc/passwd" ] || [ ! -f "$R/etc/group" ]; then
        die "$R does not look like a root file system: it has no etc/passwd and etc/group"
    fi
    if [ "$ACTION" = uninstall ]; then
        say "removing extprov from the root file system at $R (an image: nothing is stopped)"
    else
        say "installing into the root file system at $R (an image: nothing is started)"
    fi
}

check_release() {
    HERE=$(cd "$(dirname "$0")" && pwd -P)
    for file in examples/config.yaml init/extprov.service init/extprov.init \
        init/extprov.openrc init/extprov.logrotate; do
        if [ ! -f "$HERE/$file" ]; then
            die "$HERE/$file is missing: run install.sh from the unpacked release folder"
        fi
    done
    if [ ! -d "$HERE/bin" ]; then
        die "$HERE/bin is missing: run install.sh from the unpacked release folder"
    fi
}

detect_arch() {
    if [ -n "$ARCH" ]; then
        return 0
    fi
    machine=${EXTPROV_UNAME_M:-$(uname -m)}
    case $machine in
    x86_64 | amd64) ARCH=x64 ;;
    aarch64 | arm64 | armv8*) ARCH=arm64 ;;
    *) die "this CPU ($machine) is not supported: extprov runs on $SUPPORTED" ;;
    esac
}

detect_libc() {
    if [ -n "$LIBC" ]; then
        return 0
    fi
    # musl first: Alpine's gcompat adds an ld-linux-* beside musl's loader.
    for loader in "$R"/lib/ld-musl-*.so.1; do
        if [ -e "$loader" ]; then
            LIBC=musl
            return 0
        fi
    done
    for loader in "$R"/lib/ld-linux-* "$R"/lib64/ld-linux-* "$R"/usr/lib/ld-linux-* \
        "$R"/usr/lib64/ld-linux-* "$R"/lib/*-linux-gnu/libc.so.6 \
        "$R"/usr/lib/*-linux-gnu/libc.so.6; do
        if [ -e "$loader" ]; then
            LIBC=glibc
            return 0
        fi
    done
    die "cannot tell the C library of $(shown /) (no lib/ld-musl-*.so.1, no ld-linux-*):" \
        "pass --libc glibc or --libc musl"
}

# Follows symbolic links at the end of an image path inside the image, not on this machine.
path_in_root() {
    path=$1
    hops=0
    while [ -L "$R$path" ] && [ "$hops" -lt 16 ]; do
        target=$(readlink "$R$path")
        case $target in
        /*) path=$target ;;
        *) path=$(dirname "$path")/$target ;;
        esac
        hops=$((hops + 1))
    done
    printf '%s\n' "$R$path"
}

elf_machine_name() {
    case $1 in
    3e00) echo x64 ;;
    b700) echo arm64 ;;
    2800) echo "32-bit ARM" ;;
    0300) echo "32-bit x86" ;;
    *) echo "machine 0x$1" ;;
    esac
}

# As rustup does: a 64-bit kernel may run a 32-bit userland, where extprov cannot run.
# /bin/sh's ELF header says which userland it is: byte 4 the class, bytes 18-19 the CPU.
check_userland() {
    header=$(od -An -tx1 -N20 "$(path_in_root /bin/sh)" 2>/dev/null | tr -d ' \n') || header=""
    case $header in
    7f454c46??01*) ;;
    *)
        say "$(shown /bin/sh) is not a little-endian ELF file; the userland is not checked"
        return 0
        ;;
    esac
    class=$(printf '%s' "$header" | cut -c9-10)
    found=$(elf_machine_name "$(printf '%s' "$header" | cut -c37-40)")
    if [ "$class" = 01 ]; then
        die "the userland in $(shown /) is 32-bit ($found): extprov needs a 64-bit one, $SUPPORTED"
    fi
    if [ "$found" != "$ARCH" ]; then
        die "$(shown /bin/sh) is built for $found, not $ARCH: pass --arch $found," \
            "and use the release archive for that CPU"
    fi
}

# Bun's x64 runtime needs SSE4.2. The device's CPU is known on the device itself, or
# from EXTPROV_CPUINFO; an image may be made on any machine.
check_cpu() {
    [ "$ARCH" = x64 ] || return 0
    cpuinfo=${EXTPROV_CPUINFO:-}
    if [ -z "$cpuinfo" ] && [ "$LIVE" = no ]; then
        say "the device's CPU is not checked: extprov's x64 build needs SSE4.2"
        return 0
    fi
    cpuinfo=${cpuinfo:-/proc/cpuinfo}
    flags=$(awk -F: '/^flags/ { print " " $2 " "; exit }' "$cpuinfo" 2>/dev/null) || flags=""
    case $flags in
    " ") flags="" ;;
    esac
    if [ -z "$flags" ]; then
        warn "cannot read CPU flags from $cpuinfo; not checking for SSE4.2"
        return 0
    fi
    case $flags in
    *" sse4_2 "*) ;;
    *)
        die "this x86-64 CPU lacks SSE4.2, which extprov's runtime (Bun) needs:" \
            "Intel Nehalem (2008), AMD Bulldozer (2011) or newer"
        ;;
    esac
    case $flags in
    *" avx2 "*) CPU_AVX2=yes ;;
    *) CPU_AVX2=no ;;
    esac
}

list_names() {
    for path in "$@"; do
        printf ' %s' "$(basename "$path")"
    done
}

# x64-baseline is the same runtime as x64 since Bun 1.4.5; it is used only when the
# archive has it and the CPU lacks AVX2, the line older Bun releases drew.
choose_executable() {
    suffix=""
    if [ "$LIBC" = musl ]; then
        suffix=-musl
    fi
    EXE=$HERE/bin/extprov-linux-$ARCH$suffix
    baseline=$HERE/bin/extprov-linux-x64-baseline
    if [ "$ARCH$suffix" = x64 ] && [ -f "$baseline" ]; then
        if [ "$CPU_AVX2" = no ] || [ ! -f "$EXE" ]; then
            EXE=$baseline
        fi
    fi
    if [ ! -f "$EXE" ]; then
        die "$HERE/bin has no extprov-linux-$ARCH$suffix, only$(list_names "$HERE"/bin/*):" \
            "use extprov-<version>-linux-$ARCH$suffix.tar.gz"
    fi
}

# On the device itself the executable must run: this catches a missing libstdc++ (musl),
# a too old glibc, or a CPU the checks above could not judge. An image's need not run here.
check_executable() {
    if NEW_VERSION=$("$EXE" --version 2>&1); then
        case $NEW_VERSION in
        extprov\ *) return 0 ;;
        *) die "$EXE --version printed \"$NEW_VERSION\": not an extprov executable" ;;
        esac
    fi
    if [ "$LIVE" = yes ]; then
        hint=""
        if [ "$LIBC" = musl ]; then
            hint=" (musl needs libstdc++: apk add libstdc++)"
        fi
        die "$(basename "$EXE") does not run on this system$hint: $NEW_VERSION"
    fi
    NEW_VERSION="extprov (its version cannot be asked on this machine)"
}

# On the device check_executable finds this out by running extprov; in an image, look.
check_image_libraries() {
    [ "$LIVE" = no ] && [ "$LIBC" = musl ] || return 0
    for library in /usr/lib/libstdc++.so.6 /lib/libstdc++.so.6; do
        if [ -e "$(path_in_root "$library")" ]; then
            return 0
        fi
    done
    warn "no libstdc++.so.6 in $(shown /usr/lib): the musl build needs it (apk add libstdc++)"
}

detect_init() {
    if [ -z "$INIT" ]; then
        INIT=sysv
        if [ "$LIVE" = yes ] && [ -d /run/systemd/system ]; then
            INIT=systemd
        elif [ "$LIVE" = no ] && [ -e "$(path_in_root /lib/systemd/systemd)" ]; then
            INIT=systemd
        elif [ "$LIVE" = no ] && [ -e "$(path_in_root /usr/lib/systemd/systemd)" ]; then
            INIT=systemd
        elif [ "$LIVE" = yes ] && [ -e /run/openrc/softlevel ]; then
            # OpenRC booted this system; its package alone does not make it the init.
            INIT=openrc
        elif [ "$LIVE" = no ] && { [ -e "$(path_in_root /sbin/openrc-run)" ] ||
            [ -e "$(path_in_root /usr/sbin/openrc-run)" ]; }; then
            INIT=openrc
        fi
    fi
    if [ "$LIVE" = yes ] && [ "$INIT" = systemd ]; then
        need_cmd systemctl
    fi
}

check_account_tools() {
    if [ "$LIVE" = no ]; then
        return 0
    fi
    if command -v useradd >/dev/null 2>&1 && command -v groupadd >/dev/null 2>&1; then
        return 0
    fi
    if adduser --help 2>&1 | grep -q BusyBox && addgroup --help 2>&1 | grep -q BusyBox; then
        return 0
    fi
    die "cannot add users here: needs useradd and groupadd, or BusyBox adduser and addgroup"
}

# ---------------------------------------------------------------------------------------
# Paths in an image: a symbolic link there may lead out of it (usr -> /usr, or any absolute
# link, which this machine follows on its own files). Every change is checked here, first
# in a plan of them all (run_checked), so that such a link stops the script before the
# first change.

# Sets HOST_PATH to where this machine puts the absolute path $1: each link on the way
# followed as the kernel follows it, and what does not exist yet added as named. Fails on
# a loop of links. (No $(dirname) and no function called as $(...): it runs for every
# change, twice in an image, and each subshell costs a fork.)
host_path() {
    hp_path=$1
    hp_rest=""
    hp_hops=0
    until [ -d "$hp_path" ]; do
        # Without trailing slashes (a link may point at "../run/"), so that ${%/*} is the parent.
        while [ "${hp_path%/}" != "$hp_path" ]; do
            hp_path=${hp_path%/}
        done
        if [ -L "$hp_path" ]; then
            hp_hops=$((hp_hops + 1))
            [ "$hp_hops" -le 40 ] || return 1
            hp_target=$(readlink "$hp_path")
            case $hp_target in
            /*) hp_path=$hp_target ;;
            *) hp_path=${hp_path%/*}/$hp_target ;;
            esac
        else
            hp_rest=/${hp_path##*/}$hp_rest
            hp_path=${hp_path%/*}
            hp_path=${hp_path:-/}
        fi
    done
    hp_path=$(cd "$hp_path" && pwd -P)
    HOST_PATH=${hp_path%/}$hp_rest
    HOST_PATH=${HOST_PATH:-/}
}
# Whether the path $1 from host_path is in the image ("..": it cannot tell, so no).
in_image() {
    case $1 in
    */../* | */..) return 1 ;;
    "$R" | "$R"/*) return 0 ;;
    *) return 1 ;;
    esac
}

# The first link in the image path $1 that leads out of the image.
link_out() {
    lo_prefix=$R
    lo_rest=${1#"$R"}
    while [ -n "$lo_rest" ]; do
        lo_rest=${lo_rest#/}
        lo_part=${lo_rest%%/*}
        lo_rest=${lo_rest#"$lo_part"}
        lo_prefix=$lo_prefix/$lo_part
        if [ -L "$lo_prefix" ]; then
            if ! host_path "$lo_prefix" || ! in_image "$HOST_PATH"; then
                printf '%s\n' "$lo_prefix"
                return 0
            fi
        fi
    done
}

# $1 (an image path) would be changed at $2, outside the image, through the folder $3.
die_outside() {
    do_outcome="nothing was changed"
    [ "$PLANNING$DRY_RUN" != nono ] || do_outcome="stopped"
    do_link=$(link_out "$3")
    if [ -z "$do_link" ]; then
        die "$1 leads out of the image, to $2; $do_outcome"
    fi
    do_target=$(readlink "$do_link")
    case $do_target in
    /*) do_how=" (an absolute link is followed on this machine, not in the image)" ;;
    *) do_how="" ;;
    esac
    do_fix="replace $do_link with a folder or file of the image's own, or with a relative link"
    do_fix="$do_fix that stays inside the image"
    if [ "$do_link" = "$1" ]; then
        do_to=" (to $2)"
        [ "$2" != "$do_target" ] || do_to=""
        die "$1 is a link to $do_target$do_how, which leads out of the image$do_to;" \
            "$do_outcome: $do_fix"
    fi
    die "$1 leads out of the image, to $2: $do_link is a link to $do_target$do_how;" \
        "$do_outcome: $do_fix"
}

# The image path $1 is changed through $2 (itself, or the folder it is in) as $2$3: $2
# must lead into the image.
check_path() {
    if ! host_path "$2"; then
        die "$1: a loop of symbolic links; nothing was changed: fix the links in $R"
    fi
    ck_where=${HOST_PATH%/}$3
    in_image "$ck_where" || die_outside "$1" "${ck_where:-/}" "$2"
}

# A folder, or a file changed in place: it and every link on the way lead into the image.
check_followed() {
    check_path "$1" "$1" ""
}

# A name that is replaced or removed, never followed (place_file and link_to rename over
# it, rm removes a link, not what it leads to): the folder it is in leads into the image.
# The names here are install.sh's own: absolute, no trailing slash.
check_name() {
    check_path "$1" "${1%/*}" "/${1##*/}"
}

# The image paths the change "$@" writes, makes or removes, checked. A command without a
# rule here stops the script rather than go unchecked.
check_in_image() {
    [ "$LIVE" = no ] || return 0
    case $1 in
    mkdir) check_followed "$3" ;;
    make_private_dir | rmdir | append_line) check_followed "$2" ;;
    append_lines) check_followed "$3" ;;
    place_file | link_to) check_name "$3" ;;
    write_iotedge_config)
        check_followed "$2"
        check_name "$4"
        ;;
    rm)
        # rm -rf of a link to a folder removes the link and leaves what it holds: the
        # folder (/etc/extprov for --purge) must be in the image.
        if [ -d "$3" ]; then
            check_followed "$3"
        else
            check_name "$3"
        fi
        ;;
    *) die "internal error: no check of the image paths that $1 changes" ;;
    esac
}

# Runs the function $1, which changes the image, twice: first as a plan, in which each
# change is checked and none is made or shown, then for real. On a running system, once.
run_checked() {
    if [ "$LIVE" = no ]; then
        PLANNING=yes
        "$1"
        PLANNING=no
        cleanup
        TMP_FILE=""
        BLOCK_FILE=""
        EDITED_FILE=""
        IOTEDGE_BACKUP=""
        MADE_FOLDERS=""
    fi
    "$1"
}

# Prints the value of "  $2:" in the top-level section "$1:" of the YAML file $3, without
# quotes or a trailing comment; nothing if there is none.
section_value() {
    awk -v section="$1:" -v key="$2:" '
        index($0, section) == 1 { inside = 1; next }
        inside && /^[^ \t#]/ { exit }
        inside && $1 == key {
            sub(/^[ \t]+[^ \t]+:[ \t]*/, ""); sub(/[ \t]+#.*$/, ""); gsub(/["\047]/, "")
            print; exit
        }' "$3" 2>/dev/null || true
}

# The provisioning: section iotedged needs; the endpoint is the one extprov serves.
extprov_endpoint() {
    file=$R$CONF_FILE
    [ -f "$file" ] || file=$HERE/examples/config.yaml
    endpoint=$(section_value listen endpoint "$file")
    if [ -z "$endpoint" ]; then
        warn "no listen.endpoint found in $file; assuming $DEFAULT_ENDPOINT"
        endpoint=$DEFAULT_ENDPOINT
    fi
    printf '%s\n' "$endpoint"
}

check_iotedge_config() {
    [ "$CONFIGURE_IOTEDGE" = yes ] || return 0
    file=$R$IOTEDGE_CONFIG
    if [ ! -f "$file" ]; then
        die "$file does not exist: install IoT Edge 1.1 first, or leave out --configure-iotedge"
    fi
    count=$(grep -c '^provisioning:' "$file" || true)
    if [ "$count" -gt 1 ]; then
        die "$file has $count top-level provisioning: sections; fix it by hand"
    fi
}

check_install() {
    check_release
    detect_arch
    detect_libc
    check_userland
    check_cpu
    choose_executable
    check_executable
    check_image_libraries
    detect_init
    check_account_tools
    check_iotedge_config
    say "$NEW_VERSION: $(basename "$EXE") for $ARCH/$LIBC, $INIT init"
}

# ---------------------------------------------------------------------------------------
# Accounts: extprov (user and group) and iotedge (group), with system ids.

lookup_id() {
    awk -F: -v name="$2" '$1 == name { print $3; exit }' "$R/etc/$1" 2>/dev/null || true
}

nologin_shell() {
    for shell in /usr/sbin/nologin /sbin/nologin; do
        if [ -x "$(path_in_root "$shell")" ]; then
            echo "$shell"
            return 0
        fi
    done
    echo /bin/false
}

# The system id range of the image's login.defs, else Debian's (100-999).
system_id_range() {
    range=$(awk '$1 == "SYS_UID_MIN" { lo = $2 } $1 == "SYS_UID_MAX" { hi = $2 }
        END { print (lo ~ /^[0-9]+$/ ? lo : 100) " " (hi ~ /^[0-9]+$/ ? hi : 999) }' \
        "$R/etc/login.defs" 2>/dev/null) || range=""
    printf '%s\n' "${range:-100 999}"
}

# An id free both as a uid and as a gid, from the top of the range down (as useradd
# --system counts); $1 lists ids already promised in this run (for --dry-run).
free_system_id() {
    range=$(system_id_range)
    lo=${range% *}
    hi=${range#* }
    id=$(awk -F: -v lo="$lo" -v hi="$hi" -v promised="$1" '
        { used[$3] = 1 }
        END {
            n = split(promised, ids, " "); for (i = 1; i <= n; i++) used[ids[i]] = 1
            for (id = hi; id >= lo; id--) if (!(id in used)) { print id; exit }
        }' "$R/etc/passwd" "$R/etc/group")
    [ -n "$id" ] || die "no free system id between $lo and $hi in $(shown /etc/passwd)"
    printf '%s\n' "$id"
}

# Adds a line to an account file by a copy and a rename, keeping its mode and owner.
append_line() {
    TMP_FILE=$(mktemp "$(dirname "$1")/.extprov.XXXXXX")
    cp -p "$1" "$TMP_FILE"
    if [ -s "$1" ] && [ -n "$(tail -c 1 "$1")" ]; then
        echo >>"$TMP_FILE"
    fi
    printf '%s\n' "$2" >>"$TMP_FILE"
    mv -f "$TMP_FILE" "$1"
    TMP_FILE=""
}

add_group_to_image() {
    gid=$(free_system_id "$PROMISED_IDS")
    PROMISED_IDS="$PROMISED_IDS $gid"
    change append_line "$R/etc/group" "$1:x:$gid:"
    if [ -f "$R/etc/gshadow" ]; then
        change append_line "$R/etc/gshadow" "$1:!::"
    fi
}

add_user_to_image() {
    gid=$(lookup_id group extprov)
    gid=${gid:-$EXTPROV_GID_PROMISED}
    uid=$gid
    if [ -n "$(awk -F: -v id="$uid" '$3 == id' "$R/etc/passwd")" ]; then
        uid=$(free_system_id "$PROMISED_IDS")
    fi
    PROMISED_IDS="$PROMISED_IDS $uid"
    change append_line "$R/etc/passwd" \
        "extprov:x:$uid:$gid:extprov provisioning endpoint:/nonexistent:$(nologin_shell)"
    if [ -f "$R/etc/shadow" ]; then
        change append_line "$R/etc/shadow" "extprov:!:::::::"
    fi
}

add_group_live() {
    if command -v groupadd >/dev/null 2>&1; then
        change groupadd --system "$1"
    else
        change addgroup -S "$1"
    fi
}

add_user_live() {
    shell=$(nologin_shell)
    if command -v useradd >/dev/null 2>&1; then
        change useradd --system --gid extprov --no-create-home --home-dir /nonexistent \
            --shell "$shell" --comment "extprov provisioning endpoint" extprov
    else
        change adduser -S -D -H -h /nonexistent -s "$shell" -G extprov \
            -g "extprov provisioning endpoint" extprov
    fi
}

add_group() {
    if [ -n "$(lookup_id group "$1")" ]; then
        return 0
    fi
    if [ "$LIVE" = yes ]; then
        add_group_live "$1"
    else
        add_group_to_image "$1"
        if [ "$1" = extprov ]; then
            EXTPROV_GID_PROMISED=$gid
        fi
    fi
}

ensure_accounts() {
    PROMISED_IDS=""
    EXTPROV_GID_PROMISED=""
    add_group extprov
    add_group iotedge
    if [ -n "$(lookup_id passwd extprov)" ]; then
        return 0
    fi
    if [ "$LIVE" = yes ]; then
        add_user_live
    else
        add_user_to_image
    fi
}

# Numeric owners, read from the image's own files: never this machine's user database.
# In a --dry-run the accounts may exist only as promises; their names stand in.
owner_ids() {
    uid=$(lookup_id passwd "$1")
    gid=$(lookup_id group "$2")
    printf '%s:%s\n' "${uid:-$1}" "${gid:-$2}"
}

# ---------------------------------------------------------------------------------------
# Files

file_attrs() {
    stat -c '%a %u:%g' "$1" 2>/dev/null || true
}

# Copies to a temporary file beside the destination and renames it into place: the file
# is never half written, and a running extprov keeps the old one until it restarts.
place_file() {
    TMP_FILE=$(mktemp "$(dirname "$2")/.extprov.XXXXXX")
    cp "$1" "$TMP_FILE"
    chmod "$3" "$TMP_FILE"
    chown "$4" "$TMP_FILE"
    mv -f "$TMP_FILE" "$2"
    TMP_FILE=""
}

# Installs $1 as $2 with mode $3 and owner $4 unless it is there already, and sets
# FILE_CHANGED. (Never call a changing function as a condition: sh then ignores set -e.)
install_file() {
    FILE_CHANGED=no
    dest=$R$2
    if [ ! -L "$dest" ] && cmp -s "$1" "$dest" && [ "$(file_attrs "$dest")" = "$3 $4" ]; then
        return 0
    fi
    ensure_dir "$(dirname "$2")"
    change place_file "$1" "$dest" "$3" "$4"
    FILE_CHANGED=yes
}

# Creates a system folder (and its parents) owned by root, if missing, and notes which.
ensure_dir() {
    if [ ! -d "$R$1" ]; then
        note_missing_folders "$1"
        change mkdir -p "$R$1"
    fi
}

note_missing_folders() {
    missing=$1
    while [ "$missing" != / ] && [ ! -d "$R$missing" ]; do
        # Noted already, with the missing folders above it (a dry run makes none).
        case " $MADE_FOLDERS " in
        *" $missing "*) return 0 ;;
        esac
        MADE_FOLDERS="${MADE_FOLDERS:+$MADE_FOLDERS }$missing"
        missing=$(dirname "$missing")
    done
}

# $1: folders separated by spaces (our own paths, which have none), one a line in $2.
append_lines() {
    printf '%s\n' "$1" | tr ' ' '\n' >>"$2"
}

# Adds the folders made by this run to the record that --uninstall reads.
record_made_folders() {
    [ -n "$MADE_FOLDERS" ] || return 0
    ensure_dir "$(dirname "$MADE_RECORD")"
    change append_lines "$MADE_FOLDERS" "$R$MADE_RECORD"
}

# Made with its mode (root's until the chown), so it is never more open than that.
make_private_dir() {
    mkdir -p "$(dirname "$1")"
    mkdir -m "$2" "$1"
    chown "$3" "$1"
}

# extprov's own folders: made with their mode and owner; an existing one is left as the
# administrator made it, with a warning if extprov may not be able to use it.
ensure_own_dir() {
    # Checked even when it is there: what extprov keeps in it must be in the image.
    check_in_image make_private_dir "$R$1"
    if [ ! -d "$R$1" ]; then
        change make_private_dir "$R$1" "$2" "$3"
        return 0
    fi
    if [ "$(file_attrs "$R$1")" != "$2 $3" ]; then
        warn "$(shown "$1") is $(file_attrs "$R$1"), not $2 $3 (mode uid:gid); left as it is"
    fi
}

install_executable() {
    old=""
    if [ -f "$R$BIN" ] && [ "$LIVE" = yes ]; then
        old=$("$R$BIN" --version 2>/dev/null) || old=""
    fi
    install_file "$EXE" "$BIN" 755 0:0
    BIN_CHANGED=$FILE_CHANGED
    if [ "$BIN_CHANGED" = yes ] && [ -n "$old" ] && [ "$old" != "$NEW_VERSION" ]; then
        say "upgrading: $old -> $NEW_VERSION"
    fi
}

install_docs() {
    if [ -f "$HERE/README.md" ]; then
        install_file "$HERE/README.md" "$DOC_DIR/README.md" 644 0:0
    fi
}

install_config() {
    owner=$(owner_ids root extprov)
    ensure_own_dir "$CONF_DIR" 750 "$owner"
    ensure_own_dir "$SECRETS_DIR" 700 "$(owner_ids extprov extprov)"
    config=$R$CONF_FILE
    if [ -e "$config" ] || [ -L "$config" ]; then
        if [ "$(file_attrs "$config")" != "640 $owner" ]; then
            warn "$(shown "$CONF_FILE") is $(file_attrs "$config"), not 640 $owner; kept as it is"
        fi
        return 0
    fi
    change place_file "$HERE/examples/config.yaml" "$config" 640 "$owner"
}

# ---------------------------------------------------------------------------------------
# Service: a systemd unit, or an init script for SysV and BusyBox init

link_to() {
    ln -sfn "$1" "$2"
}

ensure_link() {
    if [ -L "$R$1" ] && [ "$(readlink "$R$1")" = "$2" ]; then
        return 0
    fi
    ensure_dir "$(dirname "$1")"
    change link_to "$2" "$R$1"
}

install_systemd_unit() {
    install_file "$HERE/init/extprov.service" "$UNIT_FILE" 644 0:0
    SERVICE_CHANGED=$FILE_CHANGED
    # In an image this is what `systemctl enable` would do; on a device systemctl does it.
    if [ "$LIVE" = no ]; then
        ensure_link "$WANTS_LINK" "$UNIT_FILE"
    elif [ "$SERVICE_CHANGED" = yes ]; then
        change systemctl daemon-reload
    fi
    if [ "$LIVE" = yes ] && ! systemctl is-enabled --quiet extprov.service 2>/dev/null; then
        change systemctl enable extprov.service
    fi
}

# The start and stop links for the image's init: SysV runlevel folders, or BusyBox and
# Buildroot's rcS, which starts /etc/init.d/S??* in order.
rc_links() {
    if [ -d "$R/etc/rc2.d" ] || [ -d "$R/etc/rc5.d" ] || [ -d "$R/etc/rcS.d" ]; then
        for level in 2 3 4 5; do
            echo "/etc/rc$level.d/S19extprov ../init.d/extprov"
        done
        for level in 0 1 6; do
            echo "/etc/rc$level.d/K81extprov ../init.d/extprov"
        done
    elif [ -f "$R/etc/init.d/rcS" ]; then
        echo "/etc/init.d/S49extprov extprov"
    fi
}

enable_init_script() {
    if [ "$LIVE" = yes ] && command -v update-rc.d >/dev/null 2>&1; then
        if ! ls /etc/rc?.d/S??extprov >/dev/null 2>&1; then
            change update-rc.d extprov defaults
        fi
        return 0
    fi
    links=$(rc_links)
    if [ -z "$links" ]; then
        warn "no rcN.d folders and no /etc/init.d/rcS in $(shown /etc):" \
            "have your init run $INIT_SCRIPT start (for OpenRC: install.sh --init openrc)"
        return 0
    fi
    # A redirected loop, not a pipe: it must run in this shell to count its changes.
    while read -r link target; do
        if [ -d "$R$(dirname "$link")" ]; then
            ensure_link "$link" "$target"
        fi
    done <<EOF
$links
EOF
}

install_init_script() {
    install_file "$HERE/init/extprov.init" "$INIT_SCRIPT" 755 0:0
    SERVICE_CHANGED=$FILE_CHANGED
    enable_init_script
    install_log_rotation
}

# OpenRC runs the same /etc/init.d/extprov path with its own script, started in the
# default runlevel by a link, as `rc-update add` makes it.
install_openrc_script() {
    install_file "$HERE/init/extprov.openrc" "$INIT_SCRIPT" 755 0:0
    SERVICE_CHANGED=$FILE_CHANGED
    if [ "$LIVE" = yes ] && command -v rc-update >/dev/null 2>&1; then
        if [ ! -L "$OPENRC_LINK" ]; then
            change rc-update add extprov default
        fi
    else
        ensure_link "$OPENRC_LINK" "$INIT_SCRIPT"
    fi
    install_log_rotation
}

# The init scripts append to /var/log/extprov.log; systemd's journal needs no rotation.
install_log_rotation() {
    if [ -d "$R/etc/logrotate.d" ]; then
        install_file "$HERE/init/extprov.logrotate" "$LOGROTATE_FILE" 644 0:0
        return 0
    fi
    warn "no $(shown /etc/logrotate.d): nothing will rotate $(shown /var/log/extprov.log);" \
        "install logrotate and run install.sh again, or have your own rotation copy and truncate it"
}

# ---------------------------------------------------------------------------------------
# On a running system: start extprov, or restart it after an upgrade

service_running() {
    if [ "$INIT" = systemd ]; then
        systemctl is-active --quiet extprov.service
    else
        "$INIT_SCRIPT" status >/dev/null 2>&1
    fi
}

service_command() {
    if [ "$INIT" = systemd ]; then
        change systemctl "$1" extprov.service
    else
        change "$INIT_SCRIPT" "$1"
    fi
}

# Started (or restarted) only with a configuration the new executable accepts: a fresh
# install has a placeholder hub and no key yet, and a running extprov keeps serving.
activate_service() {
    [ "$LIVE" = yes ] || return 0
    running=no
    if [ -x "$INIT_SCRIPT" ] || [ "$INIT" = systemd ]; then
        if service_running; then
            running=yes
        fi
    fi
    if [ "$running" = yes ] && [ "$BIN_CHANGED$SERVICE_CHANGED" = nono ]; then
        say "extprov is running and nothing changed"
        return 0
    fi
    if ! problem=$("$EXE" check --config "$CONF_FILE" 2>&1 >/dev/null); then
        verb=started
        [ "$running" = no ] || verb=restarted
        warn "extprov is not $verb: extprov check says: $problem"
        return 0
    fi
    if [ "$running" = yes ]; then
        service_command restart
    else
        service_command start
    fi
}

# ---------------------------------------------------------------------------------------
# IoT Edge 1.1's /etc/iotedge/config.yaml

provisioning_block() {
    printf 'provisioning:\n  source: "external"\n  endpoint: "%s"\n' "$1"
    printf '  dynamic_reprovisioning: false\n'
}

# Replaces the top-level provisioning: section (its line and the indented lines after
# it) with the file $2. Blank and top-level comment lines between two indented lines are
# inside the section; before the next top-level key they are kept, as are the commented
# examples. Without a provisioning: section the new one is added at the end.
replace_provisioning() {
    awk -v blockfile="$2" '
        function emit(line) { while ((getline line < blockfile) > 0) print line; close(blockfile) }
        state == 1 {
            if ($0 ~ /^[ \t]*$/ || $0 ~ /^#/) { held = held $0 "\n"; next }
            if ($0 ~ /^[ \t]/) { held = ""; next }
            printf "%s", held; state = 2
        }
        /^provisioning:/ { emit(); state = 1; held = ""; next }
        { print }
        END {
            if (state == 1) printf "%s", held
            if (state == 0) { print ""; emit() }
        }' "$1"
}

# Writes the new file beside the old one (same mode and owner) and renames it over;
# the dated backup is made and compared first, so the original is never lost.
write_iotedge_config() {
    cp -p "$1" "$3"
    cmp -s "$1" "$3" || die "could not back up $1 to $3"
    TMP_FILE=$(mktemp "$(dirname "$1")/.extprov.XXXXXX")
    cp -p "$1" "$TMP_FILE"
    cat "$2" >"$TMP_FILE"
    mv -f "$TMP_FILE" "$1"
    TMP_FILE=""
}

configure_iotedge() {
    [ "$CONFIGURE_IOTEDGE" = yes ] || return 0
    file=$R$IOTEDGE_CONFIG
    BLOCK_FILE=$(mktemp)
    EDITED_FILE=$(mktemp)
    provisioning_block "$(extprov_endpoint)" >"$BLOCK_FILE"
    replace_provisioning "$file" "$BLOCK_FILE" >"$EDITED_FILE"
    if cmp -s "$file" "$EDITED_FILE"; then
        say "$file already sends iotedged to extprov"
    else
        backup=$file.extprov-backup-$(date +%Y%m%d-%H%M%S)
        [ ! -e "$backup" ] || backup=$backup-$$
        change write_iotedge_config "$file" "$EDITED_FILE" "$backup"
        if [ "$DRY_RUN" = no ]; then
            IOTEDGE_BACKUP=$backup
        fi
    fi
}

print_next_steps() {
    start="systemctl restart extprov"
    [ "$INIT" = systemd ] || start="$INIT_SCRIPT restart"
    where=""
    [ "$LIVE" = yes ] || where=" (on the device)"
    cat <<EOF

Next steps$where:
  1. Put the device's hub and id in $CONF_FILE, and its key in
     $SECRETS_DIR/device.key, readable by extprov alone:
       chown extprov:extprov $SECRETS_DIR/device.key
       chmod 0600 $SECRETS_DIR/device.key
  2. Check it:  extprov check --config $CONF_FILE
  3. Start it:  $start
  4. Send iotedged to extprov: $IOTEDGE_CONFIG needs this provisioning: section
EOF
    if [ -n "$IOTEDGE_BACKUP" ]; then
        echo "     (written by --configure-iotedge; the old file is $IOTEDGE_BACKUP):"
    else
        echo "     (install.sh --configure-iotedge writes it, keeping a backup):"
    fi
    echo
    provisioning_block "$(extprov_endpoint 2>/dev/null)"
    echo
    if [ "$INIT" = systemd ]; then
        echo "     then restart iotedged: systemctl restart iotedge"
    else
        echo "     then restart iotedged: /etc/init.d/iotedge restart, or as its init starts it"
    fi
}

# Every change an install makes, in order.
install_steps() {
    ensure_accounts
    install_executable
    install_docs
    install_config
    case $INIT in
    systemd) install_systemd_unit ;;
    openrc) install_openrc_script ;;
    *) install_init_script ;;
    esac
    configure_iotedge
    record_made_folders
}

do_install() {
    check_install
    run_checked install_steps
    activate_service
    report_changes
    print_next_steps
}

# ---------------------------------------------------------------------------------------
# Uninstall: the executable and the service go; /etc/extprov stays unless --purge

installed_files() {
    for path in "$BIN" "$UNIT_FILE" /usr/lib/systemd/system/extprov.service "$WANTS_LINK" \
        "$INIT_SCRIPT" "$LOGROTATE_FILE" "$DOC_DIR/README.md"; do
        if [ -e "$R$path" ] || [ -L "$R$path" ]; then
            echo "$path"
        fi
    done
    for link in "$R"/etc/rc?.d/[SK][0-9][0-9]extprov "$R"/etc/init.d/S[0-9][0-9]extprov \
        "$R"/etc/runlevels/*/extprov; do
        if [ -L "$link" ]; then
            echo "${link#"$R"}"
        fi
    done
}

stop_service() {
    [ "$LIVE" = yes ] || return 0
    if [ -d /run/systemd/system ] &&
        systemctl list-unit-files extprov.service 2>/dev/null | grep -q extprov; then
        change systemctl disable --now extprov.service
    fi
    if [ -x "$INIT_SCRIPT" ]; then
        change "$INIT_SCRIPT" stop
        if command -v update-rc.d >/dev/null 2>&1; then
            change update-rc.d -f extprov remove
        fi
        if command -v rc-update >/dev/null 2>&1 && [ -L "$OPENRC_LINK" ]; then
            change rc-update del extprov default
        fi
    fi
}

do_uninstall() {
    # Read before --purge removes the configuration that names it.
    endpoint=$(section_value listen endpoint "$R$CONF_FILE")
    run_checked uninstall_steps
    report_kept_accounts
    warn_iotedge_still_sent "${endpoint:-$DEFAULT_ENDPOINT}"
    report_changes
}

# Every change --uninstall makes, in order.
uninstall_steps() {
    files=$(installed_files)
    if [ -z "$files" ]; then
        say "extprov is not installed in $(shown /)"
    else
        stop_service
        while read -r path; do
            change rm -rf "$R$path"
        done <<EOF
$files
EOF
        if [ "$LIVE" = yes ] && [ -d /run/systemd/system ]; then
            change systemctl daemon-reload
        fi
    fi
    remove_made_folders
    purge_config
}

# The folders install.sh made, deepest first, and extprov's own, each only if now empty:
# rmdir, never rm -r, so a folder that holds anything else stays.
remove_made_folders() {
    record=$R$MADE_RECORD
    own=$(dirname "$MADE_RECORD")
    # Deepest first, each once: extprov's own folder may be in the record too.
    if [ -f "$record" ]; then
        folders=$(printf '%s\n' "$own" | cat "$record" - | sort -r -u)
        change rm -f "$record"
    else
        folders=$own
    fi
    while read -r folder; do
        case $folder in
        */../* | */.. | /) continue ;;
        /*) ;;
        *) continue ;;
        esac
        if [ ! -d "$R$folder" ] || [ -L "$R$folder" ]; then
            continue
        fi
        # A plan or a dry run removed none of the files inside, so it cannot tell which
        # will be empty: the plan checks them all.
        if [ "$PLANNING" = yes ]; then
            check_in_image rmdir "$R$folder"
        elif [ "$DRY_RUN" = yes ]; then
            CHANGES=$((CHANGES + 1))
            say "would run: rmdir $R$folder (if nothing else is left in it by then)"
        elif [ -z "$(ls -A "$R$folder")" ]; then
            change rmdir "$R$folder"
        fi
    done <<EOF
$folders
EOF
}

# The accounts stay: files they own may remain, and iotedge is iotedged's group.
report_kept_accounts() {
    if grep -q '^iotedge:' "$R/etc/group" 2>/dev/null; then
        say "kept the group iotedge: iotedged reaches its sockets through it; leave it"
    fi
    kept=""
    if grep -q '^extprov:' "$R/etc/passwd" 2>/dev/null; then
        kept="user extprov"
    fi
    if grep -q '^extprov:' "$R/etc/group" 2>/dev/null; then
        kept="${kept:+$kept, }group extprov"
    fi
    [ -n "$kept" ] || return 0
    if [ "$LIVE" = yes ]; then
        say "kept the accounts ($kept): files they own may remain;" \
            "userdel extprov removes extprov's"
    else
        # Never a command that acts on this machine's accounts: the image's are in $R/etc.
        say "kept the accounts ($kept) in the image: files they own may remain; remove" \
            "extprov's lines from $R/etc/passwd and $R/etc/group (and shadow, gshadow)," \
            "or run userdel --root $R extprov where shadow's userdel is available"
    fi
}

# iotedged, sent to an endpoint nothing serves any more, would fail to provision.
warn_iotedge_still_sent() {
    file=$R$IOTEDGE_CONFIG
    [ -f "$file" ] || return 0
    [ "$(section_value provisioning source "$file")" = external ] || return 0
    [ "$(section_value provisioning endpoint "$file")" = "$1" ] || return 0
    warn "$file still sends iotedged to $1, which nothing serves now; replace its" \
        "provisioning: section (a backup beside it, if --configure-iotedge wrote it) and" \
        "restart iotedged"
}

purge_config() {
    if [ "$PURGE" = no ]; then
        if [ -d "$R$CONF_DIR" ]; then
            say "kept $(shown "$CONF_DIR") (configuration and secrets); --purge removes it"
        fi
        return 0
    fi
    for path in "$CONF_DIR" /var/log/extprov.log; do
        if [ -e "$R$path" ]; then
            change rm -rf "$R$path"
        fi
    done
}

report_changes() {
    if [ "$CHANGES" = 0 ]; then
        say "nothing to change in $(shown /)"
    elif [ "$DRY_RUN" = yes ]; then
        say "dry run: $CHANGES changes shown above, none made"
    fi
}

main() {
    parse_args "$@"
    trap cleanup EXIT
    trap 'exit 1' HUP INT TERM
    check_tools
    check_root
    if [ "$ACTION" = uninstall ]; then
        do_uninstall
    else
        do_install
    fi
}

main "$@"
