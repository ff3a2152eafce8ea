"""A worker process for test_worker.py to kill: it claims one step of the hosted type under a
1 second lease (heartbeats on), writes the step's transaction_id to the file named, as if the
charge were made, and then hangs until it is killed with SIGKILL.
Usage: worker_process.py DSN TYPE STARTED_FILE"""

import datetime
import sys
import time
from pathlib import Path

import cte_ctel


class Hang(cte_ctel.Executor):
    def execute(self, step):
        Path(sys.argv[3]).write_text(str(step.transaction_id))
        while True:
            time.sleep(1)


worker = cte_ctel.Worker(sys.argv[1], {sys.argv[2]: Hang()}, "py-doomed",
                         lease=datetime.timedelta(seconds=1))
while worker.run_once() == 0:
    time.sleep(0.05)
