"""`python -m loadtest.simulators apns|fcm [options]`, the same as `pushfan simulate`."""

import sys

from loadtest.simulators.cli import main

sys.exit(main(sys.argv[1:]))
