"""Shared helpers of the fuzz suite: the worktree's package first on the path, and the counts each suite reports.

Each suite adds what it ran and what it found to `fuzz_counts`; the end of the pytest run prints one line
per suite, e.g. `random graphs: 2,500 graphs, 41,893 nodes compared, 0 silent wrong results`.
"""
import os, sys
from collections import defaultdict
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # test this checkout's package, not whichever one the environment installed

_COUNTS = defaultdict(lambda: defaultdict(int))  # suite -> what -> how many


@pytest.fixture(scope='session')
def fuzz_counts():
    "The counts of the whole run: `fuzz_counts[suite][what] += n`"
    return _COUNTS


def pytest_terminal_summary(terminalreporter):
    if not _COUNTS: return
    terminalreporter.write_sep('-', 'fuzz counts')
    for suite, counts in _COUNTS.items():
        terminalreporter.write_line(f"{suite}: " + ', '.join(f"{n:,} {what}" for what, n in counts.items()))


@pytest.fixture(scope='session')
def child_env():
    "The environment for a child Python: this checkout's package first, no stray settings"
    env = dict(os.environ)
    env['PYTHONPATH'] = str(ROOT) + os.pathsep + env.get('PYTHONPATH', '')
    env.pop('PYTHONSTARTUP', None)
    env['MPLBACKEND'] = 'Agg'
    return env
