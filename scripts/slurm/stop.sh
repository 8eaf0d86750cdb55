#!/usr/bin/env bash
# Stop the single-node test SLURM started by scripts/slurm/start.sh.
#
# Ends only the daemons whose pid files start.sh wrote (never by process name),
# after cancelling the jobs still queued on this private cluster. Idempotent.
# Environment: GENOSHARE_SLURM_DIR as for start.sh [/run/genoshare-slurm].
set -euo pipefail

STATE=${GENOSHARE_SLURM_DIR:-/run/genoshare-slurm}
log() { echo "slurm/stop.sh: $*" >&2; }
alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# stop_pidfile NAME PIDFILE: SIGTERM, wait up to 10 s, then SIGKILL.
stop_pidfile() {
  local name=$1 pidfile=$2 pid
  if ! alive "$pidfile"; then
    [[ -e $pidfile ]] && rm -f "$pidfile"
    log "$name not running"
    return 0
  fi
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name (pid $pid) ignored SIGTERM for 10 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  log "stopped $name (pid $pid)"
}

if [[ ! -d $STATE ]]; then
  log "no state dir $STATE: nothing to stop"
  exit 0
fi

# Cancel what is left, so that no slurmstepd or job outlives slurmd.
if alive "$STATE/slurmctld.pid"; then
  jobs=$(timeout 10 squeue -h -o %A 2>/dev/null || true)
  if [[ -n $jobs ]]; then
    log "cancelling jobs: $(echo $jobs)"
    # shellcheck disable=SC2086
    timeout 10 scancel $jobs || true
    for _ in $(seq 50); do
      [[ -z $(timeout 5 squeue -h -t R,CG,PD -o %A 2>/dev/null || true) ]] && break
      sleep 0.2
    done
  fi
fi

# slurmd and slurmctld each take a second or two to shut down: stop them together.
stop_pidfile slurmd "$STATE/slurmd.pid" &
stop_pidfile slurmctld "$STATE/slurmctld.pid" &
wait
stop_pidfile munged "$STATE/munge/munged.pid"
