#!/usr/bin/env bash
# Stop the throw-away SLURM cluster that tests/cluster/slurm_up.sh started in DIR, and clean up.
#
#   tests/cluster/slurm_down.sh [--keep] [DIR]     # DIR defaults to $DIP_SLURM_DIR
#
# Only the processes recorded in DIR/pids/ are stopped (each one checked by name first, so a recycled PID is
# never signalled), plus what is left of this cluster's jobs: any slurmstepd started with its SLURM_CONF and
# its descendants, and any job process (SLURM_JOB_ID set) whose environment names this cluster's SLURM_CONF
# or DIP_SLURM_DIR (a process that ignored scancel's SIGTERM after its parent died escapes SLURM's process
# tracking without cgroups).
# Order: cancel this cluster's jobs, then all five daemons at once; SIGTERM, then
# SIGKILL after a grace period. Pid and socket files are removed so a later start never trips over them,
# and so is the /etc/slurm/slurm.conf symlink slurm_up.sh made (only while it points into DIR).
# Without --keep, DIR itself is deleted (only when it looks like a slurm_up.sh directory).
set -uo pipefail

keep=0
if [ "${1:-}" = --keep ]; then keep=1; shift; fi
DIR="${1:-${DIP_SLURM_DIR:-}}"
[ -n "$DIR" ] || { echo "usage: $0 [--keep] DIR (or set DIP_SLURM_DIR)" >&2; exit 2; }
if [ ! -d "$DIR" ]; then
  echo "slurm_down: $DIR does not exist: nothing to stop" >&2
  exit 0
fi
DIR="$(cd "$DIR" && pwd)"
CONF="$DIR/etc/slurm.conf"
export PATH="$PATH:/usr/sbin:/sbin"
log() { echo "slurm_down: $*" >&2; }

# pid of daemon NAME if the recorded process is still alive and is really NAME
live_pid() {
  local name=$1 pid comm
  pid=$(cat "$DIR/pids/$name.pid" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
  [ "$comm" = "$name" ] || { log "pid $pid is '$comm', not $name: leaving it alone"; return 1; }
  echo "$pid"
}

stop_pids() {  # stop_pids LABEL PID...: SIGTERM, wait up to 20 s, then SIGKILL
  local label=$1; shift
  [ $# -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null
  local i p alive
  for i in $(seq 1 100); do
    alive=()
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive+=("$p"); done
    [ ${#alive[@]} -eq 0 ] && { log "stopped $label"; return 0; }
    sleep 0.2
  done
  log "$label still running after 20 s: SIGKILL ${alive[*]}"
  kill -KILL "${alive[@]}" 2>/dev/null
  sleep 0.5
}

# 1. cancel this cluster's jobs while slurmctld still answers, and give them a moment to end
if [ -f "$CONF" ] && live_pid slurmctld >/dev/null; then
  export SLURM_CONF="$CONF"
  jobs=$(timeout 10 squeue -h -o %A 2>/dev/null | tr '\n' ' ')
  if [ -n "${jobs// }" ]; then
    log "cancelling jobs: $jobs"
    # shellcheck disable=SC2086
    timeout 10 scancel $jobs 2>/dev/null
    for _ in $(seq 1 50); do
      [ -z "$(timeout 10 squeue -h -o %A 2>/dev/null)" ] && break
      sleep 0.2
    done
  fi
fi

# 2. the daemons, all at once: each takes 1-6 s to shut down (slurmctld the longest), so stopping them
#    one after the other costs ~13 s and in parallel ~3 s; the cluster is thrown away anyway.
pids=(); names=()
for name in slurmd slurmctld slurmdbd mariadbd munged; do
  if pid=$(live_pid "$name"); then pids+=("$pid"); names+=("$name($pid)"); fi
done
[ ${#pids[@]} -eq 0 ] || stop_pids "${names[*]}" "${pids[@]}"

# 3. what is left of this cluster's jobs. slurmstepd outlives slurmd; and with proctrack/linuxproc (no
#    cgroups) a job's process whose parent died (a shell killed by the SIGTERM of scancel while its child
#    ignores SIGTERM) is re-parented to init and no longer tracked by SLURM at all. So: every slurmstepd
#    started with our SLURM_CONF, with all its descendants, and every process of a job (SLURM_JOB_ID in its
#    environment) that carries our SLURM_CONF or DIP_SLURM_DIR; never this script or one of its ancestors.
declare -A mine=()
p=$$
while [ -n "$p" ] && [ "$p" -gt 1 ]; do
  mine[$p]=1
  p=$(ps -o ppid= -p "$p" 2>/dev/null | tr -d ' ')
done
has_env() { { tr '\0' '\n' <"/proc/$1/environ"; } 2>/dev/null | grep -qxF "$2"; }
job_procs() {
  local p found=() queue=() ppid child env
  for p in $(pgrep -x slurmstepd 2>/dev/null); do
    has_env "$p" "SLURM_CONF=$CONF" && found+=("$p")
  done
  # descendants of those slurmstepd
  declare -A kids=()
  while read -r child ppid; do kids[$ppid]+=" $child"; done < <(ps -e -o pid=,ppid=)
  queue=("${found[@]}")
  while [ ${#queue[@]} -gt 0 ]; do
    p=${queue[0]}; queue=("${queue[@]:1}")
    for child in ${kids[$p]:-}; do found+=("$child"); queue+=("$child"); done
  done
  # job processes that escaped (re-parented to init)
  for p in $(ls /proc | grep -E '^[0-9]+$'); do
    env=$({ tr '\0' '\n' <"/proc/$p/environ"; } 2>/dev/null) || continue
    grep -q '^SLURM_JOB_ID=' <<<"$env" || continue
    grep -qxF -e "SLURM_CONF=$CONF" -e "DIP_SLURM_DIR=$DIR" <<<"$env" && found+=("$p")
  done
  for p in "${found[@]}"; do [ -z "${mine[$p]:-}" ] && echo "$p"; done | sort -un
}
stop_job_procs() {  # SIGTERM, 5 s, SIGKILL (a job's process has had its SIGTERM from scancel already)
  local procs=("$@") i p alive
  [ ${#procs[@]} -gt 0 ] || return 0
  kill -TERM "${procs[@]}" 2>/dev/null
  for i in $(seq 1 25); do
    alive=()
    for p in "${procs[@]}"; do kill -0 "$p" 2>/dev/null && alive+=("$p"); done
    [ ${#alive[@]} -eq 0 ] && break
    sleep 0.2
  done
  [ ${#alive[@]} -eq 0 ] || { kill -KILL "${alive[@]}" 2>/dev/null; sleep 0.3; }
  log "stopped what was left of the jobs: ${procs[*]}"
}
mapfile -t procs < <(job_procs)
stop_job_procs "${procs[@]}"

# 4. the /etc/slurm/slurm.conf link slurm_up.sh made (only if it still points at this cluster)
if [ -L /etc/slurm/slurm.conf ] && [ "$(readlink /etc/slurm/slurm.conf)" = "$CONF" ]; then
  rm -f /etc/slurm/slurm.conf
  log "removed the link /etc/slurm/slurm.conf -> $CONF"
fi

# 5. stale pid, socket and lock files (a stale slurmctld/slurmd pid file makes a later start signal
#    whatever process now has that PID)
rm -f "$DIR"/pids/*.pid "$DIR"/run/*.pid "$DIR"/munge/munged.pid "$DIR"/munge/munge.socket.2* \
      "$DIR"/mysql/mariadbd.pid "$DIR"/mysql/mysqld.sock* "$DIR/env"

if [ "$keep" = 0 ]; then
  if grep -qs 'written by tests/cluster/slurm_up.sh' "$CONF"; then
    rm -rf "$DIR"
    log "removed $DIR"
  else
    log "not removing $DIR: no slurm_up.sh configuration in it"
  fi
else
  log "kept $DIR (logs in $DIR/log)"
fi
exit 0
