"""``python -m deepaas_host`` is ``deepaas-host``."""

from __future__ import annotations

import sys

from deepaas_host.cli import main

if __name__ == "__main__":
    sys.exit(main())
