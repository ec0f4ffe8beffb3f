"""The whole test suite: package in sync with the notebooks, notebooks clean, every notebook's tests pass,
the tests in `tests/` pass (pytest), and the docs build's processing step re-runs nothing.

Run it with the project's virtual environment (`python3 tasks.py test` sets that up and calls this).
Stops at the first failing sync or cleanliness check; ends with `N passed, N failed` alone on a line (N counts
notebooks plus pytest tests), and exits non-zero when anything failed or nothing was tested.
"""
import filecmp, multiprocessing, os, shutil, subprocess, sys, tempfile, time, warnings
import xml.etree.ElementTree as ET
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTEST_TIMEOUT = 20 * 60  # seconds: the whole suite must stay well under CI's time


def fail(message):
    print(f"FAILED: {message}", flush=True)
    print("stopped before the notebook tests")
    print("0 passed, 0 failed")
    sys.exit(1)


def changed_files(before, after):
    "Relative paths that differ between folders `before` and `after` (added, removed or edited)"
    cmp = filecmp.dircmp(before, after, ignore=['__pycache__', '.ipynb_checkpoints'])
    changed = []
    def walk(c, prefix):
        changed.extend(prefix + n for n in c.left_only + c.right_only + c.diff_files)
        for name, sub in c.subdirs.items(): walk(sub, prefix + name + '/')
    walk(cmp, '')
    return sorted(changed)


def scratch_copy(tmp):
    "Copy what nbdev reads and writes into `tmp`, so the checks never touch the working tree"
    for name in ['settings.ini', 'pyproject.toml', 'setup.py']:
        if (ROOT / name).exists(): shutil.copy2(ROOT / name, tmp / name)
    shutil.copytree(ROOT / 'nbs', tmp / 'nbs', ignore=shutil.ignore_patterns('_proc', '_docs', '.ipynb_checkpoints'))
    shutil.copytree(ROOT / 'micrograd', tmp / 'micrograd', ignore=shutil.ignore_patterns('__pycache__'))


def run_nbdev(command, cwd):
    result = subprocess.run([str(Path(sys.executable).parent / command)], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0: fail(f"{command} itself failed:\n{result.stdout}{result.stderr}")


def snapshot(tmp, dest):
    "Copy what `nbdev_export` writes in `tmp` (the package and pyproject.toml) to `dest`"
    shutil.copytree(tmp / 'micrograd', dest / 'micrograd', ignore=shutil.ignore_patterns('__pycache__'))
    if (tmp / 'pyproject.toml').exists(): shutil.copy2(tmp / 'pyproject.toml', dest / 'pyproject.toml')


def check_export_in_sync():
    "`nbdev_export` must change nothing: the package is exactly what the notebooks say"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp); scratch_copy(tmp)
        snapshot(tmp, tmp / 'before')
        run_nbdev('nbdev_export', tmp)
        snapshot(tmp, tmp / 'after')
        changed = changed_files(tmp / 'before', tmp / 'after')
    if changed:
        fail("the package is out of sync with the notebooks; these files differ from what nbdev_export writes:\n  "
             + "\n  ".join(changed) + "\nEdit the notebooks in nbs/ (not micrograd/*.py), then run `nbdev_export` and commit.")
    print("ok      package in sync with the notebooks (nbdev_export changes nothing)", flush=True)


def check_notebooks_clean():
    "`nbdev_clean` must change nothing: no execution counts, no stray metadata"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp); scratch_copy(tmp)
        before = tmp / 'before'; shutil.copytree(tmp / 'nbs', before)
        run_nbdev('nbdev_clean', tmp)
        changed = changed_files(before, tmp / 'nbs')
    if changed:
        fail("these notebooks are not clean:\n  nbs/" + "\n  nbs/".join(changed) + "\nRun `nbdev_clean` and commit.")
    print("ok      notebooks clean (nbdev_clean changes nothing)", flush=True)


def notebooks():
    "The notebooks nbdev_test would test"
    from nbdev.config import get_config
    from nbdev.doclinks import nbglob
    from nbdev.test import _keep_file
    cfg = get_config(path=ROOT)
    files = nbglob(cfg.nbs_path, as_path=True)
    return sorted(f.absolute() for f in files if _keep_file(f, '.notest'))


def _shown_kinds(outputs):
    "What a cell shows the reader: printed text and/or a displayed result (stderr, e.g. warnings, does not count)"
    kinds = set()
    for o in outputs:
        if o.get('output_type') in ('display_data', 'execute_result'): kinds.add('display')
        elif o.get('output_type') == 'stream' and o.get('name') == 'stdout': kinds.add('printed text')
    return kinds


def test_notebook(fn):
    "Run `fn` exactly as nbdev_test does; also list code cells whose shown output (text, pictures) is not saved"
    import nbdev.test
    from execnb.nbio import read_nb
    from execnb.shell import CaptureShell
    from nbdev.config import get_config
    cfg = get_config(path=ROOT)
    shells = []
    class RecordingShell(CaptureShell):
        def run_all(self, nb, *args, **kwargs):
            shells.append(nb)
            return super().run_all(nb, *args, **kwargs)
    nbdev.test.CaptureShell = RecordingShell
    os.chdir(cfg.nbs_path)
    passed, seconds = nbdev.test.test_nb(fn, skip_flags=cfg.tst_flags.split(), basepath=cfg.config_path)
    missing = []
    if passed and shells:
        executed = [c for c in shells[0].cells if c.cell_type == 'code']
        saved = [c for c in read_nb(fn).cells if c.cell_type == 'code']
        for number, (ran, kept) in enumerate(zip(executed, saved), 1):
            lost = _shown_kinds(ran.get('outputs', [])) - _shown_kinds(kept.get('outputs', []))
            if lost:
                missing.append(f"code cell {number} ({', '.join(sorted(lost))} not saved): {kept.source.strip().splitlines()[-1][:60]}")
    return passed, seconds, missing


def run_notebook_tests(workers=2):
    files = notebooks()
    if not files: fail("no notebook was found to test (is nbs/ there?)")
    passed = failed = 0
    # a fresh process per notebook (Python 3.11+), so one notebook's patches cannot leak into another
    isolate = {'max_tasks_per_child': 1} if sys.version_info >= (3, 11) else {}
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context('spawn'), **isolate) as pool:
        for fn, (ok, seconds, missing) in zip(files, pool.map(test_notebook, files)):
            name = fn.relative_to(ROOT)
            if ok and not missing:
                passed += 1; print(f"ok      {name} ({seconds:.1f} s)", flush=True)
                continue
            failed += 1
            if not ok: print(f"FAILED  {name}: a cell raised (traceback above)", flush=True)
            else:
                print(f"FAILED  {name}: cells show output when run but have none saved (stale or missing pictures):", flush=True)
                for m in missing: print(f"          {m}")
                print(f"        run {name} top to bottom (in Jupyter: Restart & Run All) and save it, then `nbdev_clean`, and commit", flush=True)
    return passed, failed


def mixed_import_cells():
    "(notebook, cell number, first line) of every cell nbdev's docs processing would re-run for mixing imports with other code"
    from nbdev.config import get_config
    from nbdev.doclinks import nbglob
    from nbdev.process import NBProcessor
    from nbdev.processors import _do_eval  # nbdev's own rule, so this check and the docs build agree
    found = []
    for fn in sorted(nbglob(get_config(path=ROOT).nbs_path, as_path=True)):
        cells = NBProcessor(fn).nb.cells
        for number, cell in enumerate((c for c in cells if c.cell_type == 'code'), 1):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter('always')
                _do_eval(cell)
            if any('imports and other code' in str(w.message) for w in caught):
                lines = [l for l in cell.source.splitlines() if l.strip()]
                found.append((fn.relative_to(ROOT), number, lines[0][:70] if lines else ''))
    return found


def check_docs_processing():
    """The docs build's first step, nbdev's notebook processing, must succeed, and must re-run no cell: nbdev runs
    every cell that mixes imports with other code again, on its own, and the page then shows other numbers"""
    mixed = mixed_import_cells()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp); scratch_copy(tmp)
        # nbdev's own processing step; the `nbdev_proc_nbs` command would first try to install Quarto (sudo) and then
        # `pip install -e` whatever folder it runs in, repointing this environment at a temporary copy
        process = "from nbdev.serve import proc_nbs; proc_nbs(force=True)"
        result = subprocess.run([sys.executable, '-c', process], cwd=tmp, capture_output=True, text=True)
    if result.returncode != 0:
        errors = [l for l in result.stderr.splitlines() if l.startswith('Exception: Error')] or result.stderr.splitlines()[-5:]
        print("FAILED  docs processing (nbdev_proc_nbs): " + "\n        ".join(errors), flush=True)
        print("        nbdev runs every cell that mixes imports with other code on its own when it builds the docs:\n"
              "        put imports in a cell of their own, or make that cell self-contained", flush=True)
        return False
    if mixed or 'Found cells containing imports and other code' in result.stderr:
        print("FAILED  docs processing: nbdev warns \"Found cells containing imports and other code\" and re-runs these\n"
              "        cells when it builds the docs, so the page would show numbers other than the notebook's:", flush=True)
        for fn, number, first in mixed: print(f"          {fn}, code cell {number}: {first}")
        if not mixed: print("        " + result.stderr.strip()[-1500:])
        print("        put the imports in a cell of their own (then run the notebook again and save it)", flush=True)
        return False
    print("ok      docs processing (nbdev_proc_nbs) succeeds and re-runs no cell", flush=True)
    return True


def run_pytest():
    "Run `pytest tests/`; (passed, failed), counted from its JUnit report; (0, 0) with a note when there is no tests/"
    if not (ROOT / 'tests').is_dir():
        print("note    no tests/ folder: no pytest tests to run", flush=True)
        return 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / 'pytest.xml'
        start = time.time()
        # `python -m pytest` from the root puts this checkout first on sys.path, so the tests import its package
        try:
            result = subprocess.run([sys.executable, '-m', 'pytest', 'tests/', '-q', '-p', 'no:cacheprovider',
                                     f'--junitxml={report}'], cwd=ROOT, timeout=PYTEST_TIMEOUT)
        except subprocess.TimeoutExpired:
            print(f"FAILED  tests/ (pytest): still running after {PYTEST_TIMEOUT} s, stopped (a test hangs?)", flush=True)
            return 0, 1
        counts = dict(tests=0, failures=0, errors=0, skipped=0)
        if report.exists():
            root = ET.parse(report).getroot()
            for suite in ([root] if root.tag == 'testsuite' else root.iter('testsuite')):
                for key in counts: counts[key] += int(suite.get(key, 0))
    failed = counts['failures'] + counts['errors']
    passed = counts['tests'] - failed - counts['skipped']
    if result.returncode == 5:  # pytest collected no test
        print("note    tests/ holds no pytest test", flush=True)
        return 0, 0
    if result.returncode != 0 and failed == 0: failed = 1  # pytest itself failed (usage, internal or collection error)
    skipped = f", {counts['skipped']} skipped" if counts['skipped'] else ''
    status = 'ok     ' if result.returncode == 0 else 'FAILED '
    print(f"{status} tests/ (pytest): {passed} passed, {failed} failed{skipped} ({time.time() - start:.1f} s)", flush=True)
    return passed, failed


def main():
    os.chdir(ROOT)
    start = time.time()
    check_export_in_sync()
    check_notebooks_clean()
    passed, failed = run_notebook_tests()
    os.chdir(ROOT)
    test_passed, test_failed = run_pytest()
    docs_ok = check_docs_processing() if not failed else True
    print(f"checks took {time.time() - start:.0f} s")
    passed, failed = passed + test_passed, failed + test_failed + (not docs_ok)  # a failed docs check counts once
    print(f"{passed} passed, {failed} failed")
    if failed or not passed or not docs_ok: sys.exit(1)


if __name__ == '__main__': main()
