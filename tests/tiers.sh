#!/usr/bin/env bash
# `make test`: the test tiers named as arguments, in order (tests/helpers/tiering.py sets each
# test's tier by rule). The first tier that fails, in this order, ends the run with its exit code
# (pytest's 5, "no test selected", passes: a checkout may hold no test of a tier).
#
# From the environment (the Makefile sets them):
#   PY           the Python that runs pytest
#   XDIST        pytest-xdist's options for the tiers of XDIST_TIERS (one worker a core, at most two);
#                their TensorFlow gets one intra-op thread (TF_NUM_INTRAOP_THREADS=1, unless set):
#                the workers, not TensorFlow's threads, share the cores
#   XDIST_TIERS  those tiers
#   BESIDE       tiers that start together with the tier before them and run beside it: the cluster
#                tier waits on Slurm, FUSE and Chromium, not on the CPUs the tf tier trains on. Its
#                output is held and shown after the other tier's; a failure of either is reported
#                once both have ended.
set -u
: "${PY:?}" "${XDIST:=}" "${XDIST_TIERS:=}" "${BESIDE:=}"

run_tier() {
    local tier=$1 extra= threads=() start rc
    case " $XDIST_TIERS " in
        *" $tier "*) extra=$XDIST threads=("TF_NUM_INTRAOP_THREADS=${TF_NUM_INTRAOP_THREADS:-1}") ;;
    esac
    start=$(date +%s)
    # shellcheck disable=SC2086  # XDIST is a list of options
    env ${threads[@]+"${threads[@]}"} "$PY" -m pytest -q -rs --durations=10 -m "$tier" $extra
    rc=$?
    echo "== tier $tier: exit $rc in $(($(date +%s) - start)) s"
    return $rc
}

failed() { [ "$1" -ne 0 ] && [ "$1" -ne 5 ]; }

began=$(date +%s)
tiers=("$@")
i=0
while [ $i -lt ${#tiers[@]} ]; do
    tier=${tiers[$i]}
    next=${tiers[$((i + 1))]:-}
    if [ -n "$next" ] && [[ " $BESIDE " == *" $next "* ]]; then
        held=$(mktemp)
        echo "== tier $tier, and tier $next beside it (its output follows)"
        run_tier "$next" >"$held" 2>&1 &
        beside=$!
        run_tier "$tier"
        rc=$?
        wait $beside
        rc_next=$?
        echo "== tier $next (ran beside $tier)"
        cat "$held"
        rm -f "$held"
        if failed $rc; then exit $rc; fi
        if failed $rc_next; then exit $rc_next; fi
        i=$((i + 2))
    else
        echo "== tier $tier"
        run_tier "$tier"
        rc=$?
        if failed $rc; then exit $rc; fi
        i=$((i + 1))
    fi
done
echo "== all tiers passed in $(($(date +%s) - began)) s"
