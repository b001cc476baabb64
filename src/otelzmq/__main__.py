"""Allow ``python -m otelzmq``."""

from otelzmq.cli import main

raise SystemExit(main())
