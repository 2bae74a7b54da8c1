#!/usr/bin/env bash
# Start a throw-away, single-node SLURM cluster (with accounting) for the cluster tests.
#
#   tests/cluster/slurm_up.sh [DIR]      # DIR: state directory (default: a new mktemp -d /tmp/dip-slurm.XXXXXX)
#   eval "$(tests/cluster/slurm_up.sh)"  # stdout is only `export NAME=VALUE` lines (also written to DIR/env)
#   tests/cluster/slurm_down.sh "$DIP_SLURM_DIR"
#
# What it does (root only; Debian 12):
#   1. apt-get installs slurm-wlm (slurmctld, slurmd, slurm-client: sbatch/sacct/sinfo...), slurmdbd,
#      munge and mariadb-server when a binary is missing.
#   2. Writes every configuration file, key, database, spool, state, log and pid file under DIR. The
#      clients (sbatch, sacct, sinfo, scontrol, srun, which the Snakemake slurm plugin calls) and the daemons
#      read $SLURM_CONF, and slurmdbd reads slurmdbd.conf from the same directory. One exception: the srun
#      that Snakemake runs inside each job does not get SLURM_CONF (see "/etc/slurm/slurm.conf" below), so
#      /etc/slurm/slurm.conf is made a symlink to DIR's slurm.conf while the cluster is up, and only when
#      that path is free; slurm_down.sh removes the link.
#   3. Starts, each on 127.0.0.1 on free ports, with its own private socket/key/datadir:
#        munged     (as the munge user, private key and socket; slurm.conf's AuthInfo points at the socket)
#        mariadbd   (private datadir under DIR, TCP 127.0.0.1 only; the system database is not touched)
#        slurmdbd   (accounting: the Snakemake slurm plugin polls job states with sacct, and sacct without
#                    slurmdbd fails, which leaves Snakemake waiting for ever)
#        slurmctld, slurmd (one node "localhost" with all CPUs of this machine and one pretend GPU,
#                    partition "debug", the default)
#      Every daemon runs in the foreground under setsid, so its PID is known exactly; the PIDs of exactly
#      these daemons are written to DIR/pids/NAME.pid, which slurm_down.sh uses to stop them.
#   4. Waits until `sinfo` shows the node idle and `sacct` answers, then prints the env lines.
#
# Re-running with the same DIR while the cluster is up just prints the env again; a half-dead cluster in
# DIR is stopped and started again. Progress and errors go to stderr.
#
# Exit codes: 0 up; 1 failure (log tails printed); 2 usage; 77 not root; 78 packages missing and apt-get
# could not install them (the pytest fixture turns 77 and 78 into skips).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
T0=${EPOCHREALTIME/./}
log() { local t=$(( (${EPOCHREALTIME/./} - T0) / 100000 )); printf 'slurm_up: [%3d.%ds] %s\n' $((t / 10)) $((t % 10)) "$*" >&2; }
die() { echo "slurm_up: ERROR: $*" >&2; exit 1; }

if [ "$(id -u)" != 0 ]; then
  echo "slurm_up: needs root: it installs Debian packages and starts munged, mariadbd, slurmdbd," \
       "slurmctld and slurmd (you are $(id -un))" >&2
  exit 77
fi
[ $# -le 1 ] || { echo "usage: $0 [DIR]" >&2; exit 2; }

CLUSTER=diptest
PARTITION=debug
NODE=localhost

# ---------------------------------------------------------------- 1. packages
need_bins=(munged munge mariadbd mariadb mariadb-install-db slurmdbd slurmctld slurmd sbatch sacct sacctmgr sinfo scontrol srun squeue scancel)
missing=()
for b in "${need_bins[@]}"; do
  PATH="$PATH:/usr/sbin:/sbin" command -v "$b" >/dev/null 2>&1 || missing+=("$b")
done
export PATH="$PATH:/usr/sbin:/sbin"
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages (missing: ${missing[*]})"
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "slurm_up: cannot install the SLURM packages: no apt-get on this machine (missing: ${missing[*]})" >&2
    exit 78
  fi
  export DEBIAN_FRONTEND=noninteractive
  # The daemons are started by hand below; a package's own start attempt (policy-rc.d / no init system)
  # is refused or irrelevant.
  pkgs=(slurm-wlm slurm-client slurmdbd munge mariadb-server mariadb-client)
  apt_out=$(mktemp)
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${pkgs[@]}"; } >"$apt_out" 2>&1; then
    tail -n 20 "$apt_out" >&2
    rm -f "$apt_out"
    echo "slurm_up: cannot install the SLURM packages with apt-get (${pkgs[*]}); see the output above" >&2
    exit 78
  fi
  rm -f "$apt_out"
  for b in "${need_bins[@]}"; do
    command -v "$b" >/dev/null 2>&1 || { echo "slurm_up: $b still missing after apt-get install" >&2; exit 78; }
  done
  log "packages installed"
fi
id munge >/dev/null 2>&1 || die "user 'munge' does not exist (the munge package creates it)"

# ---------------------------------------------------------------- 2. directory
if [ $# -eq 1 ]; then
  DIR="$1"
  mkdir -p "$DIR"
else
  DIR="$(mktemp -d /tmp/dip-slurm.XXXXXX)"
fi
DIR="$(cd "$DIR" && pwd)"
# munged runs as the munge user and refuses keys/sockets under group/world-writable directories; it must
# be able to walk down to DIR/munge. DIR itself holds nothing secret (the DB password file is 600).
chmod 755 "$DIR"
[ ${#DIR} -le 70 ] || die "DIR is too long for a unix socket path (${#DIR} > 70 characters): $DIR"
setpriv --reuid=munge --regid=munge --clear-groups test -x "$DIR" \
  || die "the munge user cannot reach $DIR (a parent directory lacks o+x); use a directory under /tmp"

ENVFILE="$DIR/env"
CONF="$DIR/etc/slurm.conf"
export SLURM_CONF="$CONF"

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# Already up? Then just print the env again.
if [ -f "$ENVFILE" ] && [ -d "$DIR/pids" ]; then
  all_up=1
  for n in munged mariadbd slurmdbd slurmctld slurmd; do
    pid_alive "$(cat "$DIR/pids/$n.pid" 2>/dev/null)" || all_up=0
  done
  if [ "$all_up" = 1 ] && sinfo -h >/dev/null 2>&1; then
    log "cluster in $DIR is already up"
    cat "$ENVFILE"
    exit 0
  fi
  log "cluster in $DIR is partly down: stopping what is left, then starting again"
  "$HERE/slurm_down.sh" --keep "$DIR" >&2 || true
fi

mkdir -p "$DIR"/{etc,log,pids,run,state,spool/slurmd,munge,mysql}
rm -f "$DIR"/pids/*.pid "$DIR"/run/*.pid "$DIR"/munge/*.pid   # stale pid files break restarts

# Free TCP ports on 127.0.0.1 (an occupied default such as 6817 would make a daemon fail at bind time).
declare -A TAKEN=()
free_port() {
  local p=$1
  while [ $p -lt 65000 ]; do
    if [ -z "${TAKEN[$p]:-}" ] && ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      TAKEN[$p]=1; echo "$p"; return 0
    fi
    p=$((p + 1))
  done
  die "no free TCP port"
}
# (the function runs in a subshell via $(...), so mark the ports taken here as well)
CTLD_PORT=$(free_port 16817); TAKEN[$CTLD_PORT]=1
SLURMD_PORT=$(free_port $((CTLD_PORT + 1))); TAKEN[$SLURMD_PORT]=1
DBD_PORT=$(free_port $((SLURMD_PORT + 1))); TAKEN[$DBD_PORT]=1
DB_PORT=$(free_port 13306); TAKEN[$DB_PORT]=1

CPUS=$(nproc)
MEM_MB=$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)
MUNGE_SOCK="$DIR/munge/munge.socket.2"

# Start a daemon in the foreground under setsid (in this non-interactive shell the child is not a process
# group leader, so setsid execs in place and $! is the daemon's own PID). stdio goes to a log file, so a
# caller that captures our output (pytest's subprocess.run) is not kept waiting on the daemons' pipes.
start_daemon() {
  local name=$1; shift
  setsid "$@" </dev/null >>"$DIR/log/$name.out" 2>&1 &
  local pid=$!
  echo "$pid" >"$DIR/pids/$name.pid"
  log "started $name (pid $pid)"
}
# Wait until "$@" succeeds; fail with the daemon's log tail if it dies or times out.
wait_for() {
  local name=$1 timeout=$2; shift 2
  local end=$(( $(date +%s) + timeout ))
  while ! "$@" >/dev/null 2>&1; do
    if ! pid_alive "$(cat "$DIR/pids/$name.pid" 2>/dev/null)"; then
      show_logs "$name"; die "$name died during start-up (logs above; state in $DIR)"
    fi
    if [ "$(date +%s)" -ge "$end" ]; then
      show_logs "$name"; die "$name not ready after ${timeout}s (logs above; state in $DIR)"
    fi
    sleep 0.2
  done
}
show_logs() {
  local f
  for f in "$DIR/log/$1".*; do
    [ -s "$f" ] && { echo "---- $f (last 25 lines)" >&2; tail -n 25 "$f" >&2; }
  done
  return 0
}
# On any failure from here on, stop exactly the daemons started so far (the state stays for a look).
on_exit() {
  local rc=$?
  [ "$BASHPID" = "$$" ] || return 0   # a ( ... ) subshell exiting, not the script
  [ "$rc" = 0 ] && return 0
  echo "slurm_up: FAILED (exit $rc); stopping the daemons started so far (state kept in $DIR)" >&2
  "$HERE/slurm_down.sh" --keep "$DIR" >&2 || true
  exit "$rc"
}
trap on_exit EXIT

# ---------------------------------------------------------------- 3a. munged (private key and socket)
if [ ! -s "$DIR/munge/munge.key" ]; then
  dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
fi
chown -R munge:munge "$DIR/munge"
# munged wants the socket directory executable by all; the key itself stays 600
chmod 755 "$DIR/munge"; chmod 600 "$DIR/munge/munge.key"
rm -f "$MUNGE_SOCK" "$MUNGE_SOCK.lock"
start_daemon munged setpriv --reuid=munge --regid=munge --init-groups \
  munged --foreground --socket="$MUNGE_SOCK" --key-file="$DIR/munge/munge.key" \
  --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed"
munge_ok() { munge -n -S "$MUNGE_SOCK" | unmunge -S "$MUNGE_SOCK"; }
# (pid of setpriv == pid of munged: setpriv execs)
wait_for munged 20 munge_ok

# ---------------------------------------------------------------- 3b. mariadbd (private datadir)
DB_SOCK="$DIR/mysql/mysqld.sock"
DB_DATA="$DIR/mysql/data"
if [ ! -d "$DB_DATA/mysql" ]; then
  log "initialising a private MariaDB datadir"
  mariadb-install-db --no-defaults --datadir="$DB_DATA" --user=root --skip-test-db \
    --auth-root-authentication-method=socket >"$DIR/log/mariadb-install.out" 2>&1 \
    || { show_logs mariadb-install; die "mariadb-install-db failed"; }
fi
start_daemon mariadbd mariadbd --no-defaults --user=root --datadir="$DB_DATA" --socket="$DB_SOCK" \
  --port="$DB_PORT" --bind-address=127.0.0.1 --pid-file="$DIR/mysql/mariadbd.pid" \
  --log-error="$DIR/log/mariadbd.log" --skip-name-resolve --skip-log-bin \
  --innodb-buffer-pool-size=64M --innodb-lock-wait-timeout=900
wait_for mariadbd 60 mariadb-admin --no-defaults --socket="$DB_SOCK" ping
DBPASS_FILE="$DIR/etc/dbpass"
if [ ! -s "$DBPASS_FILE" ]; then
  (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$DBPASS_FILE")
fi
DBPASS=$(cat "$DBPASS_FILE")
mariadb --no-defaults --socket="$DB_SOCK" -u root <<SQL
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DBPASS';
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DBPASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
SQL

# ---------------------------------------------------------------- 3c. configuration
# SlurmUser=root: every directory here belongs to root, and the daemons need no privilege drop on a
# throw-away machine. Job accounting without cgroups: proctrack/linuxproc + jobacct_gather/linux.
cat >"$CONF" <<EOF
# Throw-away test cluster written by tests/cluster/slurm_up.sh. Everything lives under $DIR.
ClusterName=$CLUSTER
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCK
# 22.05's clients (sbatch, sacct, sacctmgr...) ignore AuthInfo when *creating* credentials: they take the
# MUNGE socket from AccountingStoragePass (documented there as the socket of an alternate munged) and fall
# back to /run/munge/munge.socket.2. Without this line every client RPC fails with "Munge encode failed".
AccountingStoragePass=$MUNGE_SOCK
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/slurmd
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# no cgroups (containers without systemd / cgroup delegation)
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
# accounting through slurmdbd, so that sacct works (the Snakemake slurm plugin polls with sacct)
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$DBD_PORT
JobCompType=jobcomp/none
# sacct shows the --comment the Snakemake plugin sets (rule_<name>_wildcards_...)
AccountingStoreFlags=job_comment
AccountingStorageTRES=gres/gpu
MailProg=/bin/true
MpiDefault=none
SchedulerType=sched/backfill
# start batch jobs at once (the default batch_sched_delay=3 s is for high-throughput sites)
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# finished jobs stay visible to squeue/scontrol for 10 minutes (sacct keeps them for ever)
MinJobAge=600
ReturnToService=2
SlurmdParameters=config_overrides
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
# One pretend GPU (gres.conf: backed by /dev/null; nothing enforces or uses it), so that a job asking for
# --gpus=1 (the paper profile's fits: resources gpu=1) is scheduled like on a GPU node.
GresTypes=gpu
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB Gres=gpu:1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF

echo "NodeName=$NODE Name=gpu File=/dev/null" >"$DIR/etc/gres.conf"

# slurmdbd reads slurmdbd.conf from the directory of \$SLURM_CONF; it must be 600 and owned by SlurmUser.
(umask 077; cat >"$DIR/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCK
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
LogFile=$DIR/log/slurmdbd.log
PidFile=$DIR/run/slurmdbd.pid
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DBPASS
StorageLoc=slurm_acct_db
EOF
)
chown root:root "$DIR/etc/slurmdbd.conf"; chmod 600 "$DIR/etc/slurmdbd.conf"

# The one file outside DIR. Everything honours $SLURM_CONF except the srun that Snakemake's jobstep plugin
# (snakemake-executor-plugin-slurm-jobstep 0.6.x) runs inside every SLURM job: it strips all SLURM_*
# variables but the job's identity from srun's environment, SLURM_CONF included, so that srun can only
# find the compiled-in /etc/slurm/slurm.conf (or configless DNS SRV records, which we do not have). Link
# that path to our configuration while the cluster is up; slurm_down.sh removes the link. A real
# slurm.conf there (a configured machine) is never replaced: then we stop with an error.
ETC_CONF=/etc/slurm/slurm.conf
if [ -L "$ETC_CONF" ] && [ "$(readlink "$ETC_CONF")" != "$CONF" ]; then
  old_target=$(readlink "$ETC_CONF")
  if [ ! -e "$old_target" ] && [[ "$old_target" == */etc/slurm.conf ]]; then
    log "removing the dangling link $ETC_CONF -> $old_target (a test cluster that was not stopped)"
    rm -f "$ETC_CONF"
  elif grep -qs 'written by tests/cluster/slurm_up.sh' "$old_target"; then
    die "another test cluster is set up ($ETC_CONF -> $old_target); stop it first: $HERE/slurm_down.sh $(dirname "$(dirname "$old_target")")"
  else
    die "$ETC_CONF -> $old_target: this machine has a SLURM configuration of its own, which the test cluster will not replace"
  fi
fi
if [ -e "$ETC_CONF" ] && [ ! -L "$ETC_CONF" ]; then
  die "$ETC_CONF exists: this machine has a SLURM configuration of its own, which the test cluster will not replace"
fi
mkdir -p /etc/slurm
ln -sfn "$CONF" "$ETC_CONF"

# ---------------------------------------------------------------- 3d. slurmdbd, cluster, slurmctld, slurmd
start_daemon slurmdbd slurmdbd -D
wait_for slurmdbd 60 sacctmgr -n list cluster
if ! sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER"; then
  sacctmgr -i add cluster "$CLUSTER" >/dev/null
  log "registered cluster $CLUSTER with slurmdbd"
fi

start_daemon slurmctld slurmctld -D -f "$CONF"
ctld_up() { scontrol ping | grep -q 'is UP'; }
wait_for slurmctld 60 ctld_up

start_daemon slurmd slurmd -D -f "$CONF" -N "$NODE"
node_idle() { [ "$(sinfo -h -n "$NODE" -o %t)" = idle ]; }
if ! (end=$(( $(date +%s) + 60 )); while ! node_idle; do
        pid_alive "$(cat "$DIR/pids/slurmd.pid")" || exit 1
        [ "$(date +%s)" -lt "$end" ] || exit 1
        sleep 0.2
      done); then
  sinfo -N -l >&2 || true
  scontrol show node "$NODE" >&2 || true
  show_logs slurmd; show_logs slurmctld
  die "node $NODE did not become idle (logs above; state in $DIR)"
fi
# sacct must answer (slurmctld -> slurmdbd -> MariaDB all wired up)
wait_for slurmdbd 30 sacct -n -X -S now-1hours

trap - EXIT
cat >"$ENVFILE" <<EOF
export SLURM_CONF=$CONF
export DIP_SLURM_DIR=$DIR
export DIP_SLURM_CLUSTER=$CLUSTER
export DIP_SLURM_PARTITION=$PARTITION
EOF
log "cluster $CLUSTER up: node $NODE ($CPUS CPUs, ${MEM_MB} MB) idle in partition $PARTITION; state in $DIR"
cat "$ENVFILE"
