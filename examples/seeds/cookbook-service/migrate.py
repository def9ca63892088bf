"""before_start: runs at every boot, before the service starts."""

import pathlib

pathlib.Path("/run/service-db").write_text("migrated\n")
