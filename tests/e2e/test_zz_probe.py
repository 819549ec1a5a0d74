import pytest
from tests.e2e.conftest import CHROMIUM

def test_probe(studio):
    page = studio.page
    studio.accordion("Advanced")
    out = page.evaluate("""() => {
      const el = document.querySelector('#design-actions');
      const res = [];
      let e = el;
      while (e) { const cs = getComputedStyle(e); res.push([e.tagName, e.id, e.className.toString().slice(0,60), cs.position, cs.overflow, cs.overflowY, cs.display, e.getBoundingClientRect().height]); e = e.parentElement; }
      return res;
    }""")
    for row in out: print(row)
