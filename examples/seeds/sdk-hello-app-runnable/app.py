# The SDK page's hello-app (examples/seeds/sdk-hello-app-py) with the
# changes this mvm's compile review asks for, so it runs end to end:
# - python="3.13": no registry these machines reach carries CPython 3.12
#   (W_IMAGE_UNBUILDABLE names the versions that can be built);
# - no after_start curl to 127.0.0.1:8080: this app is a function and runs
#   no server, so that readiness probe could never pass;
# - greet also returns the banner the before_start hook exports, to show
#   that the export reaches the function.
import os

import mvm

@mvm.app(
    name="hello-app",
    source=mvm.local_path("."),
    image=mvm.python_image(python="3.13"),
    resources=mvm.resources(cpu_cores=1, memory_mb=256, rootfs_size_mb=512),
    entrypoint=mvm.entrypoint_function(
        module="app",
        function="greet",
        primary=True,
    ),
    env={
        "MODEL_PATH": mvm.literal("/data/model.pt"),
        "API_KEY": mvm.secret("api-key"),
    },
    before_start="export HELLO_BANNER='hi'",
)
def greet(name: str) -> str:
    return f"hello {name} ({os.environ.get('HELLO_BANNER', 'no banner')})"
