import mvm

@mvm.app(name="big", resources=mvm.resources(cpu=4, memory_mb=2048, rootfs_size_mb=4096))
def f() -> None:
    pass
