#!/usr/bin/env bash
# A throw-away single-node Slurm on this machine, for the cluster tests
# (tests/repro/test_cluster.py) and CI (.ci/run).
#
#   bash tests/cluster/local-slurm.sh start    install if needed, start munged, slurmctld, slurmd
#   bash tests/cluster/local-slurm.sh status   exit 0 when the node accepts jobs, 3 otherwise
#   bash tests/cluster/local-slurm.sh stop     stop the daemons that `start` started, and only those
#
# Needs root and Debian/Ubuntu (apt-get); does not need systemd. `start` is
# idempotent: when the cluster it started is still up it returns at once.
# Daemons already running that this script did not start (a real munged, say)
# are used as they are and never stopped.
#
# Environment:
#   SINKHORN_EM_SLURM_STATE   where PIDs, logs and Slurm state live
#                             (default /var/lib/sinkhorn-em-slurm)
#   SINKHORN_EM_SLURM_WAIT    seconds to wait for the node to become idle (default 60)
set -euo pipefail

STATE_DIR="${SINKHORN_EM_SLURM_STATE:-/var/lib/sinkhorn-em-slurm}"
WAIT_SECONDS="${SINKHORN_EM_SLURM_WAIT:-60}"
SLURM_CONF=/etc/slurm/slurm.conf
# Marks slurm.conf as ours, so that a real cluster's configuration is never overwritten.
CONF_MARKER="# written by sinkhorn-em tests/cluster/local-slurm.sh"
PACKAGES=(slurmctld slurmd slurm-client munge)
PARTITION=debug

log() { printf '[local-slurm] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# --- PID bookkeeping -------------------------------------------------------
# A recorded PID counts only while /proc/PID/comm still names the daemon, so a
# PID reused after a reboot or crash is never signalled.
pid_file() { printf '%s/%s.pid' "$STATE_DIR" "$1"; }

recorded_pid() {  # $1 = daemon name; prints the PID if it is alive and ours
    local file pid
    file="$(pid_file "$1")"
    [[ -s "$file" ]] || return 1
    pid="$(<"$file")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ -r "/proc/$pid/comm" && "$(<"/proc/$pid/comm")" == "$1" ]] || return 1
    printf '%s' "$pid"
}

record_from_daemon_pidfile() {  # $1 = daemon name, $2 = the pid file the daemon writes
    local pid
    for _ in $(seq 1 50); do
        if [[ -s "$2" ]]; then
            pid="$(tr -d '[:space:]' <"$2")"
            if [[ -r "/proc/$pid/comm" && "$(<"/proc/$pid/comm")" == "$1" ]]; then
                printf '%s\n' "$pid" >"$(pid_file "$1")"
                return 0
            fi
        fi
        sleep 0.1
    done
    return 1
}

# --- installation ----------------------------------------------------------
install_packages() {
    if command -v sbatch >/dev/null && command -v slurmctld >/dev/null \
        && command -v slurmd >/dev/null && command -v munged >/dev/null; then
        return 0
    fi
    command -v apt-get >/dev/null || die "sbatch is missing and apt-get is not available; install Slurm and munge by hand"
    [[ "$(id -u)" == 0 ]] || die "installing Slurm needs root; run as root or install ${PACKAGES[*]} first"
    log "installing ${PACKAGES[*]} with apt-get"
    # Package scripts must not start daemons behind our back: they would not be
    # recorded, so `stop` could not stop them. policy-rc.d exit 101 forbids it.
    local own_policy=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    local status=0
    {
        apt-get -o DPkg::Lock::Timeout=120 update -qq \
            && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 install -y -qq --no-install-recommends "${PACKAGES[@]}"
    } >"$STATE_DIR/apt.log" 2>&1 || status=$?
    [[ -n "$own_policy" ]] && rm -f /usr/sbin/policy-rc.d
    if [[ $status != 0 ]]; then
        tail -n 20 "$STATE_DIR/apt.log" >&2
        die "apt-get failed (full log: $STATE_DIR/apt.log)"
    fi
}

# --- munge -----------------------------------------------------------------
munge_works() { munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
    if munge_works; then
        recorded_pid munged >/dev/null || log "munged already running (not started by this script; left alone)"
        return 0
    fi
    # Debian's postinst normally creates the key; recreate it if it is absent.
    if [[ ! -s /etc/munge/munge.key ]]; then
        install -d -o munge -g munge -m 700 /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
    install -d -o munge -g munge -m 755 /run/munge
    install -d -o munge -g munge -m 700 /var/lib/munge /var/log/munge
    rm -f /run/munge/munged.pid
    # munged refuses to run as root; it daemonises and writes its own pid file.
    runuser -u munge -- munged
    record_from_daemon_pidfile munged /run/munge/munged.pid || die "munged did not start (see /var/log/munge/munged.log)"
    for _ in $(seq 1 50); do munge_works && return 0; sleep 0.1; done
    die "munged started but munge -n | unmunge fails (see /var/log/munge/munged.log)"
}

# --- slurm -----------------------------------------------------------------
conf_is_ours() { head -n 1 "$SLURM_CONF" 2>/dev/null | grep -qxF "$CONF_MARKER"; }

write_slurm_conf() {
    local host cpus mem_mb
    host="$(hostname -s)"
    cpus="$(nproc --all)"
    # Leave 5% of RAM to the system so slurmd never reports less memory than configured.
    mem_mb="$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.95}' /proc/meminfo)"
    if [[ -e "$SLURM_CONF" ]] && ! conf_is_ours; then
        die "$SLURM_CONF exists and was not written by this script; refusing to overwrite a real cluster's configuration"
    fi
    install -d -m 755 /etc/slurm "$STATE_DIR/slurmctld" "$STATE_DIR/slurmd"
    cat >"$SLURM_CONF" <<EOF
$CONF_MARKER
# Single-node test cluster; see that script. Regenerated at every start.
ClusterName=sinkhorn-em-local
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
# No slurmdbd: accounting off, so sacct cannot answer (the test profile polls with squeue).
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# No cgroup hierarchy without systemd: track processes through /proc, bind no tasks.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Memory is consumable: a job without --mem would otherwise get the whole node.
DefMemPerCPU=$((mem_mb / cpus))
# A node that went down (e.g. slurmd restarted) returns to service when it registers.
ReturnToService=2
# Finished jobs stay visible to squeue for 10 minutes; lower values make the
# Snakemake plugin fall back to sacct, which fails without accounting.
MinJobAge=600
StateSaveLocation=$STATE_DIR/slurmctld
SlurmdSpoolDir=$STATE_DIR/slurmd
SlurmctldPidFile=$STATE_DIR/slurmctld.daemon.pid
SlurmdPidFile=$STATE_DIR/slurmd.daemon.pid
SlurmctldLogFile=$STATE_DIR/slurmctld.log
SlurmdLogFile=$STATE_DIR/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem_mb} State=UNKNOWN
PartitionName=${PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

node_ready() {  # the node accepts jobs: idle, mixed or allocated
    local state
    state="$(sinfo -h -p "$PARTITION" -o '%t' 2>/dev/null | head -n 1)" || return 1
    [[ "$state" =~ ^(idle|mix|alloc|comp)$ ]]
}

start_slurm() {
    local ctld_pid="" slurmd_pid=""
    ctld_pid="$(recorded_pid slurmctld)" || true
    slurmd_pid="$(recorded_pid slurmd)" || true
    if [[ -z "$ctld_pid" && -z "$slurmd_pid" ]]; then
        if pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null; then
            die "a slurmctld/slurmd not started by this script is running; stop it or use that cluster directly"
        fi
        write_slurm_conf
    fi
    if [[ -z "$ctld_pid" ]]; then
        rm -f "$STATE_DIR/slurmctld.daemon.pid"
        # -c: start from an empty job table, so no job of an earlier session lingers.
        slurmctld -c
        record_from_daemon_pidfile slurmctld "$STATE_DIR/slurmctld.daemon.pid" \
            || die "slurmctld did not start (see $STATE_DIR/slurmctld.log)"
    fi
    if [[ -z "$slurmd_pid" ]]; then
        rm -f "$STATE_DIR/slurmd.daemon.pid"
        slurmd
        record_from_daemon_pidfile slurmd "$STATE_DIR/slurmd.daemon.pid" \
            || die "slurmd did not start (see $STATE_DIR/slurmd.log)"
    fi
    local deadline=$((SECONDS + WAIT_SECONDS))
    until node_ready; do
        if ((SECONDS >= deadline)); then
            sinfo -N -l >&2 || true
            die "the node did not become idle within ${WAIT_SECONDS}s (see $STATE_DIR/slurmctld.log and slurmd.log)"
        fi
        sleep 0.5
    done
}

cmd_start() {
    local t0=$SECONDS
    install -d -m 755 "$STATE_DIR"
    if recorded_pid slurmctld >/dev/null && recorded_pid slurmd >/dev/null && munge_works && node_ready; then
        log "already running"
        return 0
    fi
    install_packages
    start_munge
    start_slurm
    log "up in $((SECONDS - t0))s: $(sinfo -h -o '%P %D %t %c CPUs %m MB')"
}

stop_one() {  # $1 = daemon name
    local pid
    if pid="$(recorded_pid "$1")"; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            [[ -d "/proc/$pid" ]] || break
            sleep 0.1
        done
        if [[ -d "/proc/$pid" ]]; then
            log "$1 ($pid) ignored SIGTERM for 10s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        log "stopped $1 ($pid)"
    fi
    rm -f "$(pid_file "$1")"
}

cmd_stop() {
    # Jobs still on our cluster would outlive slurmd as orphaned slurmstepd
    # processes; cancel them while the controller is ours and still answers.
    if recorded_pid slurmctld >/dev/null && command -v scancel >/dev/null; then
        local unfinished
        unfinished="$(squeue -h -t PENDING,RUNNING,SUSPENDED -o %i 2>/dev/null || true)"
        if [[ -n "$unfinished" ]]; then
            log "cancelling unfinished jobs: ${unfinished//$'\n'/ }"
            echo "$unfinished" | xargs -r scancel 2>/dev/null || true
            sleep 1
        fi
    fi
    stop_one slurmd
    stop_one slurmctld
    stop_one munged
    # With the tools installed but no controller, every Slurm client call retries
    # for MessageTimeout (10 s). The Snakemake Slurm plugin calls `scontrol show
    # config` whenever Snakemake starts, even for local runs, so each `snakemake`
    # would take 10 s longer. A stopped cluster answers "down" at once instead;
    # `start` rewrites the whole file.
    if conf_is_ours && ! grep -qx 'MessageTimeout=1' "$SLURM_CONF"; then
        printf '# cluster stopped: fail fast (start rewrites this file)\nMessageTimeout=1\n' >>"$SLURM_CONF"
    fi
}

cmd_status() {
    local name pid ok=0
    for name in munged slurmctld slurmd; do
        if pid="$(recorded_pid "$name")"; then
            printf '%-10s running (pid %s, started by this script)\n' "$name" "$pid"
        elif pgrep -x "$name" >/dev/null; then
            printf '%-10s running (not started by this script)\n' "$name"
        else
            printf '%-10s not running\n' "$name"
        fi
    done
    if command -v sinfo >/dev/null && node_ready; then
        sinfo
    else
        printf 'cluster    not accepting jobs\n'
        ok=3
    fi
    return "$ok"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *)
        echo "usage: $0 start|stop|status" >&2
        exit 2
        ;;
esac
