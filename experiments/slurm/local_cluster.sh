#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, to try `hydra/launcher=slurm` (and tests/sweeps/test_slurm.py)
# without a real cluster. Not used by the normal test suite (`make test`).
#
#   apt-get install -y slurm-wlm slurmdbd munge mariadb-server   # Debian 12: Slurm 22.05.8, MUNGE 0.5.15, MariaDB 10.11
#   experiments/slurm/local_cluster.sh          # start (or check) the daemons; waits until sinfo shows the node idle
#   experiments/slurm/local_cluster.sh status   # sinfo + squeue
#   experiments/slurm/local_cluster.sh stop     # stop the daemons (each by its pid file)
#
# Daemons: munged, mariadbd (127.0.0.1 only) and slurmdbd, slurmctld, slurmd. The accounting database is
# there because submitit (hydra/launcher=slurm) reads job states with `sacct`: without it, a job that ends
# without a result (scancel, preemption, node failure) is never seen as ended and the sweep waits forever.
# Run as root. Idempotent: running daemons are kept; /etc/slurm/slurm.conf and slurmdbd.conf are (re)written
# only while absent or carrying this script's marker line (hand-written ones are refused unless FORCE=1).
# Made for containers without systemd or usable cgroups: proctrack/linuxproc, task/none, no cgroup.conf.
# Settings through the environment: SLURM_CPUS (default 2), SLURM_MEM_MB (4096), SLURM_PARTITION (debug).
set -euo pipefail

CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
DBD_CONF=$CONF_DIR/slurmdbd.conf
MARKER="# written by gnnrisk experiments/slurm/local_cluster.sh"
CLUSTER=gnnrisk-local
HOST=$(hostname -s)
CPUS=${SLURM_CPUS:-2}
MEM_MB=${SLURM_MEM_MB:-4096}
PARTITION=${SLURM_PARTITION:-debug}
STATE=/var/spool/slurmctld
SPOOL=/var/spool/slurmd
LOGS=/var/log/slurm
RUN=/run/slurm
MUNGE_PID=/run/munge/munged.pid
DB_PID=/run/mysqld/mysqld.pid
DB_SOCK=/run/mysqld/mysqld.sock

die() { echo "local_cluster: $*" >&2; exit 1; }
alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_one() {  # stop_one NAME PIDFILE: SIGTERM to the pid in PIDFILE, wait up to 10 s
    if alive "$2"; then
        local pid
        pid=$(cat "$2")
        kill "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        echo "local_cluster: stopped $1 (pid $pid)"
    fi
}

ours() {  # ours FILE: absent, or written by this script (or FORCE=1)
    [[ ! -e $1 ]] || grep -qF "$MARKER" "$1" || [[ ${FORCE:-0} == 1 ]] \
        || die "$1 exists and was not written by this script; move it away or set FORCE=1"
}

write_conf() {
    ours "$CONF"
    ours "$DBD_CONF"
    mkdir -p "$CONF_DIR"
    local tmp
    tmp=$(mktemp)
    cat >"$tmp" <<EOF
$MARKER
# A one-node cluster on localhost for trying gnnrisk's hydra/launcher=slurm; not for production.
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
SwitchType=switch/none
# no systemd/cgroups in a container: processes tracked through /proc, no task binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# job records in slurmdbd (MariaDB), for sacct, which submitit polls for job states
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobCompType=jobcomp/none
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
# the node's CPUs and memory as written below, not as detected (a share of a shared machine)
SlurmdParameters=config_overrides
ReturnToService=2
# scancel: SIGTERM, then SIGKILL after KillWait seconds (30 by default)
KillWait=5
MinJobAge=300
StateSaveLocation=$STATE
SlurmdSpoolDir=$SPOOL
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
    if [[ -e $CONF ]] && cmp -s "$tmp" "$CONF"; then
        rm -f "$tmp"
    else
        install -m 0644 "$tmp" "$CONF"
        rm -f "$tmp"
        echo "local_cluster: wrote $CONF (node $HOST, $CPUS CPUs, $MEM_MB MB, partition $PARTITION)"
        CONF_CHANGED=1
    fi
    if [[ ! -e $DBD_CONF ]] || ! grep -qF "$MARKER" "$DBD_CONF"; then
        local pass
        pass=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')   # the local database user's password
        install -m 0600 -o slurm -g slurm /dev/null "$DBD_CONF"
        cat >"$DBD_CONF" <<EOF
$MARKER
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=slurm
DebugLevel=info
LogFile=$LOGS/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=$pass
EOF
        echo "local_cluster: wrote $DBD_CONF"
    fi
}

start_munge() {
    command -v munged >/dev/null || die "munged not found: apt-get install -y munge"
    if [[ ! -s /etc/munge/munge.key ]]; then
        mkdir -p /etc/munge
        mungekey --create --keyfile=/etc/munge/munge.key
    fi
    chown munge:munge /etc/munge /etc/munge/munge.key
    chmod 0700 /etc/munge
    chmod 0600 /etc/munge/munge.key
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
    alive "$MUNGE_PID" && return
    runuser -u munge -- /usr/sbin/munged --pid-file="$MUNGE_PID"
    for _ in $(seq 50); do munge -n </dev/null | unmunge >/dev/null 2>&1 && return; sleep 0.1; done
    die "munged does not answer (munge -n | unmunge)"
}

start_db() {  # MariaDB on 127.0.0.1 and its socket; the slurm database user gets slurmdbd.conf's password
    command -v mariadbd >/dev/null || die "mariadbd not found: apt-get install -y mariadb-server"
    command -v slurmdbd >/dev/null || die "slurmdbd not found: apt-get install -y slurmdbd"
    install -d -o mysql -g mysql -m 0755 /run/mysqld
    install -d -o mysql -g adm -m 0750 /var/log/mysql
    if ! alive "$DB_PID"; then
        setsid /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 --pid-file="$DB_PID" --socket="$DB_SOCK" \
            --innodb-buffer-pool-size=128M --innodb-lock-wait-timeout=900 --log-error=/var/log/mysql/error.log \
            </dev/null >/dev/null 2>&1 &
        for _ in $(seq 100); do mariadb -e "SELECT 1" >/dev/null 2>&1 && break; sleep 0.2; done
        mariadb -e "SELECT 1" >/dev/null 2>&1 || die "MariaDB does not answer; see /var/log/mysql/error.log"
    fi
    local pass
    pass=$(sed -n 's/^StoragePass=//p' "$DBD_CONF")
    mariadb <<EOF
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$pass';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
EOF
}

start_slurm() {
    command -v slurmctld >/dev/null || die "slurmctld not found: apt-get install -y slurm-wlm"
    install -d -o slurm -g slurm -m 0755 "$STATE" "$LOGS" "$RUN"
    install -d -o root -g root -m 0755 "$SPOOL"
    if [[ ${CONF_CHANGED:-0} == 1 ]]; then  # e.g. accounting switched on: that needs a restart, not a reconfigure
        stop_one slurmd "$RUN/slurmd.pid"
        stop_one slurmctld "$RUN/slurmctld.pid"
    fi
    if ! alive "$RUN/slurmdbd.pid"; then
        /usr/sbin/slurmdbd
        for _ in $(seq 100); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.2; done
    fi
    if ! sacctmgr -n -P list cluster format=cluster 2>/dev/null | grep -qx "$CLUSTER"; then
        sacctmgr -i add cluster "$CLUSTER" >/dev/null || die "sacctmgr add cluster failed; see $LOGS/slurmdbd.log"
    fi
    alive "$RUN/slurmctld.pid" || /usr/sbin/slurmctld
    alive "$RUN/slurmd.pid" || /usr/sbin/slurmd
}

wait_idle() {
    local state=""
    for _ in $(seq 60); do
        state=$(sinfo -h -n "$HOST" -o %t 2>/dev/null || true)
        case $state in
            idle|mix|alloc) echo "local_cluster: node $HOST is $state"; sinfo; return ;;
            down*|drain*) scontrol update nodename="$HOST" state=resume 2>/dev/null || true ;;
        esac
        sleep 1
    done
    die "node $HOST not idle after 60 s (state '${state:-none}'); see $LOGS/slurmctld.log and $LOGS/slurmd.log"
}

[[ $(id -u) == 0 ]] || die "run as root (the daemons need it)"
case ${1:-start} in
    start)
        write_conf
        start_munge
        start_db
        start_slurm
        wait_idle
        ;;
    stop)
        stop_one slurmd "$RUN/slurmd.pid"
        stop_one slurmctld "$RUN/slurmctld.pid"
        stop_one slurmdbd "$RUN/slurmdbd.pid"
        stop_one mariadbd "$DB_PID"
        stop_one munged "$MUNGE_PID"
        ;;
    status)
        sinfo && squeue
        ;;
    *)
        die "usage: $0 [start|stop|status]"
        ;;
esac
