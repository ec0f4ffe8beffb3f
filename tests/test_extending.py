"""Following the extending tutorial to the letter leaves the suite green.

The tutorial's step 5 gives a cell to add to the engine chapter. This test adds that exact cell (read from the
tutorial itself) to a copy of the project, exports it, and runs the chapters that the new op touches with
`nbdev_test`: the engine chapter, the tutorial (which then finds `sin` already in the library), and the
gradient and tensor chapters.
"""
import json, os, re, shutil, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CHAPTERS = ['nbs/00_engine.ipynb', 'nbs/tutorials/05_extending.ipynb', 'nbs/09_gradients.ipynb', 'nbs/11_tensor.ipynb']


def recipe_cell():
    "The code block of the tutorial's step 5, as the reader copies it"
    nb = json.loads((ROOT / 'nbs/tutorials/05_extending.ipynb').read_text())
    step = next(''.join(c['source']) for c in nb['cells'] if '## Step 5' in ''.join(c['source']))
    return re.search(r"```python\n(.*?)```", step, re.S).group(1)


def add_after(nb_path, marker, source):
    "Insert a code cell with `source` after the first cell whose source contains `marker`"
    nb = json.loads(nb_path.read_text())
    at = next(i for i, c in enumerate(nb['cells']) if marker in ''.join(c['source']))
    lines = source.rstrip('\n').split('\n')
    nb['cells'].insert(at + 1, {'cell_type': 'code', 'execution_count': None, 'id': 'recipe01', 'metadata': {},
                                'outputs': [], 'source': [l + '\n' for l in lines[:-1]] + [lines[-1]]})
    nb_path.write_text(json.dumps(nb, indent=1))


@pytest.fixture(scope='module')
def project_with_sin(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('extending')
    for name in ['settings.ini', 'setup.py', 'pyproject.toml', 'README.md', 'tasks.py']:
        if (ROOT / name).exists(): shutil.copy2(ROOT / name, tmp / name)
    shutil.copytree(ROOT / 'nbs', tmp / 'nbs', ignore=shutil.ignore_patterns('_proc', '_docs', '.ipynb_checkpoints'))
    shutil.copytree(ROOT / 'micrograd', tmp / 'micrograd', ignore=shutil.ignore_patterns('__pycache__'))
    add_after(tmp / 'nbs/00_engine.ipynb', "sigmoid = op('sigmoid'", recipe_cell())
    env = dict(os.environ, PYTHONPATH=str(tmp))  # the copy's package, not the checkout's
    subprocess.run([str(BIN / 'nbdev_export')], cwd=tmp, env=env, check=True, capture_output=True)
    return tmp, env


def test_the_recipe_exports_sin_with_its_derivatives(project_with_sin):
    tmp, env = project_with_sin
    assert 'sin = op(' in (tmp / 'micrograd/engine.py').read_text()
    check = ("from micrograd.engine import Value; from micrograd.func import grad; import math; "
             "x = Value(0.5); x.sin().backward(); "
             "assert x.grad == math.cos(0.5); assert abs(grad(grad(lambda v: v.sin()))(0.5) + math.sin(0.5)) < 1e-12")
    subprocess.run([sys.executable, '-c', check], cwd=tmp, env=env, check=True)


@pytest.mark.parametrize('chapter', CHAPTERS)
def test_the_suite_stays_green(project_with_sin, chapter):
    tmp, env = project_with_sin
    result = subprocess.run([str(BIN / 'nbdev_test'), '--path', chapter, '--do_print'], cwd=tmp, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert Path(chapter).name in result.stdout + result.stderr, "nbdev_test ran no notebook"
