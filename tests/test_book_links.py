"""tools/book_links.py: the Colab link and install cell, the glossary links, and `--check`.

The functions are tested on small notebooks made here; the command, `--check` and its exit codes, in a copy of
a tiny project; and the book's own glossary, whose every link must reach a page and a heading that exist.
"""
import json, re, shutil, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'tools'))
import book_links as bl


def settings(nbs, user='micrograd', repo='micrograd'):
    return bl.Settings(user, repo, 'main', f'https://github.com/{user}/{repo}', f'https://{user}.github.io/{repo}',
                       nbs, 'index.ipynb', ['fastcore>=1.5.29,<2', 'numpy'],
                       ['nbdev>=2.4,<3', 'execnb<0.2', 'fastcore<2', 'torch', 'numpy', 'matplotlib', 'scikit-learn'])

def notebook(*cells):
    "A notebook of markdown (str) and code (('code', str)) cells"
    made = [bl.code_cell(f'c{i}', c[1]) if isinstance(c, tuple) else bl.markdown_cell(f'c{i}', c) for i, c in enumerate(cells)]
    return {'cells': made, 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}

def texts(nb): return [bl.source(c) for c in nb['cells']]

NBS = Path('/book/nbs')
PAGE = NBS / 'tutorials' / '02_page.ipynb'
TERMS = {'leaf': NBS / 'tutorials' / '02_page.ipynb', 'chain rule': NBS / '00_engine.ipynb', 'node': NBS / '00_engine.ipynb',
         'gradient': NBS / '00_engine.ipynb', 'gradient descent': NBS / '04_optim.ipynb', 'finite difference': NBS / 'x.ipynb'}


def test_header_after_the_title_and_idempotent():
    nb = notebook('# A page\n\n> what it does', ('code', 'import numpy as np'), 'Some text.')
    once = bl.sync_header(nb, PAGE, settings(NBS))
    assert [c['id'] for c in once['cells']] == ['c0', bl.LINK_ID, bl.INSTALL_ID, 'c1', 'c2']
    assert texts(once)[1] == ('[Open this page in Colab](https://colab.research.google.com/github/micrograd/micrograd/blob/main/'
                              'nbs/tutorials/02_page.ipynb) to run it yourself.')
    install = texts(once)[2]
    assert install.startswith('#| hide\n') and "if 'google.colab' in sys.modules:" in install
    assert install.endswith('%pip install -q git+https://github.com/micrograd/micrograd@main')  # numpy is a requirement already
    assert bl.nb_text(bl.sync_header(once, PAGE, settings(NBS))) == bl.nb_text(once)

def test_install_adds_the_dev_requirements_a_page_imports_but_never_torch():
    nb = notebook('# A page', ('code', 'from nbdev.showdoc import *\nimport torch\nimport sklearn.datasets\nimport matplotlib.pyplot as plt'))
    install = texts(bl.sync_header(nb, PAGE, settings(NBS)))[2]
    assert install.endswith("git+https://github.com/micrograd/micrograd@main 'nbdev>=2.4,<3' 'execnb<0.2' 'matplotlib' 'scikit-learn'")
    only_export = notebook('# A page', ('code', 'x = 1'), ('code', '#| hide\nimport nbdev; nbdev.nbdev_export()'))
    assert 'nbdev' not in texts(bl.sync_header(only_export, PAGE, settings(NBS)))[2]

def test_a_page_without_code_gets_no_colab_link():
    nb = notebook('# Glossary', 'Words.')
    assert bl.sync_header(nb, PAGE, settings(NBS))['cells'] == nb['cells']

def test_the_install_cell_runs_outside_colab_and_does_nothing():
    from execnb.shell import CaptureShell
    install = texts(bl.sync_header(notebook('# A page', ('code', 'x = 1')), PAGE, settings(NBS)))[2]
    shell = CaptureShell()
    shell.run_cell(install)
    assert shell.exc is None

def test_new_settings_move_every_project_url():
    old = bl.sync_header(notebook('# Home', ('code', 'x = 1'), 'See [the engine](https://micrograd.github.io/micrograd/engine.html), '
                                  '`pip install git+https://github.com/micrograd/micrograd.git`, and '
                                  '[micrograd](https://github.com/karpathy/micrograd).'), NBS / 'index.ipynb', settings(NBS))
    new = bl.sync_header(old, NBS / 'index.ipynb', settings(NBS, user='someone'))
    assert texts(new)[4] == ('See [the engine](https://someone.github.io/micrograd/engine.html), '
                             '`pip install git+https://github.com/someone/micrograd.git`, and '
                             '[micrograd](https://github.com/karpathy/micrograd).')
    assert 'github/someone/micrograd/blob/main/nbs/index.ipynb' in texts(new)[1]
    assert 'git+https://github.com/someone/micrograd@main' in texts(new)[2]

def test_url_problems():
    nb = notebook('# A page', 'The [engine](https://micrograd.github.io/micrograd/engine.html), '
                  '[its source](https://github.com/Micrograd/micrograd/blob/main/nbs/00_engine.ipynb), '
                  '[a test](http://github.com/micrograd/micrograd/blob/main/tests/test_graphs.py), '
                  '[the changelog](https://github.com/micrograd/micrograd/blob/main/CHANGELOG.md) and '
                  '[the original](https://github.com/karpathy/micrograd).')
    problems = bl.url_problems(nb, PAGE, settings(NBS))
    assert problems == [
        'an absolute link to a page of the book (make it relative, e.g. ../00_engine.ipynb): https://micrograd.github.io/micrograd/engine.html',
        'a URL of the project that settings.ini does not give: https://github.com/Micrograd/micrograd/blob/main/nbs/00_engine.ipynb',
        'a URL of the project that settings.ini does not give: http://github.com/micrograd/micrograd/blob/main/tests/test_graphs.py']
    assert bl.url_problems(nb, NBS / 'index.ipynb', settings(NBS)) == problems[1:]  # the README keeps absolute links

def test_glossary_links_the_first_use_only_where_a_link_can_go():
    nb = notebook('# A page about the leaf', ('code', '# the chain rule'),
                  '## The chain rule\n\nA `chain rule` and $chain rule$ and [chain rule](x.ipynb), then the chain\nrule and '
                  'the chain rule again.', 'Gradient descent, then a gradient, node by node; and the leaves.',
                  'Two finite-difference slopes.')
    linked = texts(bl.link_terms(nb, PAGE, settings(NBS), TERMS))
    assert linked[0] == '# A page about the leaf'  # the title cell is the page's front matter
    assert linked[2] == ('## The chain rule\n\nA `chain rule` and $chain rule$ and [chain rule](x.ipynb), then the '
                         '[chain\nrule](../glossary.ipynb#chain-rule) and the chain rule again.')
    # the longest term first; the page that explains 'leaf' does not link it; 'node by node' is an idiom
    assert linked[3] == ('[Gradient descent](../glossary.ipynb#gradient-descent), then a '
                         '[gradient](../glossary.ipynb#gradient), node by node; and the leaves.')
    assert linked[4] == 'Two [finite-difference](../glossary.ipynb#finite-difference) slopes.'
    again = bl.link_terms(bl.link_terms(nb, PAGE, settings(NBS), TERMS), PAGE, settings(NBS), TERMS)
    assert texts(again) == linked

def test_glossary_links_not_twice_in_a_row_nor_on_the_readme_or_glossary():
    nb = notebook('# A page', 'By the chain rule node by node, the [loss](y.ipynb) gradient.')
    assert texts(bl.link_terms(nb, PAGE, settings(NBS), TERMS))[1] == (
        'By the [chain rule](../glossary.ipynb#chain-rule) node by node, the [loss](y.ipynb) gradient.')
    assert bl.link_terms(nb, NBS / 'index.ipynb', settings(NBS), TERMS) == nb
    assert bl.link_terms(nb, NBS / 'glossary.ipynb', settings(NBS), TERMS) == nb
    top = notebook('# A chapter', 'The chain rule gives the [loss](y.ipynb) and its gradient.')
    assert texts(bl.link_terms(top, NBS / '00_engine.ipynb', settings(NBS), {**TERMS, 'gradient': PAGE}))[1] == (
        'The chain rule gives the [loss](y.ipynb) and its [gradient](glossary.ipynb#gradient).')  # its own page: no chain rule

def test_no_link_where_the_word_is_not_the_term():
    nb = notebook('# A page', 'A failed save leaves the old file, in a child process with weight decay; then the leaves, '
                  'a child and a weight.')
    assert texts(bl.link_terms(nb, NBS / '00_engine.ipynb', settings(NBS), {'leaf': PAGE, 'child': PAGE, 'weight': PAGE}))[1] == (
        'A failed save leaves the old file, in a child process with weight decay; then the [leaves](glossary.ipynb#leaf), '
        'a [child](glossary.ipynb#child) and a [weight](glossary.ipynb#weight).')

def test_forms_and_anchors():
    assert bl.forms('leaf') == ['leaf', 'leaves'] and bl.forms('loss') == ['loss', 'losses']
    assert bl.forms('learning rate') == ['learning rate', 'learning rates'] and bl.forms('child') == ['child', 'children']
    assert [bl.anchor(h) for h in ('chain rule', 'ReLU', "The lecture's engine", 'A `Value` that stores its op, not a function',
                                   '3. `1 - x`, the lecture\'s way', 'How small should $h$ be?')] == [
        'chain-rule', 'relu', 'the-lectures-engine', 'a-value-that-stores-its-op-not-a-function', 'x-the-lectures-way', 'how-small-should-h-be']


@pytest.fixture
def project(tmp_path):
    "A tiny copy of the project: settings.ini, the tool, a glossary and two pages"
    shutil.copy(ROOT / 'settings.ini', tmp_path)
    (tmp_path / 'tools').mkdir(); shutil.copy(ROOT / 'tools' / 'book_links.py', tmp_path / 'tools')
    nbs = tmp_path / 'nbs'; (nbs / 'tutorials').mkdir(parents=True)
    write = lambda path, nb: path.write_text(bl.nb_text(nb))
    write(nbs / 'glossary.ipynb', notebook('# Glossary', '### leaf\n\nA node with no children ([explained](tutorials/02_page.ipynb)).'))
    write(nbs / 'index.ipynb', notebook('# Home', ('code', 'x = 1')))
    write(nbs / 'tutorials' / '02_page.ipynb', notebook('# Page', ('code', 'x = 1'), 'A leaf.'))
    write(nbs / 'tutorials' / '03_next.ipynb', notebook('# Next', ('code', 'x = 1'), 'Two leaves.'))
    (nbs / '_quarto.yml').write_text('website:\n  navbar:\n    right:\n      - icon: github\n        href: "https://github.com/x/y"\n')
    return tmp_path

def run(project, *args):
    return subprocess.run([sys.executable, 'tools/book_links.py', *args], cwd=project, capture_output=True, text=True)

def test_check_fix_check(project):
    check = run(project, '--check')
    assert check.returncode == 1, check.stdout + check.stderr
    assert 'nbs/tutorials/03_next.ipynb: its Colab link or install cell is missing or out of date; ' \
           'glossary terms not linked at their first use: leaf' in check.stdout
    assert 'nbs/_quarto.yml: the navbar\'s GitHub link is not https://github.com/micrograd/micrograd' in check.stdout
    assert 'glossary.ipynb' not in check.stdout  # nothing to run, no terms to link: in sync
    fixed = run(project)
    assert fixed.returncode == 0 and fixed.stdout.count('updated') == 4, fixed.stdout + fixed.stderr
    assert 'Two [leaves](../glossary.ipynb#leaf).' in (project / 'nbs/tutorials/03_next.ipynb').read_text()
    assert 'A leaf.' in (project / 'nbs/tutorials/02_page.ipynb').read_text()  # the page that explains it
    assert run(project).stdout == ''  # twice changes nothing
    check = run(project, '--check')
    assert check.returncode == 0 and check.stdout.startswith('ok      4 notebooks'), check.stdout

def test_check_names_a_hard_coded_url_and_stale_settings(project):
    run(project)
    page = project / 'nbs/tutorials/02_page.ipynb'
    nb = json.loads(page.read_text())
    nb['cells'].append(bl.markdown_cell('x', 'The [engine](https://micrograd.github.io/micrograd/engine.html).'))
    page.write_text(bl.nb_text(nb))
    check = run(project, '--check', 'nbs/tutorials/02_page.ipynb')
    assert check.returncode == 1 and 'nbs/tutorials/02_page.ipynb: an absolute link to a page of the book' in check.stdout
    ini = project / 'settings.ini'
    ini.write_text(ini.read_text().replace('user = micrograd', 'user = someone'))
    check = run(project, '--check', 'nbs/index.ipynb')
    assert check.returncode == 1 and 'nbs/index.ipynb: its Colab link or install cell is missing or out of date' in check.stdout
    run(project)
    assert 'https://someone.github.io/micrograd/engine.html' in page.read_text()

def test_bad_arguments(project):
    missing = run(project, 'nbs/nothing.ipynb')
    assert missing.returncode == 1 and 'book_links.py: no notebook at' in missing.stderr
    (project / 'elsewhere.ipynb').write_text(bl.nb_text(notebook('# x')))
    outside = run(project, 'elsewhere.ipynb')
    assert outside.returncode == 1 and 'is not under' in outside.stderr


def test_every_glossary_entry_links_to_a_page_and_heading_that_exist():
    glossary = ROOT / 'nbs' / 'glossary.ipynb'
    text = '\n'.join(bl.source(c) for c in bl.read_nb(glossary)['cells'])
    links = re.findall(r'\](?!\(https?:)\(([^)\s]+\.ipynb)(?:#([\w.-]+))?\)', text)
    assert len(links) >= 40
    for page, section in links:
        target = glossary.parent / page
        assert target.exists(), f"the glossary links to {page}, which does not exist"
        if section:
            headings = [l.lstrip('#').strip() for c in bl.read_nb(target)['cells'] if c['cell_type'] == 'markdown'
                        for l in bl.source(c).splitlines() if re.match(r'#{1,6} ', l)]
            assert section in map(bl.anchor, headings), f"the glossary links to {page}#{section}, a heading it does not have"
    terms = bl.glossary_terms(glossary)
    assert len(terms) >= 30 and all(home is not None and home.exists() for home in terms.values())
