#!/usr/bin/env bash
# A Slurm on this machine, to rehearse a cluster sweep before spending cluster time, and for the `slurm`
# tests (CI starts it in .ci/run). Debian/Ubuntu packages, run as root; idempotent.
#
#   sudo scripts/slurm_local.sh start [--nodes 2] [--accounting]
#        install slurmctld/slurmd/slurm-client/munge if missing, write /etc/slurm/slurm.conf, start munged,
#        slurmctld and the slurmd(s), check that srun works (~20 s the first time, ~2 s after)
#   sudo scripts/slurm_local.sh stop     cancel the jobs, stop what start started (daemons, the nodes' job
#                                        processes, the database), remove the lines it added to /etc/hosts
#   scripts/slurm_local.sh status        what runs, and the nodes with their state
#
# One node (default): this host (CPUs and sockets from `slurmd -C`, 85% of its memory), partition `debug`
# without a time limit. Two nodes (--nodes 2): rwnode1 and rwnode2, each a real slurmd with its own node name,
# hostname (a UTS namespace: what submitit, Lightning and metrics.json see) and loopback address and port
# (127.0.0.11:6821, 127.0.0.12:6822); all traffic on loopback, the file system shared as on a cluster with a
# shared home. Each node has 2 CPUs (oversubscribed on a 2-core machine: the 2-task tests still fit one node)
# and 40% of the memory; memory is enforced (CR_Core_Memory + jobacct_gather/linux + OverMemoryKill: a job
# over its request is killed and ends FAILED; OUT_OF_MEMORY needs cgroups, which this does not set up).
# --accounting adds MariaDB + slurmdbd (Debian packages slurmdbd, mariadb-server), so `sacct` answers and
# the launcher reads how each job ended from Slurm's record; without it the launcher reads squeue alone.
# Reading: AuthInfo=cred_expire=10 lowers the hold before a requeued job may start again from Slurm's
# default 120 s to 10 s (slurm.conf(5): cred_expire "also controls how long a requeued job must wait before
# starting again"), so the requeue tests take seconds; keep the default on a real cluster.
# Logs: /var/log/randwire-slurm/. State: /var/spool/randwire-slurm/. Pid files: /run/randwire-slurm/.
set -euo pipefail
RUN=/run/randwire-slurm
SPOOL=/var/spool/randwire-slurm
LOGS=/var/log/randwire-slurm
CONF=/etc/slurm/slurm.conf
NODES=(rwnode1 rwnode2); ADDRS=(127.0.0.11 127.0.0.12); PORTS=(6821 6822)
HOSTS_TAG="# randwire slurm_local node"

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

install_accounting() {
  command -v slurmdbd >/dev/null && command -v mariadbd >/dev/null && return
  command -v apt-get >/dev/null || { say "--accounting needs slurmdbd and MariaDB: install them by hand"; exit 1; }
  say "installing slurmdbd mariadb-server (job accounting)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurmdbd mariadb-server >/dev/null
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

write_conf() {  # write_conf NODES ACCOUNTING; prints 1 when slurm.conf changed
  local nodes=$1 accounting=$2 host node cpus sockets cores threads mem tmp
  host="$(hostname -s)"
  getent hosts "$host" >/dev/null || echo "127.0.0.1 $host" >> /etc/hosts
  tmp="$(mktemp)"
  cat > "$tmp" <<CONF
# Written by randwire's scripts/slurm_local.sh: a $nodes-node cluster for rehearsals and tests.
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
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$SPOOL/ctld-$nodes
SlurmctldLogFile=$LOGS/slurmctld.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
JobCompType=jobcomp/none
SlurmctldTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=10
Waittime=0
CONF
  if [ "$accounting" = 1 ]; then
    printf '%s\n' AccountingStorageType=accounting_storage/slurmdbd AccountingStorageHost=localhost >> "$tmp"
  else
    echo AccountingStorageType=accounting_storage/none >> "$tmp"
  fi
  if [ "$nodes" = 1 ]; then
    node="$(slurmd -C | head -1)"
    field() { sed -n "s/.*\b$1=\([0-9]*\).*/\1/p" <<<"$node"; }
    cpus="$(field CPUs)"; sockets="$(field SocketsPerBoard)"; cores="$(field CoresPerSocket)"
    threads="$(field ThreadsPerCore)"; mem="$(( $(field RealMemory) * 85 / 100 ))"
    cat >> "$tmp" <<CONF
SlurmdPidFile=$RUN/slurmd.pid
SlurmdSpoolDir=$SPOOL/d
SlurmdLogFile=$LOGS/slurmd.log
SlurmdTimeout=60
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/$([ "$accounting" = 1 ] && echo linux || echo none)
NodeName=$host CPUs=$cpus Boards=1 SocketsPerBoard=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
  else
    mem=$(( $(awk '/MemTotal/{print $2}' /proc/meminfo) / 1024 * 40 / 100 ))  # MB per node
    cat >> "$tmp" <<CONF
SlurmdPidFile=$RUN/slurmd-%n.pid
SlurmdSpoolDir=$SPOOL/d-%n
SlurmdLogFile=$LOGS/slurmd-%n.log
SlurmdTimeout=30
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=3072
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
NodeName=${NODES[0]} NodeAddr=${ADDRS[0]} NodeHostname=${NODES[0]} Port=${PORTS[0]} CPUs=2 RealMemory=$mem State=UNKNOWN
NodeName=${NODES[1]} NodeAddr=${ADDRS[1]} NodeHostname=${NODES[1]} Port=${PORTS[1]} CPUs=2 RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=${NODES[0]},${NODES[1]} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
  fi
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

start_accounting() {  # MariaDB (its socket only) + slurmdbd, then the cluster in the database
  install_accounting
  mkdir -p /run/mysqld; chown mysql:mysql /run/mysqld
  if ! alive mariadbd; then
    nohup /usr/sbin/mariadbd --user=mysql --socket=/run/mysqld/mysqld.sock --bind-address=127.0.0.1 \
      >"$LOGS/mariadbd.log" 2>&1 &
    echo $! > "$RUN/mariadbd.pid"
  fi
  for _ in $(seq 60); do mariadb -e 'select 1' >/dev/null 2>&1 && break; sleep 0.5; done
  mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db; CREATE USER IF NOT EXISTS 'slurm'@'localhost'
              IDENTIFIED BY 'randwire-local'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;" \
    || { say "MariaDB did not start (see $LOGS/mariadbd.log)"; exit 1; }
  (umask 077; printf '%s\n' AuthType=auth/munge DbdHost=localhost SlurmUser=root \
    StorageType=accounting_storage/mysql StorageHost=localhost StorageUser=slurm StoragePass=randwire-local \
    StorageLoc=slurm_acct_db "PidFile=$RUN/slurmdbd.pid" "LogFile=$LOGS/slurmdbd.log" > /etc/slurm/slurmdbd.conf)
  alive slurmdbd || /usr/sbin/slurmdbd
  for _ in $(seq 60); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.5; done
  sacctmgr -n -P list cluster format=cluster | grep -qx randwire-local || sacctmgr -i add cluster randwire-local >/dev/null
}

start_nodes() {  # start_nodes NODES: the slurmd(s), then wait until every node takes jobs
  local nodes=$1 names=() state="" i
  if [ "$nodes" = 1 ]; then
    names=("$(hostname -s)")
    alive slurmd || /usr/sbin/slurmd -f "$CONF"
  else
    names=("${NODES[@]}")
    for i in "${!NODES[@]}"; do  # each node's name resolves to its loopback address (Lightning's MASTER_ADDR)
      grep -q " ${NODES[$i]} $HOSTS_TAG\$" /etc/hosts || echo "${ADDRS[$i]} ${NODES[$i]} $HOSTS_TAG" >> /etc/hosts
      mkdir -p "$SPOOL/d-${NODES[$i]}"
      # unshare --uts: the node's own hostname for its jobs
      alive "slurmd-${NODES[$i]}" \
        || unshare --uts sh -c "hostname ${NODES[$i]} && exec /usr/sbin/slurmd -N ${NODES[$i]} -f $CONF"
      for _ in $(seq 40); do alive "slurmd-${NODES[$i]}" && break; sleep 0.25; done
      readlink "/proc/$(cat "$RUN/slurmd-${NODES[$i]}.pid")/ns/uts" > "$RUN/${NODES[$i]}.uts"  # for stop
    done
  fi
  for name in "${names[@]}"; do
    for _ in $(seq 60); do
      state="$(sinfo -h -n "$name" -o %T 2>/dev/null | head -1)"
      case "$state" in idle*|mixed*|allocated*) break ;;
        down*|drain*) scontrol update nodename="$name" state=resume 2>/dev/null || true ;; esac
      sleep 0.5
    done
    case "$state" in idle*|mixed*|allocated*) ;; *) say "node $name is '$state' (see $LOGS)"; exit 1 ;; esac
  done
}

start() {
  need_root start
  local nodes=1 accounting=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --nodes) nodes="${2:-}"; shift 2 ;;
      --nodes=*) nodes="${1#--nodes=}"; shift ;;
      --accounting) accounting=1; shift ;;
      *) say "start: '$1' is not an option: --nodes 1|2, --accounting"; exit 2 ;;
    esac
  done
  case "$nodes" in 1|2) ;; *) say "start: --nodes=$nodes is not allowed: 1 or 2"; exit 2 ;; esac
  install_packages
  mkdir -p "$RUN" "$SPOOL/ctld-$nodes" "$SPOOL/d" "$LOGS"
  start_munge
  if [ "$(write_conf "$nodes" "$accounting")" = 1 ]; then stop_cluster; fi
  if [ "$accounting" = 1 ]; then start_accounting; fi
  alive slurmctld || /usr/sbin/slurmctld -f "$CONF"
  for _ in $(seq 60); do scontrol ping 2>/dev/null | grep -q "is UP" && break; sleep 0.5; done
  scontrol ping 2>/dev/null | grep -q "is UP" || { say "slurmctld did not start:"; tail -5 "$LOGS/slurmctld.log" >&2; exit 1; }
  start_nodes "$nodes"
  local ran
  ran="$(timeout 60 srun -N"$nodes" -n"$nodes" -t 1 hostname 2>&1 | sort | tr '\n' ' ')"
  if [ "$nodes" = 1 ]; then [ "$ran" = "$(hostname) " ]; else [ "$ran" = "${NODES[*]} " ]; fi \
    || { say "srun does not run a task on each node (it printed: $ran; see $LOGS)"; exit 1; }
  say "Slurm is up: $(sinfo -h -N -o '%N' | sort -u | tr '\n' ' ')(partition debug: $(sinfo -h -o '%D nodes of %c CPUs, %m MB'))$([ "$accounting" = 1 ] && echo ', with job accounting')"
}

kill_node_processes() {  # whatever still runs on a node of the two-node mode: job steps of a slurmd killed as dead
  local f ns sig d
  for f in "$RUN"/*.uts; do
    [ -e "$f" ] || continue
    ns="$(cat "$f")"; rm -f "$f"
    [ -n "$ns" ] && [ "$ns" != "$(readlink /proc/self/ns/uts)" ] || continue  # never the machine's own
    for sig in TERM KILL; do  # slurmstepd ignores SIGTERM
      for d in /proc/[0-9]*; do
        [ "$(readlink "$d/ns/uts" 2>/dev/null)" = "$ns" ] && kill -s "$sig" "${d#/proc/}" 2>/dev/null || true
      done
      sleep 0.5
    done
  done
}

stop_cluster() {  # the jobs, the slurmd(s) and slurmctld (munge and the database stay)
  local f
  if alive slurmctld; then
    scancel --full --user="$(id -un)" 2>/dev/null || true
    for _ in $(seq 40); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.25; done
  fi
  for f in "$RUN"/slurmd*.pid; do [ -e "$f" ] && stop_daemon "$(basename "$f" .pid)"; done
  stop_daemon slurmctld
  kill_node_processes
  sed -i "/ $HOSTS_TAG\$/d" /etc/hosts
}

stop() {
  need_root stop
  stop_cluster
  for name in slurmdbd mariadbd munged; do stop_daemon "$name"; done
}

status() {
  local f
  compgen -G "$RUN/*.pid" >/dev/null || { echo "nothing runs (sudo $0 start [--nodes 2] [--accounting])"; return 0; }
  for f in "$RUN"/*.pid; do
    [ -e "$f" ] || continue
    name="$(basename "$f" .pid)"
    if alive "$name"; then echo "$name: running (pid $(cat "$f"))"; else echo "$name: not running"; fi
  done
  command -v sinfo >/dev/null && sinfo -N -o '%N %T %c %m' 2>/dev/null || true
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start [--nodes 1|2] [--accounting] | stop | status" >&2; exit 2 ;;
esac
