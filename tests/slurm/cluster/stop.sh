#!/usr/bin/env bash
# Stop the throwaway cluster started by start.sh: cancel its jobs, stop slurmd, slurmctld,
# (slurmdbd, mariadbd) and munged by the PIDs in their pid files (never by name), remove our /etc/slurm/slurm.conf
# symlink, and wipe SLURM_LOCAL_DIR (set KEEP_DIR=1 to keep logs/state for debugging).
set -uo pipefail

D=${SLURM_LOCAL_DIR:-/tmp/candle-restart-slurm}
KEEP_DIR=${KEEP_DIR:-0}
CONF="$D/etc/slurm.conf"
log() { printf '[slurm-local %s] %s\n' "$(date +%T)" "$*"; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if [ ! -d "$D" ]; then log "nothing to stop ($D absent)"; exit 0; fi

# 1. cancel every job of this cluster and wait for them to leave squeue (slurmstepd exits with them)
if alive "$D/run/slurmctld.pid" && [ -f "$CONF" ]; then
  export SLURM_CONF="$CONF"
  ids=$(squeue -h -o %i 2>/dev/null | tr '\n' ' ')
  if [ -n "${ids// /}" ]; then
    log "cancelling jobs: $ids"
    # shellcheck disable=SC2086
    scancel $ids 2>/dev/null || true
    for _ in $(seq 1 150); do
      [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.2
    done
    left=$(squeue -h -o '%i:%T' 2>/dev/null | tr '\n' ' ')
    [ -n "$left" ] && log "WARNING: jobs still listed after 30s: $left"
  fi
fi

# 2. stop daemons by pid file; check /proc/PID/comm so a recycled PID is never signalled
stop_pid() {  # name pidfile
  local name=$1 pf=$2 pid comm
  [ -f "$pf" ] || { log "$name: no pid file"; return 0; }
  pid=$(cat "$pf")
  if ! kill -0 "$pid" 2>/dev/null; then log "$name: pid $pid not running"; return 0; fi
  comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
  if [ "$comm" != "$name" ]; then log "$name: pid $pid is '$comm', not $name; not touching it"; return 0; fi
  kill -TERM "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then log "$name: pid $pid ignored SIGTERM, sending SIGKILL"; kill -KILL "$pid"; fi
  log "$name: stopped (pid $pid)"
}
stop_pid slurmd    "$D/run/slurmd.pid"
stop_pid slurmctld "$D/run/slurmctld.pid"
[ -f "$D/run/slurmdbd.pid" ] && stop_pid slurmdbd "$D/run/slurmdbd.pid"    # WITH_ACCOUNTING=1 only
[ -f "$D/run/mariadbd.pid" ] && stop_pid mariadbd "$D/run/mariadbd.pid"    # WITH_ACCOUNTING=1 only
stop_pid munged    "$D/run/munged.pid"

# 3. report (do not kill) any slurmstepd still alive
for p in /proc/[0-9]*; do
  if [ "$(readlink "$p/exe" 2>/dev/null)" = /usr/sbin/slurmstepd ]; then
    log "WARNING: slurmstepd pid ${p#/proc/} still alive: $(tr '\0' ' ' < "$p/cmdline")"
  fi
done

# 4. our /etc/slurm/slurm.conf symlink
if [ -L /etc/slurm/slurm.conf ] && [ "$(readlink /etc/slurm/slurm.conf)" = "$CONF" ]; then
  rm -f /etc/slurm/slurm.conf; log "removed /etc/slurm/slurm.conf symlink"
fi

# 5. wipe
if [ "$KEEP_DIR" = 1 ]; then log "kept $D"; else rm -rf "$D"; log "removed $D"; fi
