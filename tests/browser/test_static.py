"""The HTTP side of the browser SDK and the demo page (http-api §11, browser-sdk §1); no browser here."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hellotext.server.routes.static import STATIC_DIR, etag_matches, module_source
from hellotext.store import businesses
from hellotext.store.database import Database
from tests.conftest import Tenant, drop_database, make_settings
from tests.servers import ServerProcess

SDK_FILE = STATIC_DIR / "hellotext.js"
BUDGET = 4096
ACORN_DIRS = ["/usr/share/nodejs", "/usr/lib/nodejs", "/usr/local/lib/node_modules"]

# Syntax and library features later than ES2017 (browser-sdk §1), as they would appear in source.
# `...` is banned outright: array spread is ES2015, but this file needs none, and object spread is ES2018.
FORBIDDEN = {
    "optional chaining": r"\?\.(?!\d)",
    "nullish coalescing": r"\?\?",
    "spread or rest": r"\.\.\.",
    "optional catch binding": r"\bcatch\s*\{",
    "logical assignment": r"(\|\||&&)=",
    "private members or static fields": r"(^|[^\w$])#[A-Za-z_$]|\bstatic\s+[\w$]+\s*[=;]",
    "globalThis": r"\bglobalThis\b",
    "Object.fromEntries": r"\bfromEntries\b",
    "Array.prototype.flat": r"\.flat(Map)?\(",
    "String.prototype.replaceAll": r"\breplaceAll\b",
    "matchAll": r"\bmatchAll\b",
    "trimStart/trimEnd": r"\btrim(Start|End)\b",
    "Promise.allSettled/any": r"\bPromise\.(allSettled|any)\b",
    "at()": r"\.at\(",
    "Object.hasOwn": r"\bhasOwn\(",
    "BigInt literal": r"\b\d+n\b",
    "numeric separator": r"\d_\d",
    "for await": r"\bfor\s+await\b",
    "regexp lookbehind or named group": r"\(\?<",
    "import.meta or dynamic import": r"\bimport\s*[.(]",
}


def code_only(source: str) -> str:
    """The source with comments and the contents of string and template literals blanked out."""
    out = []
    i = 0
    while i < len(source):
        ch = source[i]
        if source.startswith("//", i):
            i = source.find("\n", i)
            i = len(source) if i < 0 else i
        elif source.startswith("/*", i):
            i = source.index("*/", i) + 2
        elif ch in "'\"`":
            j = i + 1
            while source[j] != ch:
                j += 2 if source[j] == "\\" else 1
            out.append(ch + ch)
            i = j + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


# --- GET /hellotext.js (http-api §11) ---------------------------------------------------------------


def test_sdk_served_verbatim_with_headers(http: httpx.Client) -> None:
    """§11: the repository file byte for byte, JS type, public caching, an ETag, ACAO *."""
    response = http.get("/hellotext.js")
    assert response.status_code == 200
    assert response.content == SDK_FILE.read_bytes()
    assert response.headers["content-type"] == "application/javascript; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=3600"
    assert response.headers["access-control-allow-origin"] == "*"
    assert re.fullmatch(r'"[0-9a-f]{32}"', response.headers["etag"])
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("form", ["{etag}", "W/{etag}", '"other", {etag}', "*"])
def test_sdk_etag_revalidation_gives_304(http: httpx.Client, form: str) -> None:
    """§11: If-None-Match naming the current ETag → 304 without a body, same validators."""
    etag = http.get("/hellotext.js").headers["etag"]
    response = http.get("/hellotext.js", headers={"If-None-Match": form.format(etag=etag)})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert response.headers["cache-control"] == "public, max-age=3600"
    assert response.headers["access-control-allow-origin"] == "*"


def test_sdk_stale_etag_gives_the_file(http: httpx.Client) -> None:
    """§11: an If-None-Match that names another version gets the full file."""
    response = http.get("/hellotext.js", headers={"If-None-Match": '"0000", W/"1111"'})
    assert response.status_code == 200
    assert response.content == SDK_FILE.read_bytes()


def test_sdk_head(http: httpx.Client) -> None:
    """§11: HEAD answers the headers of GET without the body."""
    response = http.head("/hellotext.js")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len(SDK_FILE.read_bytes()))
    assert response.headers["etag"] == http.get("/hellotext.js").headers["etag"]
    assert response.headers["content-type"] == "application/javascript; charset=utf-8"


def test_sdk_other_methods_are_405(http: httpx.Client) -> None:
    """§1.1: a known path with an unsupported method → 405 not_allowed with Allow."""
    response = http.post("/hellotext.js")
    assert response.status_code == 405
    assert response.json()["errors"][0]["type"] == "not_allowed"
    assert "GET" in response.headers["allow"]


def test_etag_matching_rules() -> None:
    """§11: weak comparison, lists and * (RFC 9110 If-None-Match)."""
    assert etag_matches('"a"', '"a"')
    assert etag_matches('W/"a"', '"a"')
    assert etag_matches(' "b" , "a" ', '"a"')
    assert etag_matches("*", '"a"')
    assert not etag_matches('"b"', '"a"')
    assert not etag_matches(None, '"a"')
    assert not etag_matches("", '"a"')


# --- size and syntax (browser-sdk §1) ---------------------------------------------------------------


def test_sdk_gzip_size_budget(http: httpx.Client) -> None:
    """§1: gzip -9 of the served bytes, comments included, is at most 4,096 bytes."""
    size = len(gzip.compress(http.get("/hellotext.js").content, compresslevel=9))
    assert size <= BUDGET, f"hellotext.js is {size} bytes gzipped; the budget is {BUDGET}"


def test_sdk_uses_no_syntax_after_es2017() -> None:
    """§1: none of the listed post-ES2017 features appears in the code (comments and strings aside)."""
    code = code_only(SDK_FILE.read_text(encoding="utf-8"))
    found = {name for name, pattern in FORBIDDEN.items() if re.search(pattern, code, re.MULTILINE)}
    assert found == set()


def test_forbidden_feature_detector_catches_them() -> None:
    """The detector above is not vacuous: each sample of a later feature is caught."""
    samples = [
        "a?.b",
        "a ?? b",
        "x = {...a}",
        "try {} catch {}",
        "a ||= b",
        "class A { #p = 1 }",
        "class A { static n = 1 }",
        "globalThis.x",
        "Object.fromEntries(x)",
        "[].flat()",
        "s.replaceAll('a', 'b')",
        "10n",
        "1_000",
        "for await (const x of y) {}",
        "/(?<=a)b/",
        "import.meta.url",
    ]
    for sample in samples:
        code = code_only(sample)
        assert any(re.search(p, code, re.MULTILINE) for p in FORBIDDEN.values()), sample
    # ...while the ES2017 the SDK relies on passes, and strings or comments do not count.
    allowed = "const a = b ? .5 : 1; async function f() { await g() }; s = 'a?.b ...x'; // x ?? y"
    assert not any(re.search(p, code_only(allowed), re.MULTILINE) for p in FORBIDDEN.values())


def _acorn() -> tuple[str, dict[str, str]] | None:
    node = shutil.which("node")
    for folder in ACORN_DIRS:
        if node and (Path(folder) / "acorn" / "package.json").exists():
            return node, {**os.environ, "NODE_PATH": folder}
    return None


@pytest.mark.skipif(
    _acorn() is None, reason="node with the acorn parser (Debian's node-acorn) is not installed"
)
def test_sdk_parses_as_ecmascript_2017_script() -> None:
    """§1: a standard ES2017 parser (acorn, ecmaVersion 2017, sourceType script) accepts the file,
    and rejects the same file with one post-ES2017 construct added."""
    found = _acorn()
    assert found is not None
    node, env = found
    check = (
        "const src = require('fs').readFileSync(0, 'utf8');"
        "require('acorn').parse(src, {ecmaVersion: 2017, sourceType: 'script'})"
    )
    source = SDK_FILE.read_text(encoding="utf-8")
    ok = subprocess.run(
        [node, "-e", check], input=source, env=env, capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0, ok.stderr
    broken = source.replace("w.Hellotext && w.Hellotext.version", "w.Hellotext?.version")
    bad = subprocess.run(
        [node, "-e", check], input=broken, env=env, capture_output=True, text=True, timeout=60
    )
    assert bad.returncode != 0


# --- the ES module and the declarations -------------------------------------------------------------


def test_module_is_the_same_source_with_an_export(http: httpx.Client) -> None:
    """§1: /hellotext.mjs is hellotext.js with its invocation line passing import.meta.url, plus an export."""
    script = SDK_FILE.read_text(encoding="utf-8")
    response = http.get("/hellotext.mjs")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/javascript; charset=utf-8"
    assert response.headers["access-control-allow-origin"] == "*"
    text = response.text
    assert text.endswith("})(window, document, import.meta.url)\nexport default window.Hellotext\n")
    head = script[: script.rindex("})(window, document,")]
    assert text.startswith(head)
    assert http.get("/hellotext.mjs", headers={"If-None-Match": response.headers["etag"]}).status_code == 304


def test_module_source_refuses_a_drifted_script() -> None:
    """The .mjs rewrite fails loudly when hellotext.js no longer ends with the expected line."""
    with pytest.raises(RuntimeError):
        module_source("(function () {})()\n")


def test_declarations_cover_the_public_surface(http: httpx.Client) -> None:
    """§2: hellotext.d.ts is served and declares every public member."""
    response = http.get("/hellotext.d.ts")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/typescript")
    text = response.text
    for member in [
        "initialize(",
        "track(",
        "identify(",
        "forget(",
        "readonly session:",
        "readonly isInitialized:",
        "on(name: 'session-set'",
        "removeEventListener(",
        "NotInitializedError",
        "InvalidEvent",
        "readonly version:",
        "readonly succeeded:",
        "readonly failed:",
        "readonly data:",
        "interface Window",
        "export default",
    ]:
        assert member in text, member


TS_USE = """
import Hellotext, { HellotextResponse } from './hellotext'
async function main(): Promise<void> {
  await Hellotext.initialize('abc', { autoGenerateSession: false, apiRoot: 'https://x/v1', forms: true })
  const r: HellotextResponse = await Hellotext.track('product.viewed', { object_parameters: { name: 'a' } })
  if (r.failed || r.succeeded) console.log(r.data)
  Hellotext.on('session-set', (s: string) => s.toUpperCase())
  Hellotext.on('utm-set', (u) => u.observed_at)
  Hellotext.removeEventListener('form:completed', () => 0)
  await window.Hellotext.identify(42, { source: 's', email: 'e', plan: 'gold' })
  Hellotext.forget({ newSession: true })
  const s: string | undefined = Hellotext.session
  const v: string = Hellotext.version + String(Hellotext.isInitialized) + s
  try { await Hellotext.track(v) } catch (e) {
    if (e instanceof Hellotext.NotInitializedError) console.log(e.name)
  }
}
main()
"""
TS_MISUSE = """
import Hellotext from './hellotext'
Hellotext.on('session-changed', () => 0)
"""


@pytest.mark.skipif(shutil.which("tsc") is None, reason="tsc (Debian's node-typescript) is not installed")
@pytest.mark.parametrize(("source", "valid"), [(TS_USE, True), (TS_MISUSE, False)])
def test_declarations_type_check(tmp_path: Path, source: str, valid: bool) -> None:
    """§2: hellotext.d.ts compiles under tsc --strict for the documented uses, and rejects an unknown
    listener name."""
    shutil.copy(STATIC_DIR / "hellotext.d.ts", tmp_path / "hellotext.d.ts")
    (tmp_path / "use.ts").write_text(source, encoding="utf-8")
    command = ["tsc", "--noEmit", "--strict", "--target", "es2017", "--lib", "es2017,dom", "use.ts"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert (done.returncode == 0) is valid, done.stdout


# --- the demo page --------------------------------------------------------------------------------


def test_demo_page_headers_and_scripts(http: httpx.Client, tenant: Tenant) -> None:
    """The demo page: strict CSP (scripts from self only, nothing inline), nosniff, referrer policy."""
    response = http.get("/demo", params={"business": tenant.public_id})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self';" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    page = response.text
    assert f'data-business="{tenant.public_id}"' in page
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/hellotext.js">', '<script src="/demo.js">']
    assert " style=" not in page and "<style" not in page
    for path, kind in [("/demo.js", "application/javascript"), ("/demo.css", "text/css")]:
        asset = http.get(path)
        assert asset.status_code == 200
        assert asset.headers["content-type"].startswith(kind)


def test_demo_page_escapes_the_business_parameter(http: httpx.Client) -> None:
    """The ?business= value is HTML-escaped, never markup."""
    page = http.get("/demo", params={"business": '"><script>alert(1)</script>'}).text
    assert "<script>alert" not in page
    assert "&quot;&gt;&lt;script&gt;" in page


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[tuple[str, Database]]:
    """A server on a database of its own (no business named "Demo" yet)."""
    settings = make_settings(tmp_path, "demo")
    proc = ServerProcess(settings, log_path=tmp_path / "server.log").start()
    db = Database.open(settings)
    try:
        yield proc.url, db
    finally:
        db.close()
        proc.stop()
        drop_database(settings)


def test_demo_page_uses_the_oldest_demo_business(fresh_server: tuple[str, Database]) -> None:
    """Without ?business=, the page is for the oldest business named "Demo" (``hellotext serve --demo``);
    with none, a 404 page says how to get one."""
    url, db = fresh_server
    missing = httpx.get(url + "/demo")
    assert missing.status_code == 404
    assert "hellotext serve --demo" in missing.text
    first = db.write_sync(lambda c: businesses.create_business(c, "Demo"))
    db.write_sync(lambda c: businesses.create_business(c, "Demo"))
    page = httpx.get(url + "/demo")
    assert page.status_code == 200
    assert f'data-business="{first.public_id}"' in page.text
