#!/bin/bash

#SBATCH --job-name=candle.block.<time>
#SBATCH --output=<run>/scripts/candle.block.<time>.stdout
#SBATCH --error=<run>/scripts/candle.block.<time>.stderr
#SBATCH --nodes=1
#SBATCH --time=120
#SBATCH --ntasks-per-node=1

#SBATCH --exclusive
#SBATCH --partition=gpu
#SBATCH --account=candle
#SBATCH --constraint=a100


export PATH=<venv>/bin:$PATH


export JOBNAME="candle.block.<time>"

set -e
export CORES=$SLURM_CPUS_ON_NODE
export NODES=$SLURM_JOB_NUM_NODES

[[ "1" == "1" ]] && echo "Found cores : $CORES"
[[ "1" == "1" ]] && echo "Found nodes : $NODES"
WORKERCOUNT=1
SCRIPT_DIR="<run>/scripts"
[[ -d $SCRIPT_DIR ]] || SCRIPT_DIR=""

cat << SLURM_EOF > ${SCRIPT_DIR:+$SCRIPT_DIR/}cmd_$SLURM_JOB_NAME.sh
process_worker_pool.py --PLACEHOLDER
SLURM_EOF
chmod a+x ${SCRIPT_DIR:+$SCRIPT_DIR/}cmd_$SLURM_JOB_NAME.sh

srun --ntasks 1 -l  bash ${SCRIPT_DIR:+$SCRIPT_DIR/}cmd_$SLURM_JOB_NAME.sh

[[ "1" == "1" ]] && echo "Done"

