#!/bin/bash

#PBS -S /bin/bash
#PBS -N candle.block.<time>
#PBS -m n
#PBS -l walltime=01:00:00
#PBS -l select=2:ncpus=64:ngpus=4
#PBS -o <run>/scripts/candle.block.<time>.stdout
#PBS -e <run>/scripts/candle.block.<time>.stderr
#PBS -l filesystems=home:eagle

export PATH=<venv>/bin:$PATH

export JOBNAME="candle.block.<time>"

set -e
export CORES=$(getconf _NPROCESSORS_ONLN)
[[ "1" == "1" ]] && echo "Found cores : $CORES"
WORKERCOUNT=2
SCRIPT_DIR="<run>/scripts"
[[ -d $SCRIPT_DIR ]] || SCRIPT_DIR=""

# Deduplicate the nodefile
HOSTFILE="$JOBNAME.nodes"
if [ -z "$PBS_NODEFILE" ]; then
    echo "localhost" > $HOSTFILE
else
    sort -u $PBS_NODEFILE > $HOSTFILE
fi

cat << MPIEXEC_EOF > ${SCRIPT_DIR:+$SCRIPT_DIR/}cmd_$JOBNAME.sh
process_worker_pool.py --PLACEHOLDER
MPIEXEC_EOF
chmod u+x ${SCRIPT_DIR:+$SCRIPT_DIR/}cmd_$JOBNAME.sh

mpiexec --bind-to none  -n $WORKERCOUNT --hostfile $HOSTFILE /usr/bin/sh ${SCRIPT_DIR:+$SCRIPT_DIR/}cmd_$JOBNAME.sh

[[ "1" == "1" ]] && echo "All workers done"


