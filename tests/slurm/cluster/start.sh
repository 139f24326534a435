#!/usr/bin/env bash
# Start a throwaway single-node Slurm cluster (munged + slurmctld + slurmd) without systemd,
# for candle_restart's Slurm tests and CI (adapted from the team's tested slurm-local recipe).
# Tested on Debian 12 (bookworm), Slurm 22.05.8 (Debian package), munge 0.5.15, as root.
#
# Usage:   sudo ./start.sh            # installs packages if missing, starts, waits for node idle
#          source /tmp/slurm-local/env.sh     # sets SLURM_CONF for sbatch/squeue/sacct/scontrol/scancel
# Stop:    ./stop.sh
#
# Knobs (environment variables):
#   SLURM_LOCAL_DIR   state/config/log dir             (default /tmp/slurm-local; wiped by stop.sh)
#   LINK_ETC_CONF     1 = also symlink /etc/slurm/slurm.conf to our config so sbatch/squeue work
#                     without SLURM_CONF for EVERY process on the machine (only if that path is
#                     absent or already a symlink). Default 0: export SLURM_CONF / source env.sh.
#   CRED_EXPIRE       AuthInfo cred_expire: also the delay before a requeued job may start (default 10)
#   KILL_WAIT         seconds between SIGTERM and SIGKILL on cancel/timeout/preempt   (default 10)
#   GRACE_TIME        preemption GraceTime of partition "debug" (seconds, default 0)
#   MIN_JOB_AGE       seconds a finished job stays visible in squeue/scontrol (default 600)
#   SCHED_INTERVAL    main scheduler + backfill interval in seconds (default 2)
#   SLURMCTLD_PORT / SLURMD_PORT  (default 6817 / 6818)
#   READY_TIMEOUT     seconds to wait for the node to become idle (default 60)
#   SMOKE             1 = run a trivial `sbatch --wait` job after start-up (default 1)
#   NO_INSTALL        1 = never call apt-get (fail instead if packages are missing)
#   WITH_ACCOUNTING   1 = also run MariaDB + slurmdbd so real `sacct` works (default 0;
#                     installs slurmdbd + mariadb-server, ~27 MB download, ~193 MB on disk)
#   SLURMDBD_PORT / MARIADB_PORT  (default 6819 / 3307; MariaDB listens on 127.0.0.1 only)
set -euo pipefail

D=${SLURM_LOCAL_DIR:-/tmp/candle-restart-slurm}
LINK_ETC_CONF=${LINK_ETC_CONF:-0}
CRED_EXPIRE=${CRED_EXPIRE:-10}
KILL_WAIT=${KILL_WAIT:-10}
GRACE_TIME=${GRACE_TIME:-0}
MIN_JOB_AGE=${MIN_JOB_AGE:-600}
SCHED_INTERVAL=${SCHED_INTERVAL:-2}
SLURMCTLD_PORT=${SLURMCTLD_PORT:-6817}
SLURMD_PORT=${SLURMD_PORT:-6818}
READY_TIMEOUT=${READY_TIMEOUT:-60}
SMOKE=${SMOKE:-1}
NO_INSTALL=${NO_INSTALL:-0}
WITH_ACCOUNTING=${WITH_ACCOUNTING:-0}
SLURMDBD_PORT=${SLURMDBD_PORT:-6819}
MARIADB_PORT=${MARIADB_PORT:-3307}

log() { printf '[slurm-local %s] %s\n' "$(date +%T)" "$*"; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}'; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

[ "$(id -u)" = 0 ] || die "must run as root (slurmd needs root to launch jobs)"

# ---- 1. packages ---------------------------------------------------------------------------
PKGS="slurmctld slurmd slurm-client munge"
BINS="munged mungekey munge unmunge slurmctld slurmd sbatch squeue sacct sacctmgr scontrol scancel sinfo"
if [ "$WITH_ACCOUNTING" = 1 ]; then
  PKGS="$PKGS slurmdbd mariadb-server"
  BINS="$BINS slurmdbd mariadbd mariadb-install-db mariadb"
fi
need_install=0
for b in $BINS; do
  command -v "$b" >/dev/null 2>&1 || need_install=1
done
if [ "$need_install" = 1 ]; then
  [ "$NO_INSTALL" = 1 ] && die "binaries missing and NO_INSTALL=1 (need: $PKGS)"
  log "installing $PKGS (apt-get, --no-install-recommends)"
  t_inst=$(now)
  apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $PKGS >/dev/null
  log "install done in $(elapsed "$t_inst")s"
fi

# ---- 2. already running? -------------------------------------------------------------------
if alive "$D/run/munged.pid" && alive "$D/run/slurmctld.pid" && alive "$D/run/slurmd.pid"; then
  log "already running in $D (use stop.sh first for a fresh cluster)"
  exit 0
fi
if [ -e "$D" ]; then
  for p in munged mariadbd slurmdbd slurmctld slurmd; do
    alive "$D/run/$p.pid" && die "$p from a previous run is still alive (pid $(cat "$D/run/$p.pid")); run stop.sh"
  done
  rm -rf "$D"
fi
PORTS="$SLURMCTLD_PORT $SLURMD_PORT"
[ "$WITH_ACCOUNTING" = 1 ] && PORTS="$PORTS $SLURMDBD_PORT $MARIADB_PORT"
for port in $PORTS; do
  if command -v ss >/dev/null && ss -ltnH "sport = :$port" | grep -q .; then die "TCP port $port already in use"; fi
done

T0=$(now)
H=$(hostname -s)
mkdir -p "$D"/{etc,state,log,run,munge,spool/slurmd} "$D/munge/key"
chmod 755 "$D" "$D/munge"          # munged insists the socket dir is world-executable
chmod 700 "$D/munge/key" "$D/state"

# ---- 3. munge (own key, own socket; does not touch /etc/munge or /run/munge) ----------------
if ! mungekey --create --keyfile="$D/munge/key/munge.key" --force 2>/dev/null; then
  dd if=/dev/urandom of="$D/munge/key/munge.key" bs=1 count=1024 status=none
fi
chmod 600 "$D/munge/key/munge.key"
SOCK="$D/munge/munge.socket"
munged --socket="$SOCK" --key-file="$D/munge/key/munge.key" \
       --log-file="$D/log/munged.log" --pid-file="$D/run/munged.pid" \
       --seed-file="$D/munge/munged.seed"
for _ in $(seq 1 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
munge -S "$SOCK" -n | unmunge -S "$SOCK" >/dev/null || die "munge self-test failed (see $D/log/munged.log)"
log "munged up (pid $(cat "$D/run/munged.pid"))"

# ---- 3b. optional accounting: MariaDB (own datadir, 127.0.0.1:$MARIADB_PORT) + slurmdbd ------
if [ "$WITH_ACCOUNTING" = 1 ]; then
  mkdir -p "$D/mysql"
  mariadb-install-db --user=root --datadir="$D/mysql" --skip-test-db >"$D/log/mariadb-install-db.log" 2>&1 \
      || die "mariadb-install-db failed; see $D/log/mariadb-install-db.log"
  # mariadbd does not daemonize; detach it from this shell
  setsid mariadbd --user=root --datadir="$D/mysql" --socket="$D/run/mysqld.sock" \
      --pid-file="$D/run/mariadbd.pid" --port="$MARIADB_PORT" --bind-address=127.0.0.1 \
      --log-error="$D/log/mariadb.err" --innodb-buffer-pool-size=64M </dev/null >/dev/null 2>&1 &
  for _ in $(seq 1 150); do [ -S "$D/run/mysqld.sock" ] && break; sleep 0.1; done
  [ -S "$D/run/mysqld.sock" ] || die "mariadbd did not come up; see $D/log/mariadb.err"
  mariadb -S "$D/run/mysqld.sock" -u root -e \
    "CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm-local'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;" \
    || die "could not create the MariaDB user"
  log "mariadbd up (pid $(cat "$D/run/mariadbd.pid"))"
  cat > "$D/etc/slurmdbd.conf" <<DBDEOF
AuthType=auth/munge
AuthInfo=socket=$SOCK
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$SLURMDBD_PORT
SlurmUser=root
DebugLevel=info
LogFile=$D/log/slurmdbd.log
PidFile=$D/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$MARIADB_PORT
StorageUser=slurm
StoragePass=slurm-local
StorageLoc=slurm_acct_db
DBDEOF
  chmod 600 "$D/etc/slurmdbd.conf"
  # slurmdbd has no -f option: it reads slurmdbd.conf from the directory of $SLURM_CONF
  SLURM_CONF="$D/etc/slurm.conf" slurmdbd || die "slurmdbd failed; see $D/log/slurmdbd.log"
  for _ in $(seq 1 100); do
    (echo > "/dev/tcp/127.0.0.1/$SLURMDBD_PORT") 2>/dev/null && break
    sleep 0.1
  done
  alive "$D/run/slurmdbd.pid" || die "slurmdbd not running; see $D/log/slurmdbd.log"
  log "slurmdbd up (pid $(cat "$D/run/slurmdbd.pid"))"
  # AccountingStoragePass = munge socket used for slurmctld/sacct/sacctmgr -> slurmdbd connections
  ACCT="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$SLURMDBD_PORT
AccountingStoragePass=$SOCK
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30"
else
  ACCT="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
fi

# ---- 4. slurm.conf ---------------------------------------------------------------------------
# Hardware line exactly as slurmd detects it (CPUs, sockets, cores, threads, RealMemory).
HW=$(slurmd -C | head -1 | sed -e 's/^NodeName=[^ ]* //')
CONF="$D/etc/slurm.conf"
cat > "$CONF" <<EOF
# generated by slurm-local/start.sh $(date -Is)
ClusterName=localci
SlurmctldHost=$H(127.0.0.1)
SlurmctldPort=$SLURMCTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCK,cred_expire=$CRED_EXPIRE
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool/slurmd
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
$ACCT
# per-run completion records; readable with 'sacct -c' (no slurmdbd needed)
JobCompType=jobcomp/filetxt
JobCompLoc=$D/log/jobcomp.log
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=$SCHED_INTERVAL,bf_interval=$SCHED_INTERVAL
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobRequeue=1
ReturnToService=2
MinJobAge=$MIN_JOB_AGE
KillWait=$KILL_WAIT
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
# deliver the job's --signal (e.g. B:USR1@N) at preemption time, not only near the time limit
SlurmctldParameters=preempt_send_user_signal
NodeName=$H NodeAddr=127.0.0.1 $HW State=UNKNOWN
# 'debug' = default, preemptible (jobs are requeued); 'high' = preempts 'debug'
PartitionName=debug Nodes=$H Default=YES MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE GraceTime=$GRACE_TIME
PartitionName=high Nodes=$H Default=NO MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
EOF
printf 'export SLURM_CONF=%s\n' "$CONF" > "$D/env.sh"
export SLURM_CONF="$CONF"

if [ "$LINK_ETC_CONF" = 1 ]; then
  mkdir -p /etc/slurm
  if [ ! -e /etc/slurm/slurm.conf ] || [ -L /etc/slurm/slurm.conf ]; then
    ln -sfn "$CONF" /etc/slurm/slurm.conf
    log "linked /etc/slurm/slurm.conf -> $CONF"
  else
    log "WARNING: /etc/slurm/slurm.conf is a real file; left alone. Use: source $D/env.sh"
  fi
fi

# ---- 5. daemons (they daemonize themselves and write pid files) -----------------------------
if [ "$WITH_ACCOUNTING" = 1 ]; then
  # register the cluster in slurmdbd before slurmctld connects
  sacctmgr -i add cluster localci >/dev/null || die "sacctmgr add cluster failed"
fi
slurmctld -f "$CONF" || die "slurmctld failed to start; see $D/log/slurmctld.log"
slurmd -f "$CONF" -N "$H" || die "slurmd failed to start; see $D/log/slurmd.log"
for p in slurmctld slurmd; do
  for _ in $(seq 1 50); do alive "$D/run/$p.pid" && break; sleep 0.1; done
  alive "$D/run/$p.pid" || die "$p not running; see $D/log/$p.log"
done
log "slurmctld pid $(cat "$D/run/slurmctld.pid"), slurmd pid $(cat "$D/run/slurmd.pid")"

# ---- 6. wait for the node to be IDLE and responding ----------------------------------------
deadline=$(( $(date +%s) + READY_TIMEOUT ))
state=""
while :; do
  state=$(scontrol show node "$H" 2>/dev/null | sed -n 's/.*State=\([^ ]*\).*/\1/p' | head -1 || true)
  [ "$state" = IDLE ] && break
  [ "$(date +%s)" -ge "$deadline" ] && die "node not idle after ${READY_TIMEOUT}s (state='$state'); logs in $D/log"
  sleep 0.2
done
log "node $H IDLE $(elapsed "$T0")s after start"
sinfo

if [ "$SMOKE" = 1 ]; then
  t_job=$(now)
  out=$(cd "$D" && sbatch --wait --parsable -o "$D/log/smoke-%j.out" --wrap 'echo smoke-ok') \
      || die "smoke job failed"
  grep -q smoke-ok "$D/log/smoke-$out.out" || die "smoke job output missing"
  log "smoke job $out completed in $(elapsed "$t_job")s (total $(elapsed "$T0")s since start)"
fi
log "ready. SLURM_CONF=$CONF  (source $D/env.sh)"
