"""The long-running command the recorded sandbox ends with."""

import os
import time

with open("/app/config/name.txt") as f:
    name = f.read().strip()
print(f"{os.environ.get('GREETING', 'hello')} {name}", flush=True)
while True:
    time.sleep(3600)
