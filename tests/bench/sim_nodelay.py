#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tests/sim/sim.py with TCP_NODELAY on its connections, for latency runs.

The simulator writes a response's headers and body in two send()s; on a
kept-alive connection Nagle holds the body until the client ACKs the headers,
and the client delays that ACK by up to 40 ms. Every call then costs ~44 ms
instead of ~4 ms, which would swamp what the detection-latency benchmark
measures. Same simulator, same signature checks, same arguments.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
import sim  # noqa: E402

sim.Handler.disable_nagle_algorithm = True

if __name__ == "__main__":
    sys.exit(sim.main())
