"""The long-running command the recorded sandbox ends with."""

import os
import time

with open("/app/config/name.txt") as f:
    name = f.read().strip()
greeting = f"{os.environ.get('GREETING', 'hello')} {name}"
print(greeting, flush=True)
with open("/tmp/greeting", "w") as f:
    f.write(greeting + "\n")
while True:
    time.sleep(3600)
