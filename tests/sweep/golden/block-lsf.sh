#!/bin/bash

#BSUB -W 30
#BSUB -J candle.block.<time>
#BSUB -o <run>/scripts/candle.block.<time>.submit.stdout
#BSUB -e <run>/scripts/candle.block.<time>.submit.stderr

#BSUB -P MED106
#BSUB -q batch
#BSUB -nnodes 1


export PATH=<venv>/bin:$PATH

export JOBNAME="candle.block.<time>"

set -e
WORKERCOUNT=1
SCRIPT_DIR="<run>/scripts"
[[ -d $SCRIPT_DIR ]] || SCRIPT_DIR=""

cat << JSRUN_EOF > ${SCRIPT_DIR:+$SCRIPT_DIR/}cmd_$JOBNAME.sh
process_worker_pool.py --PLACEHOLDER
JSRUN_EOF
chmod a+x ${SCRIPT_DIR:+$SCRIPT_DIR/}cmd_$JOBNAME.sh

jsrun -n 1 -r 1  /bin/bash ${SCRIPT_DIR:+$SCRIPT_DIR/}cmd_$JOBNAME.sh &
wait

[[ "1" == "1" ]] && echo "Done"

