#!/usr/bin/env bash
# A one-node Slurm on this machine, to rehearse a cluster sweep before spending cluster time, and for the
# `slurm` tests (CI starts it in .ci/run). Debian/Ubuntu packages, run as root; idempotent.
#
#   sudo scripts/slurm_local.sh start    install slurmctld/slurmd/slurm-client/munge if missing, write
#                                        /etc/slurm/slurm.conf for this host, start munged, slurmctld and
#                                        slurmd, check that srun works (~20 s the first time, ~1 s after)
#   sudo scripts/slurm_local.sh stop     cancel the jobs, stop the daemons this script started (by pid)
#   scripts/slurm_local.sh status        what runs
#
# The cluster: this host as its one node (CPUs and sockets from `slurmd -C`, 85% of its memory), one
# partition `debug` without a time limit, no job accounting (sacct then fails; the launcher does not need it).
# Reading: AuthInfo=cred_expire=10 lowers the hold before a requeued job may start again from Slurm's
# default 120 s to 10 s (slurm.conf(5): cred_expire "also controls how long a requeued job must wait before
# starting again"), so the requeue tests take seconds; keep the default on a real cluster.
# Logs: /var/log/randwire-slurm/. State: /var/spool/randwire-slurm/. Pid files: /run/randwire-slurm/.
set -euo pipefail
RUN=/run/randwire-slurm
SPOOL=/var/spool/randwire-slurm
LOGS=/var/log/randwire-slurm
CONF=/etc/slurm/slurm.conf

say() { echo "slurm_local: $*" >&2; }
alive() { [ -s "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }
need_root() { [ "$(id -u)" = 0 ] || { say "run as root (sudo $0 $1)"; exit 1; }; }

install_packages() {
  local missing=()
  for cmd in slurmctld slurmd sbatch munged; do command -v "$cmd" >/dev/null || missing+=("$cmd"); done
  [ ${#missing[@]} = 0 ] && return
  command -v apt-get >/dev/null || { say "missing ${missing[*]} and no apt-get: install Slurm 22.05+ and munge by hand"; exit 1; }
  say "installing slurmctld slurmd slurm-client munge (missing: ${missing[*]})"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
}

start_munge() {
  if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  mkdir -p /run/munge /var/lib/munge /var/log/munge
  chown munge:munge /etc/munge /etc/munge/munge.key /run/munge /var/lib/munge /var/log/munge
  chmod 700 /etc/munge; chmod 400 /etc/munge/munge.key
  if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid --force
    for _ in $(seq 20); do [ -s /run/munge/munged.pid ] && break; sleep 0.2; done
    cp /run/munge/munged.pid "$RUN/munged.pid"  # munged (user munge) cannot write root's $RUN
  fi
  for _ in $(seq 25); do munge -n </dev/null | unmunge >/dev/null 2>&1 && return; sleep 0.2; done
  say "munge does not work (see /var/log/munge/munged.log)"; exit 1
}

write_conf() {  # prints 1 when slurm.conf changed
  local host node cpus sockets cores threads mem tmp
  host="$(hostname -s)"
  getent hosts "$host" >/dev/null || echo "127.0.0.1 $host" >> /etc/hosts
  node="$(slurmd -C | head -1)"
  field() { sed -n "s/.*\b$1=\([0-9]*\).*/\1/p" <<<"$node"; }
  cpus="$(field CPUs)"; sockets="$(field SocketsPerBoard)"; cores="$(field CoresPerSocket)"
  threads="$(field ThreadsPerCore)"; mem="$(( $(field RealMemory) * 85 / 100 ))"
  tmp="$(mktemp)"
  cat > "$tmp" <<CONF
# Written by randwire's scripts/slurm_local.sh: a one-node cluster for rehearsals and tests.
ClusterName=randwire-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
JobRequeue=1
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
StateSaveLocation=$SPOOL/ctld
SlurmdSpoolDir=$SPOOL/d
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
MinJobAge=300
KillWait=10
Waittime=0
NodeName=$host CPUs=$cpus Boards=1 SocketsPerBoard=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
  if cmp -s "$tmp" "$CONF"; then rm -f "$tmp"; echo 0; else install -D -m 644 "$tmp" "$CONF"; rm -f "$tmp"; echo 1; fi
}

stop_daemon() {
  local name=$1 pid
  alive "$name" || { rm -f "$RUN/$name.pid"; return 0; }
  pid="$(cat "$RUN/$name.pid")"
  kill "$pid"
  for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  rm -f "$RUN/$name.pid"
  say "stopped $name ($pid)"
}

start() {
  need_root start
  install_packages
  mkdir -p "$RUN" "$SPOOL/ctld" "$SPOOL/d" "$LOGS"
  start_munge
  if [ "$(write_conf)" = 1 ]; then stop_daemon slurmd; stop_daemon slurmctld; fi
  alive slurmctld || /usr/sbin/slurmctld -f "$CONF"
  for _ in $(seq 60); do scontrol ping 2>/dev/null | grep -q "is UP" && break; sleep 0.5; done
  scontrol ping 2>/dev/null | grep -q "is UP" || { say "slurmctld did not start:"; tail -5 "$LOGS/slurmctld.log" >&2; exit 1; }
  alive slurmd || /usr/sbin/slurmd -f "$CONF"
  local host state=""
  host="$(hostname -s)"
  for _ in $(seq 60); do
    state="$(sinfo -h -n "$host" -o %T 2>/dev/null | head -1)"
    case "$state" in idle*|mixed*|allocated*) break ;;
      down*|drain*) scontrol update nodename="$host" state=resume 2>/dev/null || true ;; esac
    sleep 0.5
  done
  case "$state" in idle*|mixed*|allocated*) ;; *) say "node $host is '$state':"; tail -5 "$LOGS/slurmd.log" >&2; exit 1 ;; esac
  [ "$(timeout 60 srun -N1 -n1 -t 1 hostname 2>&1)" = "$(hostname)" ] || { say "srun does not run a task (see $LOGS)"; exit 1; }
  say "Slurm is up: node $host, partition debug ($(sinfo -h -o '%c CPUs, %m MB'))"
}

stop() {
  need_root stop
  if alive slurmctld; then
    scancel --full --user="$(id -un)" 2>/dev/null || true
    for _ in $(seq 40); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.25; done
  fi
  for name in slurmd slurmctld munged; do stop_daemon "$name"; done
}

status() {
  for name in munged slurmctld slurmd; do
    if alive "$name"; then echo "$name: running (pid $(cat "$RUN/$name.pid"))"; else echo "$name: not running"; fi
  done
  command -v sinfo >/dev/null && sinfo 2>/dev/null || true
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
