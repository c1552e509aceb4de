"""Feedback pages written from cached pieces (``grader.pagecache``) are byte for byte the
pages nbconvert writes: on nbgrader's feedback template for every assignment of the course,
with passing and failing tests, and with hostile outputs; and on thousands of random
pages. The fast path is taken where it is safe (so these comparisons test it), and refused
where a page holds what could parse differently in pieces."""
from __future__ import annotations

import os
import random

import nbformat
import pytest
from bs4 import BeautifulSoup

from grader import pagecache
from grader.feedback import cell_outputs
from grader.paths import COURSE

# Outputs a student's code can put on a page: unbalanced, stray, void end tags, script and
# comments that hide markup, entity-encoded classes nbconvert's step selects, images.
HOSTILE = [
    "</div></div></div><p>escaped?",
    "<div><span>never closed",
    "</main></body><b>after the body</b>",
    "<pre>  kept   <b> spaces </pre>",
    "text</br>more",
    "<script>var s = '<div class=\"cell x\">'; </script><div>after</div>",
    "<!-- <div class=\"cell border-box-sizing\"> -->",
    "<!-- never closed",
    "<div class=\"jp-Cell-input&#87;rapper\">focus me</div>",
    "<img src=\"data:image/png;base64,iVBORw0KGgo=\">",
    "<textarea>\n  <div class=\"cell x\">\n</textarea>",
    "<style>div{}</style><template><b>t</b></template>&amp;&lt;&nbsp;&#39;&quot;",
]


def _page(nb, score=3.0):
    from nbconvert.exporters import HTMLExporter
    import nbgrader.converters.generate_feedback as gf

    here = os.path.dirname(gf.__file__)
    exporter = HTMLExporter(
        template_name="feedback",
        extra_template_basedirs=[os.path.join(here, "..", "server_extensions", "formgrader", "templates")],
        extra_template_paths=[os.path.join(here, "..", "server_extensions", "formgrader", "static",
                                           "node_modules", "bootstrap", "dist", "css")])
    resources = {"nbgrader": {"notebook": "nb", "score": score, "max_score": 10.0, "late_penalty": 0}}
    return exporter.from_notebook_node(nb, resources=resources)[0]


def _graded(path, student: int, hostile: str | None = None):
    nb = nbformat.read(path, as_version=4)
    for j, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code":
            continue
        meta.setdefault("points", 0)
        meta["score"] = 0
        if meta.get("grade") and not meta.get("solution"):
            failing = (student + j) % 3 == 0
            cell.outputs = [nbformat.from_dict(o) for o in cell_outputs(
                meta["grade_id"], 0 if failing else meta["points"], meta["points"],
                "The mistake.\nHow to fix: this." if failing else None)]
        elif meta.get("solution"):
            cell.source += f"\n# student {student}"
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"loss {student}.{j}\n")]
            if hostile is not None:
                cell.outputs.append(nbformat.v4.new_output("display_data", data={"text/html": hostile,
                                                                                 "text/plain": "x"}))
    return nb


def _both(markup: str) -> tuple[str, str]:
    return str(BeautifulSoup(markup, "html.parser")), str(pagecache.FeedbackSoup(markup, features="html.parser"))


@pytest.fixture
def nbconvert_unpatched():
    from nbconvert.exporters import html

    before = html.BeautifulSoup
    html.BeautifulSoup = BeautifulSoup
    try:
        yield html
    finally:
        html.BeautifulSoup = before


def test_feedback_pages_of_every_assignment_are_the_same_bytes(nbconvert_unpatched):
    pagecache._cache.clear()
    before = dict(pagecache.stats)
    notebooks = sorted(COURSE.glob("*/*.ipynb"))
    assert len(notebooks) >= 7
    for path in notebooks:
        for student in range(3):
            markup = []
            nbconvert_unpatched.BeautifulSoup = lambda m, **kw: markup.append(m) or BeautifulSoup(m, **kw)
            theirs = _page(_graded(path, student), score=student)
            nbconvert_unpatched.BeautifulSoup = pagecache.FeedbackSoup
            ours = _page(_graded(path, student), score=student)
            nbconvert_unpatched.BeautifulSoup = BeautifulSoup
            assert ours == theirs, path
            assert pagecache.roundtrip(markup[0]) == theirs  # the fast path itself, not a fallback
    done = {k: pagecache.stats[k] - before[k] for k in before}
    assert done["fast"] >= 2 * len(notebooks) * 3  # every page took it (counted twice above)
    assert done["hits"] > done["pieces"] / 2  # and the repeated cells came from the cache


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_outputs_give_the_same_page(hostile, nbconvert_unpatched):
    path = COURSE / "03-dropout" / "dropout.ipynb"
    theirs = _page(_graded(path, 1, hostile))
    nbconvert_unpatched.BeautifulSoup = pagecache.FeedbackSoup
    ours = _page(_graded(path, 1, hostile))
    assert ours == theirs


def test_pages_that_could_parse_differently_in_pieces_are_parsed_whole():
    cell = '<div class="cell border-box-sizing code_cell">{}</div>\n'
    ok = "<html><body><div>" + cell.format("<p>a</p>") * 3 + "</div></body></html>"
    assert pagecache.roundtrip(ok) == str(BeautifulSoup(ok, "html.parser"))
    refused = {
        "a stray end tag": cell.format("</div>"),
        "an unclosed element": cell.format("b").rstrip() + "<span>\n",
        "a void end tag": cell.format("a</br>b"),
        "an image": cell.format('<img src="x.png">'),
        "a class nbconvert selects": cell.format('<div class="jp-OutputArea-output"></div>'),
        "an unclosed comment": cell.format("<!-- x"),
        "text at its end": cell.format("b") + "1 > 0",
        "a comment the next cell closes": cell.format("b").rstrip() + "<!-- x\n",
    }
    for why, bad in refused.items():
        page = "<html><body><div>" + cell.format("<p>a</p>") + bad + cell.format("b") * 2 + "</div></body></html>"
        assert pagecache.roundtrip(page) is None, why
        assert _both(page)[0] == _both(page)[1], why
    for ancestor in ("pre", "textarea", "script", "template"):
        page = f"<html><body><{ancestor}>" + cell.format("<p>a  </p>") * 3 + f"</{ancestor}></body></html>"
        assert pagecache.roundtrip(page) is None, ancestor
        assert _both(page)[0] == _both(page)[1], ancestor
    for opened in ("<!-- ", "<a title='", "<script>"):  # the page before the cells, closed in one
        page = "<html><body><div>" + opened + cell.format("'--> </script>") * 3 + "</div></body></html>"
        assert pagecache.roundtrip(page) is None, opened
        assert _both(page)[0] == _both(page)[1], opened


_TOKENS = ['<div class="cell border-box-sizing">', '<div id="cell-id=x" class="cell code_cell">',
           '<div class="cell">', "<div>", "</div>", "<p>", "</p>", "<span>", "</span>", "<pre>", "</pre>",
           "<br>", "</br>", "<br/>", "<img>", "<textarea>", "</textarea>", "<script>", "</script>",
           "<style>", "</style>", "<!--", "-->", "<!DOCTYPE html>", "<b/>", "</ div>", "<main>", "</main>",
           "<template>", "</template>", '<i class="jp-OutputArea-output">', "</i>", "&amp;", "&nbsp;",
           "&#39;", "&", "<", ">", "\n", " ", "  \n ", "x", "é", "<?pi>", "<![CDATA[x]]>", "</x", "<a href='q\">"]


_TAGS = ["div", "span", "p", "pre", "b", "textarea", "script", "style", "template", "main", "ul", "li", "a"]
_TEXT = ["x", " ", "\n", "  \n", "&amp;", "&nbsp;", "&#39;", "&quot;", "\u00e9", "a<b", "1 > 0", "&", "\t"]


def _markup(rng, depth=0) -> str:
    """Mostly well-formed markup, now and then a hostile token."""
    out = []
    for _ in range(rng.randint(0, 4)):
        r = rng.random()
        if r < 0.35 and depth < 4:
            tag = rng.choice(_TAGS)
            attrs = rng.choice(["", ' class="a  b"', " id='q'", ' data-x="&quot;&amp;"', " hidden", " class=cell"])
            out.append(f"<{tag}{attrs}>" + _markup(rng, depth + 1) + f"</{tag}>")
        elif r < 0.45:
            out.append(rng.choice(["<br>", "<br/>", "<hr>", "<input type=x>", "<b/>", "<!-- c -->", "<?p?>"]))
        elif r < 0.5:
            out.append(rng.choice(_TOKENS))
        else:
            out.append(rng.choice(_TEXT))
    return "".join(out)


def test_random_pages_are_the_same_bytes():
    rng = random.Random(20261205)
    fast = 0
    for _ in range(3000):
        cells = "".join(rng.choice(['<div class="cell border-box-sizing">', '<div id="cell-id=q" class="cell x">'])
                        + rng.choice(["<p>same</p>", _markup(rng)]) + "</div>" + rng.choice(["\n", "", " \n ", "x"])
                        for _ in range(rng.randint(2, 8)))
        page = rng.choice(["", "<html><body><div>", "<pre>", "<main>" + _markup(rng)]) + cells + _markup(rng) \
            + rng.choice(["", "</div></body></html>"])
        theirs, ours = _both(page)
        assert ours == theirs, page
        fast += pagecache.roundtrip(page) is not None
    assert fast > 300  # the pieces were used, not only refused


def test_anything_else_asked_of_the_page_gets_the_real_tree():
    cell = '<div class="cell border-box-sizing code_cell"><p>{}</p></div>\n'
    page = "<html><body><div>" + "".join(cell.format(i) for i in range(3)) + "</div></body></html>"
    soup = pagecache.FeedbackSoup(page, features="html.parser")
    assert soup.select("img:not([alt])") == [] and soup._soup is None  # the fast path
    paragraphs = soup.select("p")  # not a selector nbconvert's step uses: parsed whole
    assert [p.text for p in paragraphs] == ["0", "1", "2"]
    paragraphs[0]["id"] = "changed"
    assert str(soup) == str(BeautifulSoup(page, "html.parser")).replace("<p>0", '<p id="changed">0')
