#!/usr/bin/env bash
# Start a single-node SLURM cluster on this machine (Debian slurm-wlm + munge), for CI and for
# users who want to try the cluster path of `bench sweep` locally.
#
#   sudo bash .ci/start_slurm.sh        # idempotent: does nothing if the node is already up
#
# What it does (as root):
#   1. installs slurm-wlm and munge with apt-get when slurmctld/munged are missing;
#   2. creates a munge key if there is none, /run/munge owned by munge, and starts munged;
#   3. writes /etc/slurm/slurm.conf for `hostname -s`: one node with this machine's CPUs and
#      memory, one partition "debug" (default), MaxArraySize, proctrack/linuxproc, no cgroups,
#      no accounting database (completed jobs go to a jobcomp text file; the harness reads job
#      states from squeue/scontrol, not sacct);
#   4. starts slurmctld and slurmd as root and waits until `sinfo` shows the node idle.
# Environment knobs: SLURM_MAX_ARRAY_SIZE (default 1001), SLURM_START_TIMEOUT (seconds, default 60).
set -euo pipefail

CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
MAX_ARRAY=${SLURM_MAX_ARRAY_SIZE:-1001}
TIMEOUT=${SLURM_START_TIMEOUT:-60}
HOST=$(hostname -s)

log() { echo "start_slurm: $*"; }

# A daemon runs when the pid in its pid file is alive (no procps needed).
running() { [[ -s /run/$1.pid ]] && kill -0 "$(cat "/run/$1.pid")" 2>/dev/null; }

node_idle() {
    # The node is usable when sinfo answers and the node is idle, mixed or allocated.
    local state
    state=$(sinfo -h -N -n "$HOST" -o '%T' 2>/dev/null | head -n1) || return 1
    [[ $state == idle* || $state == mixed* || $state == allocated* ]]
}

if [[ $(id -u) -ne 0 ]]; then
    # It starts munged, slurmctld and slurmd and may install packages: root is needed.
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        exec sudo -n bash "$0" "$@"
    fi
    echo "start_slurm: must run as root (it starts munged, slurmctld and slurmd); try: sudo bash $0" >&2
    exit 1
fi

# The wanted slurm.conf for this host (installed in step 3).
CPUS=$(nproc)
MEM_MB=$(awk '/MemTotal/ {print int($2 / 1024 * 0.95)}' /proc/meminfo)
install -d -m 0755 "$CONF_DIR" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat >"$CONF.tmp" <<EOF
# Written by .ci/start_slurm.sh: a single-node cluster for tests and local trials.
ClusterName=bench
SlurmctldHost=$HOST(127.0.0.1)
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
# No cgroups in containers: track processes through /proc.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# Jobs share the node by CPU; memory is checked against the node but not consumed.
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MaxArraySize=$MAX_ARRAY
MaxJobCount=100000
# Keep finished jobs visible to scontrol for a while (there is no accounting database).
MinJobAge=3600
JobRequeue=1
KillWait=5
InactiveLimit=0
SlurmctldTimeout=60
SlurmdTimeout=60
# No slurmdbd: accounting storage is off; completed jobs are appended to a text file.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
if [[ -f $CONF ]] && cmp -s "$CONF.tmp" "$CONF" && running slurmctld && running slurmd && node_idle; then
    rm "$CONF.tmp"
    log "SLURM already running on $HOST"
    exit 0
fi

# 1. Packages.
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    log "installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq slurm-wlm munge >/dev/null
fi

# 2. Munge: key, runtime dir, daemon (it refuses to run as root, so run it as the munge user).
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [[ ! -s /etc/munge/munge.key ]]; then
    log "creating munge key"
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
munge_ok() { munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }
if ! munge_ok; then
    log "starting munged"
    # --force: start even if a stale socket or lock file from an unclean stop is left over.
    runuser -u munge -- /usr/sbin/munged --force
    for _ in $(seq 1 40); do
        munge_ok && break
        sleep 0.25
    done
    if ! munge_ok; then
        echo "start_slurm: munged does not answer; see /var/log/munge/munged.log" >&2
        exit 1
    fi
fi

# 3. slurm.conf for this host. Client tools look up DNS SRV records unless this file exists.
if [[ -f $CONF ]] && cmp -s "$CONF.tmp" "$CONF"; then
    rm "$CONF.tmp"
else
    mv "$CONF.tmp" "$CONF"
    log "wrote $CONF ($CPUS CPUs, $MEM_MB MB, MaxArraySize=$MAX_ARRAY)"
    # A changed configuration needs fresh daemons.
    scontrol shutdown >/dev/null 2>&1 || true
    for _ in $(seq 1 20); do
        running slurmctld || running slurmd || break
        sleep 0.5
    done
fi
# cgroup.conf is only read by cgroup plugins; an empty one silences a warning on some builds.
[[ -f $CONF_DIR/cgroup.conf ]] || echo "CgroupPlugin=autodetect" >"$CONF_DIR/cgroup.conf"

# 4. Daemons.
if ! running slurmctld; then
    log "starting slurmctld"
    /usr/sbin/slurmctld
fi
if ! running slurmd; then
    log "starting slurmd"
    /usr/sbin/slurmd
fi

deadline=$((SECONDS + TIMEOUT))
until node_idle; do
    if ((SECONDS > deadline)); then
        echo "start_slurm: node $HOST not idle after ${TIMEOUT}s:" >&2
        sinfo -N >&2 || true
        tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
        exit 1
    fi
    # A node left DOWN by an earlier unclean stop comes back with an explicit resume.
    if sinfo -h -N -n "$HOST" -o '%T' 2>/dev/null | grep -qE '^(down|drain)'; then
        scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true
    fi
    sleep 1
done
log "SLURM up: $(sinfo -h -o '%P %a %D %T %c CPUs')"
