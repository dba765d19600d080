#!/usr/bin/env bash
# Installs and starts the real services the test suite talks to, and stops them again.
#
#   scripts/services.sh install   Debian packages only (what is missing)
#   scripts/services.sh up        install, then start: Docker engine + BusyBox test image,
#                                 sshd on loopback for ssh:// engines, virtlogd + libvirtd
#                                 (qemu:///system), moto's AWS server
#   scripts/services.sh up-ssh    only the sshd for ssh:// engines (see its section), beside the rest
#   scripts/services.sh up-swarm  only the 3-node Docker Swarm (see its section), beside the rest;
#                                 down-swarm stops it (up and down include it)
#   scripts/services.sh down      stop what `up` started (nothing else)
#   scripts/services.sh status    what runs, and who started it
#   scripts/services.sh env       print the environment file tests load
#
# State (sockets, data, logs, pidfiles) lives in $RTM_SERVICES_DIR (default: .services/ in the
# repository). Services found already running are reused and never stopped by `down`.
# With RTM_SERVICES_OWNER set (`make test` does), `up` tags what it starts with that owner and
# `down` stops only what that owner started, so a test run leaves services someone else started
# alone; if another owner's run still uses them, that run inherits them instead. Without an
# owner, `down` stops everything this script started.
# Also installed, for the tests that start them with their own settings: ovmf, swtpm, tmux,
# GNU screen, prometheus (server + promtool), prometheus-node-exporter, wrk, docker-registry, curl
# (the executable docs run the curl examples).
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE_DIR=${RTM_SERVICES_DIR:-$REPO_ROOT/.services}
VENV=${RTM_VENV:-$REPO_ROOT/.venv}
MOTO_PORT=${RTM_MOTO_PORT:-5555}
OWNER=${RTM_SERVICES_OWNER:-}
TEST_IMAGE=rtm-busybox:1.0
PIDS_DIR=$STATE_DIR/pids
DOCKER_DIR=$STATE_DIR/docker
# Sockets live in the engine's socket and exec-root folder; a unix socket path is limited to 107
# bytes and containerd's is exec-root + 38, so a deep checkout gets that folder under /run.
DOCKER_RUN_DIR=$DOCKER_DIR
if ((${#DOCKER_RUN_DIR} > 60)); then
    DOCKER_RUN_DIR=/run/rtm-services-$(printf '%s' "$STATE_DIR" | cksum | cut -d' ' -f1)
fi
DOCKER_SOCK=$DOCKER_RUN_DIR/docker.sock
DOCKER_EXEC_ROOT=$DOCKER_RUN_DIR/exec
DOCKER_HOST_URL=unix://$DOCKER_SOCK
# The engine gets a bridge of its own rather than docker0: another dockerd started with
# `--bridge none` (a test's, say) deletes docker0 and would cut this engine's containers off.
DOCKER_BRIDGE=${RTM_DOCKER_BRIDGE:-rtmd0}
DOCKER_BRIDGE_ADDRESS=${RTM_DOCKER_BRIDGE_ADDRESS:-172.29.0.1/16}
LIBVIRT_URI=qemu:///system
ENV_FILE=$STATE_DIR/env
# The engine's own client (docker.io), not whatever newer client may sit earlier on PATH.
DOCKER_CLI=/usr/bin/docker

PACKAGES=(
    docker.io busybox-static iproute2
    libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils dnsmasq-base
    libvirt-dev pkg-config ovmf swtpm swtpm-tools
    tmux screen prometheus prometheus-node-exporter wrk docker-registry
    openssh-server openssh-client curl
)

log() { printf '[services] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------------------------
# Packages

missing_packages() {
    local pkg status
    for pkg in "${PACKAGES[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
        [[ $status == installed ]] || printf '%s\n' "$pkg"
    done
}

install_packages() {
    local missing started
    mapfile -t missing < <(missing_packages)
    if ((${#missing[@]} == 0)); then
        log "packages: all ${#PACKAGES[@]} installed"
        return
    fi
    [[ $(id -u) == 0 ]] || die "installing ${missing[*]} needs root"
    log "packages: installing ${missing[*]}"
    started=$SECONDS
    export DEBIAN_FRONTEND=noninteractive
    # Wait for a dpkg lock held by someone else instead of failing at once.
    local apt=(apt-get -y -q -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confnew)
    "${apt[@]}" update
    "${apt[@]}" install --no-install-recommends "${missing[@]}"
    log "packages: installed ${#missing[@]} in $((SECONDS - started)) s"
}

# ---------------------------------------------------------------------------------------------
# Process bookkeeping: pids/NAME.pid for what this script started, pids/NAME.owner for whom.

pid_alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }

# The pid recorded for NAME, if that process still runs the expected program.
recorded_pid() {
    local name=$1 program=$2 pid
    [[ -f $PIDS_DIR/$name.pid ]] || return 1
    pid=$(<"$PIDS_DIR/$name.pid")
    if pid_alive "$pid" && [[ $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") == *"$program"* ]]; then
        printf '%s\n' "$pid"
        return 0
    fi
    rm -f "$PIDS_DIR/$name.pid" "$PIDS_DIR/$name.owner"
    return 1
}

record_started() {
    local name=$1 pid=$2
    mkdir -p "$PIDS_DIR"
    printf '%s\n' "$pid" >"$PIDS_DIR/$name.pid"
    printf '%s\n' "${OWNER:-manual}" >"$PIDS_DIR/$name.owner"
}

owned_by_caller() {
    local name=$1
    [[ -z $OWNER ]] && return 0
    [[ -f $PIDS_DIR/$name.owner && $(<"$PIDS_DIR/$name.owner") == "$OWNER" ]]
}

# Owners using the services right now: users/OWNER holds the pid of the owner's shell (the
# caller of `up`), so a run that died is not counted.
register_user() {
    [[ -n $OWNER ]] || return 0
    mkdir -p "$STATE_DIR/users"
    printf '%s
' "$PPID" >"$STATE_DIR/users/$OWNER"
}

another_live_user() {
    local file
    for file in "$STATE_DIR"/users/*; do
        [[ -f $file && ${file##*/} != "$OWNER" ]] || continue
        if pid_alive "$(<"$file")"; then
            printf '%s
' "${file##*/}"
            return 0
        fi
        rm -f "$file"
    done
    return 1
}

# When this owner leaves while another run still uses the services, that run inherits them
# and stops them when it finishes.
hand_over_services() {
    [[ -n $OWNER ]] || return 0
    rm -f "$STATE_DIR/users/$OWNER"
    local heir name
    heir=$(another_live_user) || return 0
    for name in dockerd libvirtd virtlogd moto sshd swarm-n1 swarm-n2 swarm-n3; do
        if [[ -f $PIDS_DIR/$name.owner && $(<"$PIDS_DIR/$name.owner") == "$OWNER" ]]; then
            printf '%s
' "$heir" >"$PIDS_DIR/$name.owner"
            log "$name: left running for $heir, which still uses it"
        fi
    done
}

# One `up` or `down` at a time per state folder.
take_lock() {
    mkdir -p "$STATE_DIR"
    exec 9>"$STATE_DIR/lock"
    flock -w 900 9 || die "another services.sh holds $STATE_DIR/lock"
}

# SIGTERM, wait up to $2 seconds, then SIGKILL.
stop_pid() {
    local pid=$1 grace=${2:-15} waited=0
    pid_alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    while pid_alive "$pid" && ((waited < grace * 10)); do
        sleep 0.1
        waited=$((waited + 1))
    done
    if pid_alive "$pid"; then
        log "pid $pid ignored SIGTERM for ${grace} s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
}

# Pids of processes whose command line contains the exact text $1 (used with paths unique to
# this state folder, so only our own processes match).
pids_with_arg() {
    local needle=$1 dir cmd
    for dir in /proc/[0-9]*; do
        cmd=$(tr '\0' ' ' 2>/dev/null <"$dir/cmdline") || continue
        [[ $cmd == *"$needle"* ]] && printf '%s\n' "${dir#/proc/}"
    done
    return 0
}

# Waits until "$3..." succeeds for the daemon with pid $1 (log file $2); fails at once, with the
# log's tail, if the daemon exits first, or after 60 s.
wait_for_daemon() {
    local pid=$1 logfile=$2
    shift 2
    local deadline=$((SECONDS + 60))
    until "$@" >/dev/null 2>&1; do
        if ! pid_alive "$pid"; then
            tail -n 15 "$logfile" >&2
            die "pid $pid exited while starting; log: $logfile"
        fi
        ((SECONDS < deadline)) || die "no answer within 60 s; log: $logfile"
        sleep 0.2
    done
}

# Start "$@" detached from this shell (own session, output to a log); prints its pid.
spawn() {
    local logfile=$1
    shift
    # fd 9 is the state folder's lock: the daemon must not keep holding it.
    setsid "$@" </dev/null >>"$logfile" 2>&1 9>&- &
    printf '%s\n' "$!"
}

# ---------------------------------------------------------------------------------------------
# Docker engine

docker_cli() { "$DOCKER_CLI" -H "$DOCKER_HOST_URL" "$@"; }
docker_answers() { docker_cli version --format '{{.Server.Version}}' >/dev/null 2>&1; }

start_docker() {
    mkdir -p "$DOCKER_DIR" "$DOCKER_RUN_DIR"
    if docker_answers; then
        log "docker: reusing engine on $DOCKER_HOST_URL"
        return
    fi
    [[ -x /usr/sbin/dockerd ]] || die "dockerd missing: run '$0 install'"
    ensure_docker_bridge
    local pid
    pid=$(spawn "$DOCKER_DIR/dockerd.log" /usr/sbin/dockerd \
        --host "$DOCKER_HOST_URL" \
        --bridge "$DOCKER_BRIDGE" \
        --data-root "$DOCKER_DIR/data" \
        --exec-root "$DOCKER_EXEC_ROOT" \
        --pidfile "$DOCKER_DIR/dockerd.pid" \
        --shutdown-timeout 5)
    record_started dockerd "$pid"
    wait_for_daemon "$pid" "$DOCKER_DIR/dockerd.log" docker_answers
    local driver
    driver=$(docker_cli info --format '{{.Driver}}')
    [[ $driver == overlay2 ]] || log "docker: warning: storage driver is $driver, not overlay2"
    log "docker: engine $(docker_cli version --format '{{.Server.Version}}') started on $DOCKER_HOST_URL (pid $pid, storage $driver)"
}

ensure_docker_bridge() {
    [[ -e /sys/class/net/$DOCKER_BRIDGE ]] && return 0
    ip link add "$DOCKER_BRIDGE" type bridge
    ip addr add "$DOCKER_BRIDGE_ADDRESS" dev "$DOCKER_BRIDGE"
    ip link set "$DOCKER_BRIDGE" up
    touch "$DOCKER_DIR/bridge.created"
    log "docker: created bridge $DOCKER_BRIDGE ($DOCKER_BRIDGE_ADDRESS)"
}

build_test_image() {
    if docker_cli image inspect "$TEST_IMAGE" >/dev/null 2>&1; then
        log "image: $TEST_IMAGE present"
        return
    fi
    [[ -x /bin/busybox ]] || die "/bin/busybox missing: run '$0 install'"
    local rootfs applet
    rootfs=$(mktemp -d)
    # The rootfs is made of a static BusyBox and a link for each applet at its usual place.
    mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,home/app,var/www}
    chmod 1777 "$rootfs/tmp"
    cp /bin/busybox "$rootfs/bin/busybox"
    while read -r applet; do
        [[ -e $rootfs/$applet || -L $rootfs/$applet ]] || ln -s /bin/busybox "$rootfs/$applet"
    done < <(/bin/busybox --list-full)
    cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
    cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
app:x:1000:
nogroup:x:65534:
EOF
    chown 1000:1000 "$rootfs/home/app"
    # The image's working folder is /var/www: `httpd -f -p 8080` started there serves these, so
    # health checks (wget -q -O- http://127.0.0.1:8080/health) have a target.
    echo ok >"$rootfs/var/www/index.html"
    echo ok >"$rootfs/var/www/health"
    tar -C "$rootfs" -cf "$rootfs.tar" .
    docker_cli import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'WORKDIR /var/www' \
        --change 'CMD ["sh"]' \
        "$rootfs.tar" "$TEST_IMAGE" >/dev/null
    rm -rf "$rootfs" "$rootfs.tar"
    verify_test_image
    log "image: built $TEST_IMAGE from busybox-static $(dpkg-query -W -f='${Version}' busybox-static)"
}

# A container serving HTTP with the image's httpd must answer its own wget.
verify_test_image() {
    local name=rtm-setup-check-$$ body
    docker_cli run -d --name "$name" --label rtm.test=1 "$TEST_IMAGE" httpd -f -p 8080 >/dev/null
    body=$(docker_cli exec "$name" sh -c 'for i in 1 2 3 4 5 6 7 8 9 10; do
        wget -q -O- http://127.0.0.1:8080/ && exit 0; sleep 0.2; done; exit 1' || true)
    docker_cli rm -f "$name" >/dev/null
    if [[ $body != ok ]]; then
        docker_cli rmi -f "$TEST_IMAGE" >/dev/null 2>&1 || true  # so the next `up` builds it again
        die "image check: httpd in $TEST_IMAGE did not answer wget (got '$body')"
    fi
}

stop_docker() {
    [[ -f $PIDS_DIR/dockerd.pid ]] || return 0
    owned_by_caller dockerd || { log "docker: left running (started by another owner)"; return 0; }
    local pid
    if pid=$(recorded_pid dockerd dockerd); then
        log "docker: stopping engine (pid $pid)"
        stop_pid "$pid" 30
    fi
    # containerd and its shims are dockerd's children or were re-parented: find them by the
    # exec-root path, which only our engine uses.
    local leftover
    for leftover in $(pids_with_arg "$DOCKER_EXEC_ROOT"); do
        log "docker: stopping leftover pid $leftover ($(tr '\0' ' ' 2>/dev/null <"/proc/$leftover/cmdline" | cut -c1-60))"
        stop_pid "$leftover" 5
    done
    kill_container_leftovers
    unmount_below "$DOCKER_DIR"
    if [[ $DOCKER_RUN_DIR != "$DOCKER_DIR" ]]; then
        unmount_below "$DOCKER_RUN_DIR"
        rm -rf --one-file-system "$DOCKER_RUN_DIR"
    fi
    if [[ -f $DOCKER_DIR/bridge.created ]]; then
        ip link del "$DOCKER_BRIDGE" 2>/dev/null || true
        rm -f "$DOCKER_DIR/bridge.created"
    fi
    rm -f "$PIDS_DIR/dockerd.pid" "$PIDS_DIR/dockerd.owner"
}

# A container's processes outlive a crashed engine and its shim. They sit in the container's
# cgroup (cgroupfs driver: docker/ID), and this engine's container ids are its data-root's.
kill_container_leftovers() {
    local dir id procs pid
    for dir in "$DOCKER_DIR"/data/containers/*/; do
        [[ -d $dir ]] || continue
        id=$(basename "$dir")
        # Every cgroup v1 hierarchy lists the same processes: one is enough.
        for procs in /sys/fs/cgroup/pids/docker/"$id"/cgroup.procs /sys/fs/cgroup/docker/"$id"/cgroup.procs; do
            [[ -f $procs ]] || continue
            while read -r pid; do
                kill -KILL "$pid" 2>/dev/null && log "docker: killed pid $pid left in container ${id:0:12}"
            done <"$procs"
            break
        done
    done
}

# Lazily unmounts what is still mounted at or below $1 (overlay and netns mounts a crashed
# engine leaves), deepest first.
unmount_below() {
    local root=$1 point
    awk -v root="$root" '$5 == root || index($5, root "/") == 1 { print $5 }' /proc/self/mountinfo |
        sort -r | while read -r point; do
            umount -l "$point" 2>/dev/null || true
        done
}

# ---------------------------------------------------------------------------------------------
# libvirt

virsh_sys() { virsh -q -c "$LIBVIRT_URI" "$@"; }
libvirt_answers() { virsh_sys version >/dev/null 2>&1; }

start_libvirt() {
    mkdir -p "$STATE_DIR/libvirt"
    grant_kvm
    start_virtlogd
    if libvirt_answers; then
        log "libvirt: reusing libvirtd on $LIBVIRT_URI"
    else
        [[ -x /usr/sbin/libvirtd ]] || die "libvirtd missing: run '$0 install'"
        local pid
        pid=$(spawn "$STATE_DIR/libvirt/libvirtd.log" /usr/sbin/libvirtd --pid-file "$STATE_DIR/libvirt/libvirtd.pid")
        record_started libvirtd "$pid"
        wait_for_daemon "$pid" "$STATE_DIR/libvirt/libvirtd.log" libvirt_answers
        log "libvirt: libvirtd started (pid $pid), $(virsh_sys version | grep -m1 'Running hypervisor' || true)"
    fi
    ensure_default_pool
    report_kvm_cpu
}

# virtlogd is shared by every libvirtd on the host through one socket: judge it by that socket.
# (A second virtlogd would take the socket over and remove it when it stops.)
VIRTLOGD_SOCK=/run/libvirt/virtlogd-sock
virtlogd_answers() {
    python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])' "$VIRTLOGD_SOCK" 2>/dev/null
}

start_virtlogd() {
    virtlogd_answers && return 0
    local pid
    if pid=$(recorded_pid virtlogd virtlogd); then
        log "libvirt: our virtlogd (pid $pid) lost its socket: restarting it"
        stop_pid "$pid" 10
    fi
    pid=$(spawn "$STATE_DIR/libvirt/virtlogd.log" /usr/sbin/virtlogd --pid-file "$STATE_DIR/libvirt/virtlogd.pid")
    record_started virtlogd "$pid"
    wait_for_daemon "$pid" "$STATE_DIR/libvirt/virtlogd.log" virtlogd_answers
    log "libvirt: virtlogd started (pid $pid)"
}

# QEMU runs as libvirt-qemu and /dev/kvm is root-only here: open it so KVM domains start.
grant_kvm() {
    [[ -c /dev/kvm ]] || { log "libvirt: no /dev/kvm, domains run under TCG only"; return 0; }
    local mode
    mode=$(stat -c %a /dev/kvm)
    [[ $mode == 666 ]] && return 0
    [[ -f $STATE_DIR/kvm.mode ]] || printf '%s\n' "$mode" >"$STATE_DIR/kvm.mode"
    chmod 0666 /dev/kvm
    log "libvirt: /dev/kvm opened to all users (was $mode)"
}

restore_kvm() {
    [[ -f $STATE_DIR/kvm.mode && -c /dev/kvm ]] || return 0
    chmod "$(<"$STATE_DIR/kvm.mode")" /dev/kvm
    rm -f "$STATE_DIR/kvm.mode"
}

# Whether KVM runs the CPU the guests use (host-passthrough), tried with a paused transient
# domain as the backend does for each guest: some hosts start KVM but abort that CPU (nested
# KVM: "failed to set MSR 0x10a"). Only said here; the backend falls back per guest
# (docs/vms.md), and the tests follow what its trials find.
report_kvm_cpu() {
    [[ -c /dev/kvm ]] || return 0
    local passthrough plain
    if passthrough=$(kvm_trial "<cpu mode='host-passthrough'/>"); then
        log "libvirt: KVM runs guests with cpu host-passthrough"
    elif plain=$(kvm_trial ""); then
        log "libvirt: KVM runs, but not cpu host-passthrough ($passthrough): guests fall back to another CPU (docs/vms.md)"
    else
        log "libvirt: KVM does not start here ($plain): guests run under TCG (docs/vms.md)"
    fi
}

kvm_trial() {
    local name=rtm-kvm-probe-setup-$$ xml rc=0
    xml=$(mktemp)
    printf "<domain type='kvm'><name>%s</name><memory unit='MiB'>16</memory><os><type arch='x86_64' machine='pc'>hvm</type></os>%s<devices><memballoon model='none'/></devices></domain>" \
        "$name" "$1" >"$xml"
    virsh_sys create "$xml" --paused >/dev/null 2>"$xml.err" || rc=$?
    ((rc == 0)) && virsh_sys destroy "$name" >/dev/null 2>&1
    [[ $rc == 0 ]] || tr '\n' ' ' <"$xml.err" | sed 's/^.*error: //; s/ *$//' | cut -c1-200
    rm -f "$xml" "$xml.err"
    return $rc
}

ensure_default_pool() {
    if ! virsh_sys pool-info default >/dev/null 2>&1; then
        mkdir -p /var/lib/libvirt/images
        virsh_sys pool-define-as default dir --target /var/lib/libvirt/images >/dev/null
        log "libvirt: defined storage pool 'default' at /var/lib/libvirt/images"
    fi
    # A freshly started libvirtd may still be re-activating the pool itself: a failed start
    # only counts if the pool is still not running afterwards.
    if ! pool_running default; then
        virsh_sys pool-build default >/dev/null 2>&1 || true
        if virsh_sys pool-start default >/dev/null 2>&1; then
            log "libvirt: started storage pool 'default'"
        fi
        pool_running default || die "storage pool 'default' does not start: $(virsh_sys pool-start default 2>&1)"
    fi
}

pool_running() {
    # Matched in bash, not with `| grep -q`: under pipefail an early grep exit fails the pipe.
    [[ $(virsh_sys pool-info "$1" 2>/dev/null) =~ State:[[:space:]]*running ]]
}

stop_libvirt() {
    local pid
    if pid=$(recorded_pid libvirtd libvirtd) && owned_by_caller libvirtd; then
        # Networks our libvirtd brought up run dnsmasq outside it: take them down first.
        local net
        for net in $(virsh_sys net-list --name 2>/dev/null); do
            virsh_sys net-destroy "$net" >/dev/null 2>&1 && log "libvirt: network $net stopped"
        done
        local running
        running=$(virsh_sys list --name 2>/dev/null | tr '\n' ' ')
        [[ -z ${running// /} ]] || log "libvirt: warning: domains still running: $running"
        log "libvirt: stopping libvirtd (pid $pid)"
        stop_pid "$pid" 30
        rm -f "$PIDS_DIR/libvirtd.pid" "$PIDS_DIR/libvirtd.owner"
        restore_kvm
    elif pid=$(recorded_pid libvirtd libvirtd); then
        log "libvirt: libvirtd left running (started by another owner)"
    fi
    if pid=$(recorded_pid virtlogd virtlogd) && owned_by_caller virtlogd; then
        log "libvirt: stopping virtlogd (pid $pid)"
        stop_pid "$pid" 15
        rm -f "$PIDS_DIR/virtlogd.pid" "$PIDS_DIR/virtlogd.owner"
    fi
}

# ---------------------------------------------------------------------------------------------
# moto (AWS APIs)

moto_url() { printf 'http://127.0.0.1:%s' "$MOTO_PORT"; }
moto_answers() { "$VENV/bin/python" - "$(moto_url)/moto-api/config" 2>/dev/null <<'EOF'
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2).read()
EOF
}

start_moto() {
    mkdir -p "$STATE_DIR/moto"
    [[ -x $VENV/bin/moto_server ]] || die "$VENV/bin/moto_server missing: run 'make venv'"
    if moto_answers; then
        log "moto: reusing server on $(moto_url)"
    else
        local pid
        pid=$(spawn "$STATE_DIR/moto/moto.log" "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT")
        record_started moto "$pid"
        wait_for_daemon "$pid" "$STATE_DIR/moto/moto.log" moto_answers
        log "moto: server started on $(moto_url) (pid $pid)"
    fi
    configure_moto
}

# Lambda invoke would run functions in Docker images pulled from a registry; no registry is
# reachable, so switch moto to its docker-free Lambda (invoke echoes the payload). moto keeps
# those functions in a separate backend, so this is set once, before any test deploys.
configure_moto() {
    "$VENV/bin/python" - "$(moto_url)/moto-api/config" <<'EOF'
import json, sys, urllib.request
url = sys.argv[1]
current = json.load(urllib.request.urlopen(url, timeout=5))
if current.get("lambda", {}).get("use_docker", True) is not False:
    request = urllib.request.Request(
        url, data=json.dumps({"lambda": {"use_docker": False}}).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(request, timeout=5).read()
    print("[services] moto: Lambda set to run without Docker", file=sys.stderr)
EOF
}

stop_moto() {
    local pid
    pid=$(recorded_pid moto moto_server) || return 0
    owned_by_caller moto || { log "moto: left running (started by another owner)"; return 0; }
    log "moto: stopping server (pid $pid)"
    stop_pid "$pid" 10
    rm -f "$PIDS_DIR/moto.pid" "$PIDS_DIR/moto.owner"
}

# ---------------------------------------------------------------------------------------------
# sshd for ssh:// Docker engines: loopback only, with a key pair, host keys and known_hosts made
# here. The client side is the plain `ssh` command (what rtm-console runs for ssh:// engines),
# configured the way an operator would, by Host blocks in a file under /etc/ssh/ssh_config.d:
#   $SSH_ALIAS                  the engine of this setup through sshd (key accepted, host key known)
#   $SSH_ALIAS-wrong-key        the same sshd with a key it does not accept
#   $SSH_ALIAS-wrong-host-key   the same sshd, but known_hosts holds another host key for it
# All use HostKeyAlias $SSH_ALIAS, so a test's own sshd on another port (ssh://ALIAS:PORT) is
# checked against the same known_hosts.

SSH_DIR=$STATE_DIR/ssh
SSH_SUM=$(printf '%s' "$STATE_DIR" | cksum | cut -d' ' -f1)
SSH_PORT=${RTM_SSH_PORT:-$((22000 + SSH_SUM % 1000))}
SSH_ALIAS=rtm-test-ssh-$((SSH_SUM % 100000))
SSH_CLIENT_CONFIG=/etc/ssh/ssh_config.d/$SSH_ALIAS.conf

ssh_answers() { ssh -o ConnectTimeout=5 "$SSH_ALIAS" true </dev/null >/dev/null 2>&1; }

make_ssh_keys() {
    mkdir -p "$SSH_DIR"
    chmod 700 "$SSH_DIR"
    local key
    for key in client_key wrong_key host_key other_host_key; do
        [[ -f $SSH_DIR/$key ]] || ssh-keygen -q -t ed25519 -N '' -C "rtm-test $key" -f "$SSH_DIR/$key"
    done
    cp "$SSH_DIR/client_key.pub" "$SSH_DIR/authorized_keys"
    printf '%s %s\n' "$SSH_ALIAS" "$(cut -d' ' -f1,2 "$SSH_DIR/host_key.pub")" >"$SSH_DIR/known_hosts"
    printf '%s %s\n' "$SSH_ALIAS" "$(cut -d' ' -f1,2 "$SSH_DIR/other_host_key.pub")" >"$SSH_DIR/known_hosts_wrong"
}

write_sshd_config() {
    # The remote side of an ssh:// engine runs `docker system dial-stdio`: SetEnv points that
    # docker command at this setup's engine.
    cat >"$SSH_DIR/sshd_config" <<EOF
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $SSH_DIR/host_key
PidFile $SSH_DIR/sshd.pid
AuthorizedKeysFile $SSH_DIR/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
SetEnv DOCKER_HOST=$DOCKER_HOST_URL
EOF
}

write_ssh_client_config() {
    local suffix identity known
    {
        printf '# Written by rtm-console scripts/services.sh for its test sshd; removed by `down`.\n'
        for suffix in "" -wrong-key -wrong-host-key; do
            identity=$SSH_DIR/client_key known=$SSH_DIR/known_hosts
            [[ $suffix == -wrong-key ]] && identity=$SSH_DIR/wrong_key
            [[ $suffix == -wrong-host-key ]] && known=$SSH_DIR/known_hosts_wrong
            printf 'Host %s\n' "$SSH_ALIAS$suffix"
            printf '    HostName 127.0.0.1\n    Port %s\n    User root\n    HostKeyAlias %s\n' "$SSH_PORT" "$SSH_ALIAS"
            printf '    IdentityFile %s\n    IdentitiesOnly yes\n    UserKnownHostsFile %s\n' "$identity" "$known"
            printf '    StrictHostKeyChecking yes\n    BatchMode yes\n'
        done
    } >"$SSH_CLIENT_CONFIG.tmp"
    mv "$SSH_CLIENT_CONFIG.tmp" "$SSH_CLIENT_CONFIG"
}

start_sshd() {
    [[ -x /usr/sbin/sshd ]] || die "sshd missing: run '$0 install'"
    make_ssh_keys
    write_sshd_config
    write_ssh_client_config
    local pid
    if pid=$(recorded_pid sshd "$SSH_DIR/sshd_config") && ssh_answers; then
        log "ssh: reusing sshd on 127.0.0.1:$SSH_PORT (pid $pid)"
        return
    fi
    mkdir -p /run/sshd  # its privilege separation folder
    pid=$(spawn "$SSH_DIR/sshd.log" /usr/sbin/sshd -D -e -f "$SSH_DIR/sshd_config")
    record_started sshd "$pid"
    wait_for_daemon "$pid" "$SSH_DIR/sshd.log" ssh_answers
    local version
    version=$(ssh "$SSH_ALIAS" docker version --format '{{.Server.Version}}' </dev/null 2>&1) ||
        die "ssh: the engine does not answer through sshd: $version"
    log "ssh: sshd started on 127.0.0.1:$SSH_PORT (pid $pid); ssh://$SSH_ALIAS reaches engine $version"
}

stop_sshd() {
    local pid
    if pid=$(recorded_pid sshd "$SSH_DIR/sshd_config"); then
        owned_by_caller sshd || { log "ssh: sshd left running (started by another owner)"; return 0; }
        log "ssh: stopping sshd (pid $pid)"
        stop_pid "$pid" 10
        rm -f "$PIDS_DIR/sshd.pid" "$PIDS_DIR/sshd.owner"
    fi
    rm -f "$SSH_CLIENT_CONFIG"
}

ssh_env() {
    cat <<EOF
export RTM_TEST_SSH_DOCKER_HOST=ssh://$SSH_ALIAS
export RTM_TEST_SSH_WRONG_KEY_DOCKER_HOST=ssh://$SSH_ALIAS-wrong-key
export RTM_TEST_SSH_WRONG_HOST_KEY_DOCKER_HOST=ssh://$SSH_ALIAS-wrong-host-key
export RTM_TEST_SSH_DIR=$SSH_DIR
export RTM_TEST_SSH_KEY=$SSH_DIR/client_key
export RTM_TEST_SSH_KNOWN_HOSTS=$SSH_DIR/known_hosts
EOF
}

# `up-ssh`: the sshd alone, beside services already up (the environment file is rewritten).
cmd_up_ssh() {
    [[ $(id -u) == 0 ]] || die "starting sshd needs root"
    take_lock
    docker_answers || die "no engine on $DOCKER_HOST_URL: run '$0 up'"
    start_sshd
    write_env
}

# ---------------------------------------------------------------------------------------------
# Docker Swarm: a manager and two workers, each dockerd in its own network namespace (and UTS
# namespace, for its hostname) on a bridge inside a hub namespace; this machine reaches them
# through a veth at $SWARM_NET.1. Nodes are labelled zone=b/a/a. A bridge in the root namespace
# would drop node-to-node traffic (FORWARD policy DROP with bridge-nf-call-iptables), so it stays
# in the hub. Containers of node N sit below the cgroup rtm-swarm-ID-nN, found there at teardown.
# Names, the subnet and cgroups carry an id from the state folder, so two checkouts' swarms on one
# machine do not meet.

SWARM_NODES=3
SWARM_ZONES=(b a a)
SWARM_ID=$(( $(printf '%s' "$STATE_DIR" | cksum | cut -d' ' -f1) % 250 ))
SWARM_NET=10.231.$SWARM_ID
SWARM_POOL=10.232.0.0/16
SWARM_HUB=rtmsw${SWARM_ID}hub
SWARM_ROOT_LINK=rtmsw${SWARM_ID}root  # at most 15 characters
SWARM_CGROUP=rtm-swarm-$SWARM_ID
SWARM_DIR=$STATE_DIR/swarm
# Sockets and exec-roots: a unix socket path has at most 107 bytes (containerd's is exec-root + 38).
SWARM_RUN_DIR=$SWARM_DIR
if ((${#SWARM_RUN_DIR} > 50)); then
    SWARM_RUN_DIR=/run/rtm-swarm-$(printf '%s' "$STATE_DIR" | cksum | cut -d' ' -f1)
fi

swarm_ns() { printf 'rtmsw%sn%s' "$SWARM_ID" "$1"; }
swarm_hostname() { printf 'rtm-sw%s' "$1"; }
swarm_sock() { printf '%s/n%s/docker.sock' "$SWARM_RUN_DIR" "$1"; }
swarm_cli() { "$DOCKER_CLI" -H "unix://$(swarm_sock "$1")" "${@:2}"; }
swarm_node_answers() { swarm_cli "$1" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# Ready when the manager sees every node Ready.
swarm_answers() {
    local ready
    ready=$(swarm_cli 1 node ls --format '{{.Status}}' 2>/dev/null | grep -c '^Ready$') || return 1
    ((ready == SWARM_NODES))
}

swarm_network() {
    ip netns add "$SWARM_HUB"
    ip -n "$SWARM_HUB" link set lo up
    ip -n "$SWARM_HUB" link add rtmswbr type bridge
    ip -n "$SWARM_HUB" link set rtmswbr up
    ip link add "$SWARM_ROOT_LINK" type veth peer name root-p netns "$SWARM_HUB"
    ip -n "$SWARM_HUB" link set root-p master rtmswbr up
    ip addr add "$SWARM_NET.1/24" dev "$SWARM_ROOT_LINK"
    ip link set "$SWARM_ROOT_LINK" up
    local i ns
    for i in $(seq 1 "$SWARM_NODES"); do
        ns=$(swarm_ns "$i")
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        ip -n "$ns" link add eth0 type veth peer name "n$i-p" netns "$SWARM_HUB"
        ip -n "$SWARM_HUB" link set "n$i-p" master rtmswbr up
        ip -n "$ns" addr add "$SWARM_NET.1$i/24" dev eth0
        ip -n "$ns" link set eth0 up
    done
}

# dockerd N inside its namespaces. `ip netns exec` mounts a fresh /sys without the cgroup v1
# hierarchies: they are mounted again inside. Each engine has its own key file (so its own node
# id) and hostname.
swarm_start_engine() {
    local i=$1 dir=$SWARM_DIR/n$1 run=$SWARM_RUN_DIR/n$1 pid
    mkdir -p "$dir" "$run"
    printf '{"deprecated-key-path": "%s/key.json"}\n' "$dir" >"$dir/daemon.json"
    pid=$(spawn "$dir/dockerd.log" ip netns exec "$(swarm_ns "$i")" unshare --uts sh -c "hostname $(swarm_hostname "$i")
        mount -t tmpfs -o mode=755 cgroup_root /sys/fs/cgroup
        for c in cpu cpuacct cpuset memory devices freezer blkio pids; do
            mkdir -p /sys/fs/cgroup/\$c; mount -t cgroup -o \$c cgroup /sys/fs/cgroup/\$c; done
        mkdir -p /sys/fs/cgroup/systemd; mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
        exec /usr/sbin/dockerd --host unix://$run/docker.sock --data-root $dir/data --exec-root $run/exec \
            --pidfile $dir/dockerd.pid --config-file $dir/daemon.json --cgroup-parent /$SWARM_CGROUP-n$i --shutdown-timeout 2")
    record_started "swarm-n$i" "$pid"
}

swarm_form() {
    local i token
    swarm_cli 1 swarm init --advertise-addr "$SWARM_NET.11" --listen-addr "$SWARM_NET.11:2377" \
        --default-addr-pool "$SWARM_POOL" >/dev/null
    swarm_cli 1 swarm update --dispatcher-heartbeat 1s >/dev/null  # a lost node is Down after ~3 s
    token=$(swarm_cli 1 swarm join-token -q worker)
    for i in $(seq 2 "$SWARM_NODES"); do
        swarm_cli "$i" swarm join --advertise-addr "$SWARM_NET.1$i" --listen-addr "$SWARM_NET.1$i:2377" \
            --token "$token" "$SWARM_NET.11:2377" >/dev/null
    done
    local deadline=$((SECONDS + 60))
    until swarm_answers; do
        ((SECONDS < deadline)) || die "swarm: not every node Ready within 60 s: $(swarm_cli 1 node ls 2>&1 | tr '\n' ' ')"
        sleep 0.2
    done
    for i in $(seq 1 "$SWARM_NODES"); do
        swarm_cli 1 node update --label-add "zone=${SWARM_ZONES[i - 1]}" "$(swarm_hostname "$i")" >/dev/null
    done
}

start_swarm() {
    if swarm_answers; then
        log "swarm: reusing the $SWARM_NODES-node swarm (manager unix://$(swarm_sock 1))"
        return
    fi
    [[ ! -e /run/netns/$SWARM_HUB ]] || stop_swarm_parts  # half of an earlier one
    docker_answers || die "swarm: the test image comes from the engine on $DOCKER_HOST_URL: run '$0 up'"
    local started=$SECONDS i pid
    mkdir -p "$SWARM_DIR"
    docker_cli save -o "$SWARM_DIR/image.tar" "$TEST_IMAGE"
    swarm_network
    for i in $(seq 1 "$SWARM_NODES"); do swarm_start_engine "$i"; done
    for i in $(seq 1 "$SWARM_NODES"); do
        pid=$(<"$PIDS_DIR/swarm-n$i.pid")
        wait_for_daemon "$pid" "$SWARM_DIR/n$i/dockerd.log" swarm_node_answers "$i"
        swarm_cli "$i" load -q -i "$SWARM_DIR/image.tar" >/dev/null
    done
    rm -f "$SWARM_DIR/image.tar"
    swarm_form
    log "swarm: $SWARM_NODES nodes (zones ${SWARM_ZONES[*]}) Ready in $((SECONDS - started)) s; manager unix://$(swarm_sock 1)"
}

stop_swarm() {
    [[ -e /run/netns/$SWARM_HUB || -f $PIDS_DIR/swarm-n1.pid ]] || return 0
    owned_by_caller swarm-n1 || { log "swarm: left running (started by another owner)"; return 0; }
    log "swarm: stopping $SWARM_NODES engines"
    stop_swarm_parts
}

# Every engine, then whatever is left in the nodes' namespaces and cgroups, then the namespaces,
# links, cgroups and mounts.
stop_swarm_parts() {
    local i pid ns procs
    # Containers first (BusyBox as PID 1 ignores SIGTERM, and an engine waits for them).
    for pid in $(cat /sys/fs/cgroup/pids/"$SWARM_CGROUP"-n*/*/cgroup.procs 2>/dev/null); do
        kill -KILL "$pid" 2>/dev/null || true
    done
    for i in $(seq 1 "$SWARM_NODES"); do
        pid=$(cat "$SWARM_DIR/n$i/dockerd.pid" 2>/dev/null || true)
        [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null || true
    done
    for i in $(seq 1 "$SWARM_NODES"); do
        pid=$(cat "$SWARM_DIR/n$i/dockerd.pid" 2>/dev/null || true)
        [[ -n $pid ]] && stop_pid "$pid" 5
        for pid in $(ip netns pids "$(swarm_ns "$i")" 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null || true
        done
        rm -f "$PIDS_DIR/swarm-n$i.pid" "$PIDS_DIR/swarm-n$i.owner"
    done
    for i in $(seq 1 "$SWARM_NODES"); do
        ns=$(swarm_ns "$i")
        for pid in $(ip netns pids "$ns" 2>/dev/null); do stop_pid "$pid" 2; done
        ip netns del "$ns" 2>/dev/null || true
        for procs in /sys/fs/cgroup/*/"$SWARM_CGROUP"-n"$i"; do
            [[ -d $procs ]] || continue
            find "$procs" -depth -type d -exec rmdir {} + 2>/dev/null || true
        done
    done
    ip link del "$SWARM_ROOT_LINK" 2>/dev/null || true
    ip netns del "$SWARM_HUB" 2>/dev/null || true
    unmount_below "$SWARM_DIR"
    [[ $SWARM_RUN_DIR == "$SWARM_DIR" ]] || { unmount_below "$SWARM_RUN_DIR"; rm -rf --one-file-system "$SWARM_RUN_DIR"; }
    rm -rf --one-file-system "$SWARM_DIR"
}

swarm_env() {
    [[ -e /run/netns/$SWARM_HUB ]] || return 0
    local i workers=()
    for i in $(seq 2 "$SWARM_NODES"); do workers+=("unix://$(swarm_sock "$i")"); done
    cat <<EOF
export RTM_TEST_SWARM_MANAGER=unix://$(swarm_sock 1)
export RTM_TEST_SWARM_WORKERS=$(IFS=,; printf '%s' "${workers[*]}")
export RTM_TEST_SWARM_HOSTNAMES=$(for i in $(seq 1 "$SWARM_NODES"); do printf '%s,' "$(swarm_hostname "$i")"; done | sed 's/,$//')
export RTM_TEST_SWARM_ZONES=$(IFS=,; printf '%s' "${SWARM_ZONES[*]}")
export RTM_TEST_SWARM_ADDRESSES=$(for i in $(seq 1 "$SWARM_NODES"); do printf '%s,' "$SWARM_NET.1$i"; done | sed 's/,$//')
export RTM_TEST_SWARM_HUB=$SWARM_HUB
export RTM_TEST_SWARM_NAMESPACES=$(for i in $(seq 1 "$SWARM_NODES"); do printf '%s,' "$(swarm_ns "$i")"; done)$SWARM_HUB
export RTM_TEST_SWARM_ROOT_LINK=$SWARM_ROOT_LINK
export RTM_TEST_SWARM_CGROUP=$SWARM_CGROUP
EOF
}

swarm_status() {
    if swarm_answers; then
        echo "swarm     $SWARM_NODES nodes Ready, manager unix://$(swarm_sock 1)"
    else
        echo "swarm     DOWN"
        return 1
    fi
}

# `up-swarm` / `down-swarm`: the swarm alone, beside services already up (the environment file
# is rewritten).
cmd_up_swarm() {
    [[ $(id -u) == 0 ]] || die "starting the swarm needs root"
    take_lock
    start_swarm
    write_env
}

cmd_down_swarm() {
    take_lock
    stop_swarm
    write_env
}

# ---------------------------------------------------------------------------------------------

write_env() {
    cat >"$ENV_FILE.tmp" <<EOF
export DOCKER_HOST=$DOCKER_HOST_URL
export LIBVIRT_DEFAULT_URI=$LIBVIRT_URI
export AWS_ENDPOINT_URL=$(moto_url)
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_DEFAULT_REGION=us-east-1
export RTM_TEST_IMAGE=$TEST_IMAGE
EOF
    ssh_env >>"$ENV_FILE.tmp"
    swarm_env >>"$ENV_FILE.tmp"
    mv "$ENV_FILE.tmp" "$ENV_FILE"
}

cmd_up() {
    local started=$SECONDS
    [[ $(id -u) == 0 ]] || die "starting the engines needs root"
    take_lock
    mkdir -p "$PIDS_DIR"
    register_user
    install_packages
    start_docker
    build_test_image
    start_sshd
    start_libvirt
    start_moto
    start_swarm
    write_env
    log "up in $((SECONDS - started)) s; environment: $ENV_FILE"
}

cmd_down() {
    take_lock
    hand_over_services
    stop_moto
    stop_sshd
    stop_swarm
    stop_docker
    stop_libvirt
    [[ -n $OWNER ]] || restore_kvm
    log "down"
}

cmd_status() {
    local name pid program rc=0
    for name in dockerd libvirtd virtlogd moto sshd; do
        case $name in moto) program=moto_server ;; sshd) program=$SSH_DIR/sshd_config ;; *) program=$name ;; esac
        if pid=$(recorded_pid "$name" "$program"); then
            printf '%-9s started here, pid %s, owner %s\n' "$name" "$pid" "$(cat "$PIDS_DIR/$name.owner" 2>/dev/null)"
        else
            printf '%-9s not started here\n' "$name"
        fi
    done
    if docker_answers; then echo "docker    answers on $DOCKER_HOST_URL"; else echo "docker    DOWN"; rc=1; fi
    if libvirt_answers; then echo "libvirt   answers on $LIBVIRT_URI"; else echo "libvirt   DOWN"; rc=1; fi
    if virtlogd_answers; then echo "virtlogd  answers on $VIRTLOGD_SOCK"; else echo "virtlogd  DOWN"; rc=1; fi
    if [[ -x $VENV/bin/python ]] && moto_answers; then echo "moto      answers on $(moto_url)"; else echo "moto      DOWN"; rc=1; fi
    if ssh_answers; then echo "sshd      answers on 127.0.0.1:$SSH_PORT (ssh://$SSH_ALIAS)"; else echo "sshd      DOWN"; rc=1; fi
    swarm_status || rc=1
    return $rc
}

cmd_env() {
    [[ -f $ENV_FILE ]] || die "no $ENV_FILE yet: run '$0 up'"
    cat "$ENV_FILE"
}

case ${1:-} in
    install) install_packages ;;
    up) cmd_up ;;
    up-ssh) cmd_up_ssh ;;
    up-swarm) cmd_up_swarm ;;
    down-swarm) cmd_down_swarm ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cmd_env ;;
    *) echo "usage: $0 install|up|up-ssh|up-swarm|down-swarm|down|status|env" >&2; exit 2 ;;
esac
