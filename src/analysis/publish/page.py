"""The published page: one lean HTML shell for the regional, municipal and index pages.

:func:`document` wraps a page's body (the sections the report functions return) into a
complete, self-contained HTML5 document: the project's own small stylesheet (no
JupyterLab CSS, no web fonts, no external request of any kind), a header with the
document's metadata (region, issuing body, date, edition, code version), a table of
contents built from the body's ``<h2>``/``<h3>`` headings, numbered figures and tables,
and a small inline script that filters long tables by municipality. The page reads in full
without the script: the filter only hides rows.

Conventions the section functions follow (and :func:`finish` completes):

- a heading ``<h2 id="...">`` (see :func:`analysis.publish.html.heading`); a heading
  without an id gets a sequential one;
- a figure is ``<figure class="fig">`` with ``<figcaption><span class="fig-no"></span>
  caption</figcaption>`` (:func:`analysis.publish.figures.figure_html`);
- a table is ``<table class="sc-table">``, inside ``<div class="tbl">`` (which scrolls
  sideways on a phone instead of the page: :func:`analysis.publish.html.table_wrap`); its
  ``<caption>`` holds ``<span class="tab-no"></span>``; a table without a caption is
  captioned with the heading it stands under;
- a row of a table with a municipality carries ``data-mun="<name>"``.

Numbers are typeset last (:func:`analysis.publish.typeset.typeset_html`).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence

from analysis.i18n import t
from analysis.publish.typeset import typeset_html

CSS = """
:root{--ink:#1a1a1a;--muted:#5a5a5a;--rule:#d0d0d0;--head:#f3f3f1;--accent:#0072b2}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;color:var(--ink);background:#fff;font:16px/1.5 -apple-system,"Segoe UI",Roboto,"PT Sans",Arial,sans-serif}
header.doc,main,footer.doc,nav.toc{max-width:68rem;margin:0 auto;padding:0 1rem}
header.doc{padding-top:1.5rem;border-bottom:1px solid var(--rule)}
header.doc .issuer{color:var(--muted);margin:0}
h1{font-size:1.7rem;line-height:1.25;margin:.3rem 0 .6rem}
h2{font-size:1.35rem;margin:2.2rem 0 .6rem;padding-top:.6rem;border-top:2px solid var(--ink)}
h3{font-size:1.1rem;margin:1.6rem 0 .4rem}
h4{font-size:1rem;margin:1.2rem 0 .3rem}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.1rem 1rem;margin:.6rem 0 1rem;font-size:.9rem}
dl.meta dt{color:var(--muted)}dl.meta dd{margin:0;min-width:0;overflow-wrap:anywhere}
@media (max-width:600px){dl.meta{grid-template-columns:1fr;gap:0}dl.meta dd{margin-bottom:.35rem}}
main{overflow-wrap:break-word}
nav.toc{font-size:.95rem}nav.toc ol{list-style:none;padding-left:0;margin:.3rem 0}nav.toc ol ol{padding-left:1.4rem;font-size:.92em}
a{color:var(--accent)}
p,li{max-width:48rem}
.sc-note{color:var(--muted);font-size:.9rem}
.key{background:#f7f7f4;border-left:4px solid var(--accent);padding:.6rem 1rem;margin:1rem 0}
.key li{margin:.25rem 0}
div.tbl{overflow-x:auto;max-width:100%;margin:.5rem 0 1.2rem;-webkit-overflow-scrolling:touch}
table.sc-table{border-collapse:collapse;font-size:.88rem;min-width:50%}
table.sc-table caption{caption-side:top;text-align:left;font-size:.9rem;color:var(--muted);padding:.2rem 0}
table.sc-table th,table.sc-table td{border-bottom:1px solid var(--rule);padding:.3rem .55rem;text-align:left;vertical-align:top}
table.sc-table th{background:var(--head);font-weight:600;border-bottom:1px solid #999}
table.sc-table td.num,table.sc-table th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
figure{margin:1rem 0 1.5rem}figure img{max-width:100%;height:auto}
figcaption{font-size:.9rem;color:var(--muted);max-width:48rem}
.fig-no,.tab-no{font-weight:600;color:var(--ink)}
details{margin:.4rem 0 1rem}details>summary{cursor:pointer;color:var(--accent)}
.card{border:1px solid var(--rule);border-radius:4px;padding:.5rem .9rem;margin:.6rem 0}
.card h4{margin-top:.2rem}
.sc-flag{font-weight:600}
dl.glossary dt{font-weight:600;margin-top:.5rem}dl.glossary dd{margin-left:1rem}
#mun-filter{margin:.5rem 0;font-size:1rem;max-width:100%}
footer.doc{margin-top:3rem;padding:1rem;border-top:1px solid var(--rule);color:var(--muted);font-size:.85rem}
@media print{nav.toc,#mun-filter-box{display:none}details{display:block}h2{break-before:page}}
""".strip()

#: Filters rows and blocks with ``data-mun`` by the municipality chosen in a select the
#: script itself adds (no script, no control: the page shows everything).
SCRIPT = """
(function(){var rows=document.querySelectorAll('[data-mun]');if(!rows.length)return;
var names={};rows.forEach(function(r){names[r.getAttribute('data-mun')]=1;});
var box=document.getElementById('mun-filter-box');if(!box)return;
var s=document.createElement('select');s.id='mun-filter';
var all=document.createElement('option');all.value='';all.textContent=box.getAttribute('data-all');s.appendChild(all);
Object.keys(names).sort(function(a,b){return a.localeCompare(b);}).forEach(function(n){
var o=document.createElement('option');o.value=n;o.textContent=n;s.appendChild(o);});
var l=document.createElement('label');l.textContent=box.getAttribute('data-label')+' ';l.appendChild(s);box.appendChild(l);
s.addEventListener('change',function(){var v=s.value;rows.forEach(function(r){
r.style.display=(!v||r.getAttribute('data-mun')===v)?'':'none';});});})();
""".strip()

_HEADING = re.compile(r"<h([23])(\s[^>]*)?>(.*?)</h\1>", re.S)


def _text(fragment: str) -> str:
    """The plain text of an HTML fragment (tags dropped, entities kept escaped)."""
    return re.sub(r"<[^>]+>", "", fragment).strip()


def _number_headings(body: str) -> tuple[str, list[tuple[int, str, str]]]:
    """Number every ``<h2>``/``<h3>`` (1., 1.1., ...; not those of class ``nonum``) and give it
    an id; return the body and ``(level, id, text)`` rows for the table of contents."""
    toc: list[tuple[int, str, str]] = []
    used: set[str] = set()
    counter = [0, 0]

    def repl(m: re.Match) -> str:
        level, attrs, inner = int(m.group(1)), m.group(2) or "", m.group(3)
        found = re.search(r'\bid="([^"]+)"', attrs)
        ident = found.group(1) if found else f"s{len(toc) + 1}"
        while ident in used:
            ident += "-2"
        used.add(ident)
        if found:
            attrs = attrs.replace(found.group(0), f'id="{ident}"')
        else:
            attrs = f' id="{ident}"{attrs}'
        if 'class="nonum"' not in attrs:  # sections numbered in order: 1., 1.1., 2., ...
            counter[0], counter[1] = ((counter[0] + 1, 0) if level == 2
                                      else (counter[0], counter[1] + 1))
            num = f"{counter[0]}." if level == 2 else f"{counter[0]}.{counter[1]}."
            inner = f'<span class="sec-no" translate="no">{num}</span> {inner}'
        toc.append((level, ident, re.sub(r"<(?!/?span)[^>]+>", "", inner).strip()))
        return f"<h{level}{attrs}>{inner}</h{level}>"

    return _HEADING.sub(repl, body), toc


def _number_captions(body: str, lang: str) -> str:
    """Number figures and tables in order of appearance; caption uncaptioned tables."""
    counters = {"fig": 0, "tab": 0}
    last_heading = [""]
    out: list[str] = []
    pos = 0
    token = re.compile(r'<h[234][^>]*>(.*?)</h[234]>|<span class="(fig|tab)-no"></span>'
                       r'|<table class="sc-table">(?!\s*<caption)', re.S)
    for m in token.finditer(body):
        out.append(body[pos:m.start()])
        pos = m.end()
        if m.group(1) is not None:
            last_heading[0] = re.sub(r"^[\d.]+\s*", "", _text(m.group(1)))
            out.append(m.group(0))
        elif m.group(2):
            kind = m.group(2)
            counters[kind] += 1
            word = t("page.figure" if kind == "fig" else "page.table", lang)
            out.append(f'<span class="{kind}-no">{word} {counters[kind]}.</span>')
        else:
            counters["tab"] += 1
            word = t("page.table", lang)
            out.append(f'<table class="sc-table"><caption><span class="tab-no">{word} '
                       f'{counters["tab"]}.</span> {last_heading[0]}</caption>')
    out.append(body[pos:])
    return "".join(out)


def toc_html(toc: Sequence[tuple[int, str, str]], lang: str) -> str:
    """Links to the ``<h2>`` sections, with their ``<h3>`` inside (``toc`` rows hold the
    headings' inner HTML: numbered, escaped)."""
    if not toc:
        return ""
    parts = [f'<nav class="toc" aria-label="{html.escape(t("page.toc", lang))}">',
             f"<h2 id=\"toc\" class=\"nonum\">{html.escape(t('page.toc', lang))}</h2>", "<ol>"]
    open_sub = False
    for i, (level, ident, text) in enumerate(toc):
        link = f'<a href="#{ident}">{text}</a>'
        if level == 2:
            if open_sub:
                parts.append("</ol></li>")
                open_sub = False
            nxt = toc[i + 1][0] if i + 1 < len(toc) else 2
            if nxt == 3:
                parts.append(f"<li>{link}<ol>")
                open_sub = True
            else:
                parts.append(f"<li>{link}</li>")
        else:
            if not open_sub:  # an h3 before any h2
                parts.append("<li><ol>")
                open_sub = True
            parts.append(f"<li>{link}</li>")
    if open_sub:
        parts.append("</ol></li>")
    parts += ["</ol>", "</nav>"]
    return "\n".join(parts)


def meta_html(meta: Mapping[str, str], lang: str) -> str:
    """The document's metadata as a definition list (keys are catalogue ``page.meta_*``)."""
    rows = [f"<dt>{html.escape(t(f'page.meta_{k}', lang))}</dt><dd>{html.escape(str(v))}</dd>"
            for k, v in meta.items() if v not in (None, "")]
    return f'<dl class="meta">{"".join(rows)}</dl>' if rows else ""


def header_html(title: str, lang: str = "ru", *, meta: Mapping[str, str] | None = None,
                issuer: str | None = None, lead: str = "") -> str:
    """The page's ``<header>``: issuing body, title (``<h1>``), metadata and a lead."""
    return "\n".join(x for x in [
        '<header class="doc">',
        f'<p class="issuer">{html.escape(issuer)}</p>' if issuer else "",
        f"<h1>{html.escape(title)}</h1>", meta_html(meta or {}, lang), lead, "</header>"] if x)


def document(body: str, *, title: str, lang: str = "ru", meta: Mapping[str, str] | None = None,
             issuer: str | None = None, lead: str = "", toc: bool = True,
             description: str = "") -> str:
    """A complete HTML page around ``body`` (see the module's conventions).

    Parameters
    ----------
    body : str
        The page's sections, already escaped HTML.
    title : str
        Plain text: the ``<title>`` and the ``<h1>``.
    meta : mapping, optional
        ``page.meta_<key>`` -> value rows under the title (region, date, edition, ...).
    issuer : str, optional
        The issuing body, printed above the title.
    lead : str
        HTML shown between the metadata and the table of contents.
    toc : bool
        Whether to build the table of contents.

    Returns
    -------
    str
        The page, numbers typeset by the conventions of ``lang``; the same input gives
        the same bytes.
    """
    own = re.search(r'<header class="doc">.*?</header>', body, re.S)
    if own:  # the report's first cell displays its own header (title, issuer, metadata)
        body = body[:own.start()] + body[own.end():]
        h1 = re.search(r"<h1[^>]*>(.*?)</h1>", own.group(0), re.S)
        title = html.unescape(_text(h1.group(1))) if h1 else title
    body, heads = _number_headings(body)
    body = _number_captions(body, lang)
    filter_box = (f'<div id="mun-filter-box" data-label="{html.escape(t("page.filter", lang))}"'
                  f' data-all="{html.escape(t("page.filter_all", lang))}"></div>'
                  if "data-mun=" in body else "")
    head = [
        "<!DOCTYPE html>", f'<html lang="{lang}">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f'<meta name="description" content="{html.escape(description or title)}">',
        f"<style>{CSS}</style>", "</head>", "<body>",
        own.group(0) if own else header_html(title, lang, meta=meta, issuer=issuer, lead=lead),
        toc_html(heads, lang) if toc else "",
        "<main>", filter_box, body, "</main>",
        f'<footer class="doc">{html.escape(t("page.footer", lang))}</footer>',
        f"<script>{SCRIPT}</script>" if filter_box else "",
        "</body>", "</html>",
    ]
    return typeset_html("\n".join(x for x in head if x), lang) + "\n"
