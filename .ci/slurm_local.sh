#!/usr/bin/env bash
# A real one-node Slurm cluster on localhost, for tests and CI (run as root).
#
#   .ci/slurm_local.sh start     # install munge + slurm-wlm if missing, start munged,
#                                # slurmctld and slurmd, wait until `sinfo` shows the node idle
#   .ci/slurm_local.sh status    # sinfo of the running cluster (exit 1 if not running)
#   .ci/slurm_local.sh env       # the line to eval so sbatch/squeue/sinfo find this cluster
#   .ci/slurm_local.sh stop      # stop the three daemons by their pid files
#
# Everything lives under $HEARFLOW_SLURM_DIR (default /tmp/hearflow-slurm): slurm.conf,
# munge key and socket, state, logs and pid files. The one change outside it is the link
# /etc/slurm/slurm.conf -> $DIR/slurm.conf: srun inside a job (the executor plugin's
# jobstep) drops SLURM_* variables, SLURM_CONF included, and then reads only that path.
# A slurm.conf there that is not our link is never replaced: the script stops instead.
# No slurmdbd: accounting is off, `sacct` does not work, status comes from `squeue`
# (MinJobAge=3600 keeps finished jobs visible there, and to scontrol, for an hour).
set -euo pipefail

DIR=${HEARFLOW_SLURM_DIR:-/tmp/hearflow-slurm}
CTLD_PORT=${HEARFLOW_SLURM_PORT:-6817}
SLURMD_PORT=$((CTLD_PORT + 1))
CONF=$DIR/slurm.conf
ETC_CONF=/etc/slurm/slurm.conf

die() { echo "slurm_local: $*" >&2; exit 1; }

install() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
    && command -v sbatch >/dev/null && return
  [ "$(id -u)" -eq 0 ] || die "munge/slurm-wlm are missing and installing them needs root"
  echo "slurm_local: installing munge and slurm-wlm" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends munge slurm-wlm >/dev/null \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends munge slurm-wlm >/dev/null; }
}

running() {  # running NAME: the daemon of pid file $DIR/NAME.pid is alive
  [ -s "$DIR/$1.pid" ] && kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null
}

write_conf() {
  local cpus mem
  # The node as slurmd sees it; RealMemory must not exceed it or the node is drained.
  read -r cpus mem < <(slurmd -C | awk '/^NodeName/ {
      for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      print v["CPUs"], v["RealMemory"] }')
  [ -n "$cpus" ] && [ -n "$mem" ] || die "cannot read CPUs/RealMemory from 'slurmd -C'"
  cat >"$CONF" <<EOF
# Written by .ci/slurm_local.sh: a one-node cluster on localhost.
ClusterName=hearflow
SlurmctldHost=localhost
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
MinJobAge=3600
KillWait=5
NodeName=localhost CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
}

link_conf() {
  if [ -e "$ETC_CONF" ] || [ -L "$ETC_CONF" ]; then
    [ "$(readlink "$ETC_CONF")" = "$CONF" ] && return
    die "$ETC_CONF exists and is not ours; this machine has its own Slurm (remove it to use this script)"
  fi
  mkdir -p "$(dirname "$ETC_CONF")"
  ln -s "$CONF" "$ETC_CONF"
}

start() {
  install
  [ "$(id -u)" -eq 0 ] || die "the daemons run as root"
  if running slurmctld && running slurmd; then
    echo "slurm_local: already running ($DIR)" >&2
  else
    stop >/dev/null 2>&1 || true
    mkdir -p "$DIR"/{munge,state,spool,log}
    chmod 0755 "$DIR" "$DIR/munge"
    write_conf
    link_conf
    # munged: its own key and socket, so a system munged (if any) is left alone.
    if [ ! -s "$DIR/munge/munge.key" ]; then
      dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
    fi
    chmod 0400 "$DIR/munge/munge.key"
    munged --force --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.socket" \
      --pid-file="$DIR/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed"
    export SLURM_CONF=$CONF
    slurmctld -c -f "$CONF"
    slurmd -N localhost -f "$CONF"
  fi
  export SLURM_CONF=$CONF
  local waited=0
  until sinfo -h -N -o '%T' 2>/dev/null | grep -qx idle; do
    sleep 1
    waited=$((waited + 1))
    if [ "$waited" -ge "${HEARFLOW_SLURM_WAIT:-60}" ]; then
      sinfo -N -l >&2 || true
      tail -n 20 "$DIR"/log/*.log >&2 || true
      die "the node is not idle after ${waited}s (logs under $DIR/log)"
    fi
  done
  echo "slurm_local: node localhost idle after ${waited}s; export SLURM_CONF=$CONF" >&2
}

stop() {
  local name pid n
  for name in slurmd slurmctld munged; do
    running "$name" || continue
    pid=$(cat "$DIR/$name.pid")
    kill "$pid"
    for n in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    echo "slurm_local: stopped $name (pid $pid)" >&2
  done
  rm -f "$DIR"/{slurmd,slurmctld,munged}.pid
  if [ "$(readlink "$ETC_CONF" 2>/dev/null)" = "$CONF" ]; then rm -f "$ETC_CONF"; fi
}

status() {
  running slurmctld && running slurmd || { echo "slurm_local: not running ($DIR)" >&2; return 1; }
  SLURM_CONF=$CONF sinfo -N -l
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
