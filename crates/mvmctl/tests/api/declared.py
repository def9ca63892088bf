"""A live sandbox of a base template gets what its declaration asks for:
the secret as an opaque token (never its value), the resources, and the
network policy (tests/api_vm.rs)."""

import json

import mvm
from mvm import Sandbox

with Sandbox.create(
    template="python-3.13",
    secrets={"API_KEY": mvm.secret("api-key", hosts=["api.example.com"])},
    resources={"cpu_cores": 2, "memory_mb": 384, "rootfs_size_mb": 512},
    network=mvm.network(mode="bridge", egress=mvm.egress([mvm.host_port("api.example.com", 443)])),
    timeout=300,
) as sb:
    r = sb.commands.run("echo $API_KEY; nproc; grep MemTotal /proc/meminfo")
    key, cpus, mem = r.stdout.splitlines()
    print(json.dumps({"key": key, "cpus": int(cpus), "mem_kb": int(mem.split()[1]), "id": sb.id}))
