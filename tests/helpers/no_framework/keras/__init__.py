"""Found first on the path of a unit or process test's child processes: importing keras there is an error.

See ``tests/helpers/tiering.py``: a test whose children train belongs in the ``tf`` tier, and
its rule missed it (name the program the child runs in the test's strings)."""

import os

raise ImportError(
    f"keras imported in a child of a {os.environ.get('CANDLE_RESTART_TEST_TIER', 'unit or process')}-tier test; "
    "the tier rule (tests/helpers/tiering.py) should have put the test in the tf tier"
)
