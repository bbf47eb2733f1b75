"""The site's small tools: the build log filter, the bibliography labels, asset de-duplication."""

from types import SimpleNamespace

from pybtex.database import parse_string

from coursekit.book.bibstyle import AuthorYearLabels, register
from coursekit.book.build import plain, problems
from coursekit.book.sphinx_site import _unique, edition

LOG = """\x1b[01mRunning Sphinx v7.4.7\x1b[39;49;00m
myst v3.0.1: MdParserConfig(commonmark_only=False, suppress_warnings=[], ...)
\x1b[01mreading sources... \x1b[39;49;00m[ 17%] \x1b[35mbook/01_autodiff\x1b[39;49;00m
/book/08_convolution.ipynb:12: \x1b[91mWARNING: undefined label: 'pooling' [ref.ref]\x1b[39;49;00m
/book/08_convolution.ipynb:12: \x1b[91mWARNING: undefined label: 'pooling' [ref.ref]\x1b[39;49;00m
/book/intro.md:3: ERROR: Unknown directive type "figur".
sphinx.errors.ExtensionError: something failed
\x1b[01mbuild finished with problems, 2 warnings.\x1b[39;49;00m
"""


def test_the_build_log_shows_each_problem_once_without_colour_codes():
    assert "\x1b" not in plain(LOG)
    assert problems(LOG) == [
        "/book/08_convolution.ipynb:12: WARNING: undefined label: 'pooling' [ref.ref]",
        '/book/intro.md:3: ERROR: Unknown directive type "figur".',
        "sphinx.errors.ExtensionError: something failed",
    ]


BIB = r"""
@article{lecun1998, author = {LeCun, Yann and Bottou, L{\'e}on and Bengio, Yoshua and
  Haffner, Patrick}, title = {Gradient-based learning}, journal = {Proc. IEEE}, year = {1998}}
@book{griewank2008, author = {Griewank, Andreas and Walther, Andrea}, title = {Evaluating
  Derivatives}, publisher = {SIAM}, year = {2008}}
@article{godel1931, author = {G{\"o}del, Kurt}, title = {{\"U}ber formal}, journal = {M},
  year = {1931}}
@article{he2016a, author = {He, Kaiming and Zhang, Xiangyu and Ren, Shaoqing and Sun, Jian},
  title = {Deep residual learning}, journal = {CVPR}, year = {2016}}
@article{he2016b, author = {He, Kaiming and Zhang, Xiangyu and Ren, Shaoqing and Sun, Jian},
  title = {Identity mappings}, journal = {ECCV}, year = {2016}}
"""


def test_bibliography_labels_read_like_the_citations():
    entries = list(parse_string(BIB, "bibtex").entries.values())
    assert list(AuthorYearLabels().format_labels(entries)) == [
        "LeCun et al., 1998", "Griewank and Walther, 2008", "Gödel, 1931",
        "He et al., 2016a", "He et al., 2016b"]


def test_the_authoryear_style_sorts_by_author_and_year():
    from pybtex.plugin import find_plugin

    register()
    style = find_plugin("pybtex.style.formatting", "authoryear")()
    data = parse_string(BIB, "bibtex")
    formatted = list(style.format_entries(data.entries.values()))
    assert [e.label for e in formatted] == [
        "Gödel, 1931", "Griewank and Walther, 2008", "He et al., 2016a", "He et al., 2016b",
        "LeCun et al., 1998"]


def test_scripts_added_twice_are_kept_once():
    def js(filename, **attributes):
        return SimpleNamespace(filename=filename, attributes=attributes)

    files = [js("a.js"), js(None, body="const X = 1"), js("b.js", **{"async": "async"}),
             js("", body="const X = 1"), js("a.js"), js("b.js")]
    assert _unique(files) == [files[0], files[1], files[2], files[5]]


def test_edition_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("COURSEKIT_VERSION", raising=False)
    monkeypatch.delenv("COURSEKIT_BASE_URL", raising=False)
    assert edition() == ("main", "/")
    monkeypatch.setenv("COURSEKIT_VERSION", "v1.2")
    monkeypatch.setenv("COURSEKIT_BASE_URL", "/deep-learning-foundations")
    assert edition() == ("v1.2", "/deep-learning-foundations/")
