"""Real non-Keras ``command`` programs for the runner's tests: they keep their own state.

`TRAINER` trains ``--epochs`` epochs of ``--epoch_seconds`` each (the work is a sleep: the
program stands for any script that saves its own files), keeps its epoch in
``<ckpt_directory>/trainer-state.json`` (written atomically after every epoch) and resumes from it,
stops with exit 75 after the epoch in progress on SIGUSR1, and appends one line per event to
``--marks``: ``start ATTEMPT PID overlap=BOOL FROM``, ``epoch ATTEMPT N``, ``stop ATTEMPT CODE``.
For its whole life it holds an exclusive ``flock`` on ``--lock``: a second attempt of the task
that starts while this one lives records ``overlap=True`` (the kernel drops the lock when the
process dies, however it dies).

`LAUNCHER` stands for a launcher (torchrun, a shell script): it starts ``python TRAINER ARGS`` as
its own child, ignores the signals it is sent (the child gets them from its process group), and
exits with the child's code.  `ESCAPING_LAUNCHER` starts the trainer in a session of its own
(out of the command's process group, as a daemonizing program would).
"""

TRAINER = r"""
import argparse, fcntl, json, os, signal, sys, time
p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int)
p.add_argument("--epoch_seconds", type=float, default=0.2)
p.add_argument("--marks")
p.add_argument("--lock")
p.add_argument("--ckpt_directory")
a, _ = p.parse_known_args()
attempt = os.environ.get("CANDLE_RESTART_ATTEMPT", "?")
stop = []
signal.signal(signal.SIGUSR1, lambda s, f: stop.append(s))

def mark(text):
    with open(a.marks, "a") as f:
        f.write(text + "\n")

lock = os.open(a.lock, os.O_CREAT | os.O_RDWR)
try:
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    overlap = False
except BlockingIOError:
    overlap = True
os.makedirs(a.ckpt_directory, exist_ok=True)
path = os.path.join(a.ckpt_directory, "trainer-state.json")
epoch = json.load(open(path))["epoch"] if os.path.exists(path) else 0
mark(f"start {attempt} {os.getpid()} overlap={overlap} {epoch}")
while epoch < a.epochs:
    time.sleep(a.epoch_seconds)
    epoch += 1
    with open(path + ".tmp", "w") as f:
        json.dump({"epoch": epoch}, f)
    os.replace(path + ".tmp", path)
    mark(f"epoch {attempt} {epoch}")
    if stop and epoch < a.epochs:
        mark(f"stop {attempt} 75")
        sys.exit(75)
mark(f"stop {attempt} 0")
"""

LAUNCHER = r"""
import signal, subprocess, sys
for sig in (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT):
    signal.signal(sig, lambda s, f: None)
sys.exit(subprocess.call([sys.executable, *sys.argv[1:]], start_new_session=ESCAPE))
"""
ESCAPING_LAUNCHER = LAUNCHER.replace("ESCAPE", "True")  # the trainer leaves the process group
LAUNCHER = LAUNCHER.replace("ESCAPE", "False")
