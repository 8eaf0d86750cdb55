#!/usr/bin/env bash
# Start a single-node SLURM on localhost (munged + slurmctld + slurmd) for tests and CI.
#
# Idempotent: daemons already running from an earlier start are left alone.
# Installs nothing (see scripts/slurm/install.sh); needs root.
#
# Environment:
#   GENOSHARE_SLURM_DIR   state dir: pid files, logs, spool, state  [/run/genoshare-slurm]
#   GENOSHARE_SLURM_CONF  slurm.conf to write (commands read /etc/slurm/slurm.conf
#                         unless SLURM_CONF is set, so keep the default)  [/etc/slurm/slurm.conf]
#   GENOSHARE_SLURM_TIMEOUT  seconds to wait for the node and the smoke job  [60]
#
# Memory limits are not enforced (no cgroups); DefMemPerCPU=1000 only makes the
# scheduler pack several jobs onto the node at once.
set -euo pipefail

STATE=${GENOSHARE_SLURM_DIR:-/run/genoshare-slurm}
CONF=${GENOSHARE_SLURM_CONF:-/etc/slurm/slurm.conf}
TIMEOUT=${GENOSHARE_SLURM_TIMEOUT:-60}
MARKER="# Written by genoshare scripts/slurm/start.sh"
MUNGE_KEY=/etc/munge/munge.key
MUNGE_SOCKET_DIR=/run/munge

t0=$(date +%s.%N)
log() { echo "slurm/start.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
elapsed() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

[[ $(id -u) -eq 0 ]] || die "must run as root (munged runs as user munge, slurmd as root)"
for cmd in munged munge unmunge slurmctld slurmd sinfo sbatch scontrol; do
  command -v "$cmd" >/dev/null 2>&1 || die "$cmd not found: run scripts/slurm/install.sh first"
done
id munge >/dev/null 2>&1 || die "user munge missing: run scripts/slurm/install.sh first"

mkdir -p "$STATE"/{log,ctld,spool} "$STATE/munge" "$(dirname "$CONF")"
chmod 0755 "$STATE"
chown munge:munge "$STATE/munge"

# --- munge -----------------------------------------------------------------
if [[ ! -s $MUNGE_KEY ]]; then
  log "creating $MUNGE_KEY"
  install -d -o munge -g munge -m 0700 /etc/munge
  umask 077
  dd if=/dev/urandom of="$MUNGE_KEY" bs=1 count=1024 status=none
  umask 022
fi
chown munge:munge "$MUNGE_KEY"
chmod 0400 "$MUNGE_KEY"
install -d -o munge -g munge -m 0755 "$MUNGE_SOCKET_DIR" /var/lib/munge
install -d -o munge -g munge -m 0700 /var/log/munge

munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
if alive "$STATE/munge/munged.pid"; then
  log "munged already running (pid $(cat "$STATE/munge/munged.pid"))"
elif munge_ok; then
  log "a munged not started by this script is already serving $MUNGE_SOCKET_DIR: using it"
else
  # --force: a stale socket left by a killed munged would otherwise stop it.
  runuser -u munge -- munged --force --pid-file="$STATE/munge/munged.pid" \
    --log-file="$STATE/munge/munged.log"
fi
for _ in $(seq 50); do munge_ok && break; sleep 0.1; done
munge_ok || die "munge does not work (see $STATE/munge/munged.log)"

# --- slurm.conf --------------------------------------------------------------
host=$(hostname -s)
# slurmd -C prints this machine's real topology and memory in slurm.conf syntax
# (e.g. "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105").
node_line=$(slurmd -C | head -n1)
[[ $node_line == NodeName=* ]] || die "unexpected output from slurmd -C: $node_line"
node_line="NodeName=$host ${node_line#NodeName=* }"

if [[ -e $CONF ]] && ! head -n1 "$CONF" | grep -qF "$MARKER"; then
  die "$CONF exists and was not written by this script; refusing to overwrite it"
fi
new_conf=$(mktemp)
cat >"$new_conf" <<EOF
$MARKER; rewritten on every start.
ClusterName=genoshare
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SwitchType=switch/none
SchedulerType=sched/backfill
# Batch jobs start at once instead of up to 3 s later (the default delay).
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
MinJobAge=300
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MailProg=/bin/true
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
Waittime=0
$node_line NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
conf_changed=1
if [[ -e $CONF ]] && cmp -s "$new_conf" "$CONF"; then conf_changed=0; fi
install -m 0644 "$new_conf" "$CONF"
rm -f "$new_conf"

ctld_up=0; slurmd_up=0
alive "$STATE/slurmctld.pid" && ctld_up=1
alive "$STATE/slurmd.pid" && slurmd_up=1
if [[ $conf_changed -eq 1 && ( $ctld_up -eq 1 || $slurmd_up -eq 1 ) ]]; then
  log "slurm.conf changed: asking the running daemons to reread it"
  timeout 10 scontrol reconfigure || log "scontrol reconfigure failed (continuing)"
fi

# --- daemons -----------------------------------------------------------------
if [[ $ctld_up -eq 1 ]]; then
  log "slurmctld already running (pid $(cat "$STATE/slurmctld.pid"))"
else
  # -c: a test cluster starts clean (no jobs or node states from an earlier run).
  slurmctld -c -f "$CONF"
fi
if [[ $slurmd_up -eq 1 ]]; then
  log "slurmd already running (pid $(cat "$STATE/slurmd.pid"))"
else
  slurmd -f "$CONF"
fi

# --- wait for the node to be idle ---------------------------------------------
deadline=$(( $(date +%s) + TIMEOUT ))
state=""
while (( $(date +%s) < deadline )); do
  state=$(timeout 5 sinfo -h -N -n "$host" -o %T 2>/dev/null | head -n1 || true)
  case $state in
    idle|mixed|allocated|completing) break ;;
  esac
  sleep 0.2
done
case $state in
  idle|mixed|allocated|completing) ;;
  *) tail -n 20 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2 || true
     die "node $host not ready after ${TIMEOUT}s (sinfo state: '${state:-none}')" ;;
esac
log "node $host is $state after $(elapsed)s"

# --- smoke job ---------------------------------------------------------------
# A batch job, as dask-jobqueue submits. Poll its state rather than `sbatch --wait`,
# which checks only every few seconds (up to 10 s late on a fresh start).
left=$(( deadline - $(date +%s) )); (( left < 10 )) && left=10
job=$(timeout 10 sbatch --parsable --job-name=genoshare-smoke --chdir="$STATE" \
      --output=/dev/null --time=1 --wrap=true) || die "sbatch failed"
job=${job%%;*}
jstate=""
for _ in $(seq $(( left * 5 ))); do
  jstate=$(timeout 5 squeue -h -j "$job" -t all -o %T 2>/dev/null || true)
  case $jstate in
    COMPLETED|FAILED|CANCELLED*|TIMEOUT|NODE_FAIL|BOOT_FAIL|OUT_OF_MEMORY|PREEMPTED|DEADLINE) break ;;
  esac
  sleep 0.2
done
if [[ $jstate != COMPLETED ]]; then
  tail -n 20 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2 || true
  timeout 10 scancel "$job" 2>/dev/null || true
  die "smoke job $job did not complete (state: '${jstate:-unknown}')"
fi
log "smoke job $job completed; SLURM ready in $(elapsed)s (state in $STATE, config $CONF)"
