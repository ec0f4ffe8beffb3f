"""Keeps the links of the book in sync with settings.ini: an "Open in Colab" link and a Colab install cell at the
top of every page, and a link to the glossary at the first use of each glossary term.

  python tools/book_links.py [NOTEBOOK ...]           write or update them (default: every notebook of the book)
  python tools/book_links.py --check [NOTEBOOK ...]   change nothing; exit 1 naming every notebook that the first
                                                      form would change, or that has a hard-coded URL of the project

The GitHub user and repository are set in one place, settings.ini (`user`, `repo`, `branch`, and `git_url`,
`doc_host`, `doc_baseurl` built from them), read with nbdev's own `get_config`. A notebook running in Colab
cannot read that file, so this tool writes what it derives from it into the notebooks:

- after the title cell of every notebook with code, a markdown cell with a link that opens the notebook in Colab, made as nbdev's
  `colab_link` makes it (`colab.research.google.com/github/{user}/{repo}/blob/{branch}/{nbs}/{path}`), and a hidden
  code cell that, only when it runs in Colab, installs the package with `pip install git+{git_url}@{branch}`
  (and the dev requirements the notebook imports, such as nbdev, which Colab lacks);
- where settings.ini has changed since, the project's URLs written from the old settings, everywhere in the
  notebook (the old ones are read from the notebook's own Colab link and install cell);
- on every page but the glossary and the home page (which becomes the README), the first use of each term that
  the glossary (nbs/glossary.ipynb, one `### term` heading per entry) defines, as a relative link to its entry;
  not on the page that explains the term (the one the entry links to first), nor in headings, code, math or links;
- with no notebook named, the GitHub icon of the site's navbar in nbs/_quarto.yml.

Running it twice changes nothing. `--check` also names every URL of the project that settings.ini does not
give (another spelling, `http`, a stale user), and on pages other than the home page every absolute link to a
page of the book, which should be relative (`../00_engine.ipynb`) so that it works on every copy of the site.
"""
import json, re, sys
from pathlib import Path
from fastcore.script import call_parse, Param, store_true

ROOT = Path(__file__).resolve().parent.parent
LINK_ID, INSTALL_ID = 'colab-link', 'colab-install'
LINK_TEXT = 'Open this page in Colab'  # a text link: a badge image would be fetched from Google on every docs build
COLAB = 'https://colab.research.google.com/github'
GLOSSARY = 'glossary.ipynb'
IMPORT_NAMES = {'scikit-learn': 'sklearn'}  # dev requirements whose module has another name
NOT_IN_COLAB = {'torch'}  # Colab has its own build: never reinstall it
IRREGULAR = {'leaf': 'leaves', 'child': 'children'}
NOT_TERMS = ['child process', 'weight decay']  # a glossary word inside another phrase: not the term
# a word right before one of these is a verb ('a failed save leaves the old file'), not the noun of the glossary
_DETERMINERS = r'the|a|an|its|it|them|this|that|these|those|every|each|no|our|your|their'


# ---- settings ----

class Settings:
    "The project's URLs, from settings.ini"
    def __init__(self, user, repo, branch, git_url, docs, nbs, readme, requirements=(), dev_requirements=()):
        self.user, self.repo, self.branch, self.nbs, self.readme = user, repo, branch, nbs, readme
        self.git_url, self.docs = git_url.rstrip('/'), docs.rstrip('/')
        self.requirements, self.dev_requirements = list(requirements), list(dev_requirements)

    @classmethod
    def read(cls, root=ROOT):
        from nbdev.config import get_config
        cfg = get_config(path=root)
        return cls(cfg.user, cfg.repo, cfg.branch, cfg.git_url, f"{cfg.doc_host}{cfg.doc_baseurl}",
                   cfg.nbs_path, cfg.readme_nb, *((cfg.get(k) or '').split() for k in ('requirements', 'dev_requirements')))

    @property
    def colab(self): return f"{COLAB}/{self.user}/{self.repo}"
    @property
    def raw(self): return f"https://raw.githubusercontent.com/{self.user}/{self.repo}"
    def prefixes(self): return [self.git_url, self.colab, self.raw, self.docs]

    def colab_url(self, notebook):
        return f"{self.colab}/blob/{self.branch}/{self.nbs.name}/{notebook.relative_to(self.nbs).as_posix()}"


def _requirement_name(requirement): return re.split(r'[<>=!~;\[ ]', requirement, 1)[0].strip().lower()


# ---- notebooks as json, written the way nbdev writes them ----

def read_nb(path): return json.loads(Path(path).read_text(encoding='utf-8'))

def nb_text(nb): return json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n"

def source(cell): return ''.join(cell['source'])

def set_source(cell, text): cell['source'] = text.splitlines(keepends=True)

def markdown_cell(id, text): return {'cell_type': 'markdown', 'id': id, 'metadata': {}, 'source': text.splitlines(keepends=True)}

def code_cell(id, text):
    return {'cell_type': 'code', 'execution_count': None, 'id': id, 'metadata': {}, 'outputs': [],
            'source': text.splitlines(keepends=True)}


# ---- the Colab link and install cell ----

def _is_link_cell(cell): return cell.get('id') == LINK_ID or (cell['cell_type'] == 'markdown' and source(cell).startswith(f'[{LINK_TEXT}]('))
def _is_install_cell(cell): return cell.get('id') == INSTALL_ID or (cell['cell_type'] == 'code' and "'google.colab' in sys.modules" in source(cell))
def _is_managed(cell): return _is_link_cell(cell) or _is_install_cell(cell)

def _imported_modules(nb):
    "Top-level names of the modules the notebook imports (the `nbdev_export()` cell aside)"
    found = set()
    for cell in nb['cells']:
        text = source(cell)
        if cell['cell_type'] != 'code' or _is_managed(cell) or 'nbdev_export' + '()' in text: continue
        for m in re.finditer(r'^\s*(?:from|import)\s+([A-Za-z_]\w*)', text, re.M): found.add(m.group(1))
    return found

def install_spec(nb, settings):
    "What the install cell gives pip: the package from GitHub, and the dev requirements the notebook imports"
    imported, installed = _imported_modules(nb), {_requirement_name(r) for r in settings.requirements} | NOT_IN_COLAB
    wanted = {name for r in settings.dev_requirements if (name := _requirement_name(r)) not in installed
              and IMPORT_NAMES.get(name, name) in imported}
    if 'nbdev' in wanted: wanted.add('execnb')  # nbdev needs the execnb it was released with
    extra = [r for r in settings.dev_requirements if _requirement_name(r) in wanted]
    return ' '.join([f"git+{settings.git_url}@{settings.branch}"] + [f"'{r}'" for r in extra])

def link_text(notebook, settings):
    return f"[{LINK_TEXT}]({settings.colab_url(notebook)}) to run it yourself."

def install_text(nb, settings):
    return ("#| hide\n"
            f"# In Colab, install {settings.repo} first, so that this page runs; elsewhere this cell does nothing.\n"
            "# (tools/book_links.py writes this cell and the Colab link above from settings.ini)\n"
            "import sys\n"
            "if 'google.colab' in sys.modules:\n"
            f"    %pip install -q {install_spec(nb, settings)}")

def _old_prefixes(nb):
    "The project URLs the notebook's header was written from: (user, repo, git_url), or None"
    user = repo = git_url = None
    for cell in nb['cells']:
        if _is_link_cell(cell) and (m := re.search(re.escape(COLAB) + r'/([^/\s)]+)/([^/\s)]+)/', source(cell))): user, repo = m.groups()
        if _is_install_cell(cell) and (m := re.search(r'git\+(\S+?)@', source(cell))): git_url = m.group(1)
    return (user, repo, git_url) if user else None

def _moved_urls(nb, settings):
    "old URL prefix -> new one, for every project URL that changed since the notebook's header was written"
    old = _old_prefixes(nb)
    if old is None: return {}
    user, repo, git_url = old
    pairs = {f"{COLAB}/{user}/{repo}": settings.colab, f"https://raw.githubusercontent.com/{user}/{repo}": settings.raw,
             f"https://github.com/{user}/{repo}": settings.git_url, f"https://{user}.github.io/{repo}": settings.docs}
    if git_url: pairs[git_url.rstrip('/')] = settings.git_url
    return {o: n for o, n in pairs.items() if o != n}

def _replace_prefixes(text, moved):
    for old, new in sorted(moved.items(), key=lambda p: -len(p[0])):
        text = re.sub(re.escape(old) + r'(?=[/#?.)\s"\'@]|$)', lambda m: new, text)
    return text

def sync_header(nb, notebook, settings):
    "The notebook with its Colab link and install cell right after the title cell, as settings.ini gives them (if it has code)"
    moved = _moved_urls(nb, settings)
    cells = [c for c in nb['cells'] if not _is_managed(c)]
    if moved:
        for cell in cells:
            text = source(cell)
            new = _replace_prefixes(text, moved)
            if new != text: set_source(cell, new)
    nb = {**nb, 'cells': cells}
    if not any(c['cell_type'] == 'code' for c in cells): return nb  # nothing to run, nothing to open in Colab
    at = 1 if cells and cells[0]['cell_type'] == 'markdown' and source(cells[0]).startswith('# ') else 0
    header = [markdown_cell(LINK_ID, link_text(notebook, settings)), code_cell(INSTALL_ID, install_text(nb, settings))]
    nb['cells'] = cells[:at] + header + cells[at:]
    return nb


# ---- the glossary ----

def anchor(heading):
    "The id pandoc (and so Quarto) gives a heading; Jupyter gives the same to a lowercase one, such as `### leaf`"
    text = re.sub(r'[^\w\s.-]', '', heading.strip().lower())
    return re.sub(r'\s+', '-', re.sub(r'^[^a-z]+', '', text))

def plural(word):
    if word in IRREGULAR: return IRREGULAR[word]
    if re.search(r'(s|x|ch|sh)$', word): return word + 'es'
    return word + 's'

def forms(term):
    "The term and its plural (of its last word), as the text may use them"
    words = term.split()
    return [term, ' '.join(words[:-1] + [plural(words[-1])])]

def glossary_terms(glossary):
    "term -> the page that explains it (the entry's first link, as a path under nbs/), from the glossary notebook"
    terms, nb = {}, read_nb(glossary)
    for cell in nb['cells']:
        if cell['cell_type'] != 'markdown': continue
        for m in re.finditer(r'^### ([^\n]+)\n(.*?)(?=^#{1,3} |\Z)', source(cell) + '\n', re.M | re.S):
            term, body = m.group(1).strip(), m.group(2)
            link = re.search(r'\]\(([^)#\s]+\.ipynb)', body)
            home = (glossary.parent / link.group(1)).resolve() if link else None
            terms[term] = home
    return terms

# spans of markdown where no link may go: code, math, links, images, html, urls, headings
_protected = re.compile(r'```.*?```|`[^`]*`|\$\$.*?\$\$|\$[^$\n]+\$|!?\[[^\]]*\]\([^)]*\)|<[^>]*>|https?://\S+|^#[^\n]*$',
                        re.S | re.M)

def _term_pattern(terms):
    alternatives = sorted(((f, t) for t in terms for f in forms(t)), key=lambda p: -len(p[0]))
    regex = '|'.join(r'[\s-]+'.join(map(re.escape, f.split())) for f, _ in alternatives)
    return re.compile(rf'(?<![\w-])({regex})(?![\w-])', re.I), {_normal(f): t for f, t in alternatives}

def _normal(text): return re.sub(r'[\s-]+', ' ', text.lower())

def _after_link(before, linked_up_to):
    "True if only spaces separate a match from the link before it: two links in a row read as one"
    return bool(re.search(r'\]\([^)]*\)\s*$', before)) or (linked_up_to > 0 and not before[linked_up_to:].strip())

def _idiom(text, m):
    "True where the word is not the glossary's term: 'node by node', 'leaves the file', 'child process'"
    word, after, before = re.escape(m.group(1)), text[m.end():], text[:m.start()]
    if re.match(rf'\s+by\s+{word}\b', after, re.I) or re.search(rf'\b{word}\s+by\s+$', before, re.I): return True
    if re.match(rf'\s+({_DETERMINERS})\b', after, re.I): return True
    return any(re.match(r'\s+'.join(map(re.escape, phrase.split())), text[m.start():], re.I) for phrase in NOT_TERMS)

def link_terms(nb, notebook, settings, terms):
    "The notebook with the first use of each glossary term linked to its entry (on pages that should have them)"
    glossary = settings.nbs / GLOSSARY
    if notebook.resolve() in (glossary.resolve(), (settings.nbs / settings.readme).resolve()) or not terms: return nb
    target = Path(*(['..'] * (len(notebook.relative_to(settings.nbs).parts) - 1)), GLOSSARY).as_posix()
    everything = '\n'.join(source(c) for c in nb['cells'])
    todo = {t for t, home in terms.items()
            if home != notebook.resolve() and f"{GLOSSARY}#{anchor(t)})" not in everything}
    if not todo: return nb
    pattern, term_of = _term_pattern(terms)
    cells = [dict(c) for c in nb['cells']]
    for i, cell in enumerate(cells):
        if cell['cell_type'] != 'markdown' or i == 0 or _is_managed(cell): continue
        text = source(cell)
        blocked = [m.span() for m in _protected.finditer(text)]
        pieces, end = [], 0
        for m in pattern.finditer(text):
            term = term_of[_normal(m.group(1))]
            if term not in todo or any(a <= m.start() < b or a < m.end() <= b for a, b in blocked): continue
            if _after_link(text[:m.start()], linked_up_to=end) or _idiom(text, m): continue
            todo.discard(term)
            pieces += [text[end:m.start()], f"[{m.group(1)}]({target}#{anchor(term)})"]
            end = m.end()
        if pieces: set_source(cell, ''.join(pieces) + text[end:])
    return {**nb, 'cells': cells}


# ---- hard-coded URLs ----

_url = re.compile(r'https?://[^\s)"\'<>\]`]+')

def url_problems(nb, notebook, settings):
    "What is wrong with the project's URLs written in the notebook (its Colab link and install cell aside)"
    project = re.compile(rf'^https?://(www\.)?(github\.com|raw\.githubusercontent\.com|colab\.research\.google\.com/github)/'
                         rf'{re.escape(settings.user)}/{re.escape(settings.repo)}(?=[/#?.]|$)'
                         rf'|^{re.escape(re.sub(r"^https?://", "", settings.docs))}(?=[/#?]|$)', re.I)
    is_readme = notebook.resolve() == (settings.nbs / settings.readme).resolve()
    problems = []
    for cell in nb['cells']:
        if _is_managed(cell): continue
        for url in _url.findall(source(cell)):
            url = url.rstrip('.,;:')
            if not (project.search(url) or project.search(re.sub(r'^https?://', '', url))): continue
            if not any(url == p or re.match(re.escape(p) + r'[/#?.@]', url) for p in settings.prefixes()):
                problems.append(f"a URL of the project that settings.ini does not give: {url}")
            elif not is_readme and _is_page(url, settings):
                problems.append(f"an absolute link to a page of the book (make it relative, e.g. ../00_engine.ipynb): {url}")
    return problems

def _is_page(url, settings):
    "True if `url` is a page of the book: on the docs site, or one of its notebooks on GitHub or Colab"
    if url == settings.docs or url.startswith(settings.docs + '/'): return True
    return bool(re.search(rf'/blob/[^/]+/{re.escape(settings.nbs.name)}/\S*\.ipynb', url))


# ---- the site's navbar ----

_navbar_href = re.compile(r'(- icon: github\s*\n\s*href: )"?([^"\n]*)"?')

def sync_quarto(text, settings): return _navbar_href.sub(lambda m: f'{m.group(1)}"{settings.git_url}"', text)


# ---- the command ----

def sync(nb, notebook, settings, terms):
    "The notebook as this tool writes it"
    return link_terms(sync_header(nb, notebook, settings), notebook, settings, terms)

def _changes(old, new):
    "What the tool would change in a notebook, in words"
    said = []
    head = lambda nb: [source(c) for c in nb['cells'] if _is_managed(c)] + [c.get('id') for c in nb['cells'][:3]]
    if head(old) != head(new): said.append("its Colab link or install cell is missing or out of date")
    linked = lambda nb: set(re.findall(re.escape(GLOSSARY) + r'#([\w-]+)\)', '\n'.join(source(c) for c in nb['cells'])))
    if terms := sorted(linked(new) - linked(old)): said.append("glossary terms not linked at their first use: " + ', '.join(terms))
    if not said: said.append("its project URLs were written from older settings")
    return said

def book_notebooks(settings):
    from nbdev.doclinks import nbglob
    return sorted(Path(f).resolve() for f in nbglob(settings.nbs, as_path=True))

@call_parse
def main(notebooks:Param("notebooks to update (default: every notebook of the book)", nargs='*'),
         check:Param("change nothing; exit 1 naming every notebook out of sync or with a hard-coded project URL", store_true)=False):
    "Write the Colab link, the Colab install cell and the glossary links of the book's notebooks, from settings.ini"
    settings = Settings.read()
    paths = [Path(p).resolve() for p in notebooks] if notebooks else book_notebooks(settings)
    for p in paths:
        if not p.is_file() or p.suffix != '.ipynb': sys.exit(f"book_links.py: no notebook at {p}")
        if settings.nbs.resolve() not in p.parents: sys.exit(f"book_links.py: {p} is not under {settings.nbs}")
    glossary = settings.nbs / GLOSSARY
    terms = glossary_terms(glossary) if glossary.exists() else {}
    wrong = []
    for path in paths:
        nb = read_nb(path)
        new = sync(nb, path, settings, terms)
        name = path.relative_to(ROOT)
        if check:
            said = (_changes(nb, new) if nb_text(new) != nb_text(nb) else []) + url_problems(new, path, settings)
            if said: wrong.append(f"{name}: " + "; ".join(said))
        elif nb_text(new) != path.read_text(encoding='utf-8'):
            path.write_text(nb_text(new), encoding='utf-8')
            print(f"updated {name}")
    quarto = settings.nbs / '_quarto.yml'
    if not notebooks and quarto.exists():
        text = quarto.read_text()
        if sync_quarto(text, settings) != text:
            if check: wrong.append(f"{quarto.relative_to(ROOT)}: the navbar's GitHub link is not {settings.git_url}")
            else: quarto.write_text(sync_quarto(text, settings)); print(f"updated {quarto.relative_to(ROOT)}")
    if wrong:
        print("out of sync with settings.ini and the glossary: `python tools/book_links.py` writes the Colab cells and the "
              "glossary links; a URL it names must be fixed by hand")
        for w in wrong: print(f"  {w}")
        sys.exit(1)
    if check: print(f"ok      {len(paths)} notebooks in sync with settings.ini and the glossary")
