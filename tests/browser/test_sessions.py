"""hellotext.js sessions and cookies in Chromium: rules S1-S5 and browser-sdk §3-§6."""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import BrowserContext

from tests.browser.conftest import SHOP, UUID4, WWW, PageServer, Tab, cookies_named
from tests.conftest import Tenant

pytestmark = pytest.mark.browser


def preset(context: BrowserContext, name: str, value: str, domain: str = ".example.test") -> None:
    """Put a cookie in the browser as a site (or the official client) would have."""
    context.add_cookies([{"name": name, "value": value, "domain": domain, "path": "/"}])


# --- S1 resolution --------------------------------------------------------------------------------


def test_s1_url_parameter_beats_configuration_and_cookie(
    open_tab: Any, context: BrowserContext, tenant: Tenant
) -> None:
    """S1: the hello_session URL parameter wins over config.session and the cookie."""
    preset(context, "hello_session", "from-cookie")
    tab = open_tab("/sdk/p?hello_session=from-url")
    assert tab.init(tenant.public_id, {"session": "from-config"}) == "from-url"
    assert tab.cookie("hello_session") == "from-url"


def test_s1_configuration_beats_cookie(open_tab: Any, context: BrowserContext, tenant: Tenant) -> None:
    """S1: config.session wins over the cookie."""
    preset(context, "hello_session", "from-cookie")
    tab = open_tab()
    assert tab.init(tenant.public_id, {"session": "from-config"}) == "from-config"
    assert tab.cookie("hello_session") == "from-config"


def test_s1_cookie_beats_generation(open_tab: Any, context: BrowserContext, tenant: Tenant) -> None:
    """S1: an existing cookie is used rather than minting."""
    preset(context, "hello_session", "from-cookie")
    tab = open_tab()
    assert tab.init(tenant.public_id) == "from-cookie"


def test_s1_generation_mints_uuid4_without_secure_context(open_tab: Any, tenant: Tenant) -> None:
    """S1/§4.2: nothing found → a UUID v4; on http://shop.example.test (no randomUUID): getRandomValues."""
    tab = open_tab()
    assert tab.run("() => [isSecureContext, typeof crypto.randomUUID]") == [False, "undefined"]
    session = tab.init(tenant.public_id)
    assert re.match(UUID4, session), session
    assert tab.cookie("hello_session") == session
    # 200 fresh mints: all distinct and all v4 (version nibble 4, variant bits 10).
    minted = tab.run(
        """async (id) => { const out = []
             for (let i = 0; i < 200; i++) {
               Hellotext.forget({newSession: true}); out.push(Hellotext.session) }
             return out }""",
        tenant.public_id,
    )
    assert len(set(minted)) == 200
    assert all(re.match(UUID4, s) for s in minted)


def test_s1_generation_uses_random_uuid_in_secure_context(open_tab: Any, tenant: Tenant) -> None:
    """§4.2: on http://127.0.0.1 (a secure context) crypto.randomUUID mints the session."""
    tab = open_tab(host="127.0.0.1")
    tab.run(
        """() => { window.calls = 0; const f = crypto.randomUUID.bind(crypto)
             crypto.randomUUID = () => (calls++, f()) }"""
    )
    session = tab.init(tenant.public_id)
    assert re.match(UUID4, session)
    assert tab.run("() => calls") == 1


@pytest.mark.parametrize(
    ("url_value", "config_value", "cookie_value"),
    [
        ("undefined", "null", "from-cookie"),
        ("", "", "from-cookie"),
        ("has%20space", "a,b", "from-cookie"),
        ("x" * 257, "semi;colon", "from-cookie"),
        ("caf%C3%A9", 42, "from-cookie"),
    ],
)
def test_s1_unusable_candidates_are_skipped(
    open_tab: Any,
    context: BrowserContext,
    tenant: Tenant,
    url_value: str,
    config_value: Any,
    cookie_value: str,
) -> None:
    """S1/§4.1: "", "undefined", "null", non-strings and ids the API refuses count as absent."""
    preset(context, "hello_session", cookie_value)
    tab = open_tab(f"/sdk/?hello_session={url_value}")
    assert tab.init(tenant.public_id, {"session": config_value}) == cookie_value


def test_s1_unusable_cookie_is_replaced_by_a_new_session(
    open_tab: Any, context: BrowserContext, tenant: Tenant
) -> None:
    """S1: a cookie holding "undefined" (as the official client writes) is not a session."""
    preset(context, "hello_session", "undefined")
    tab = open_tab()
    session = tab.init(tenant.public_id)
    assert re.match(UUID4, session)
    assert [c["value"] for c in cookies_named(context, "hello_session")] == [session]


def test_s1_url_parameter_wins_on_a_later_initialize(open_tab: Any, tenant: Tenant) -> None:
    """§3: initialize may be called again; each call redoes the resolution."""
    tab = open_tab("/sdk/?hello_session=link-session")
    assert tab.init(tenant.public_id) == "link-session"
    assert tab.init(tenant.public_id, {"session": "other"}) == "link-session"


# --- S2 persistence -------------------------------------------------------------------------------


def test_s2_cookie_on_root_domain_is_read_on_sibling_host(
    open_tab: Any, context: BrowserContext, tenant: Tenant
) -> None:
    """S2: the cookie written on shop.example.test is read on www.example.test."""
    session = open_tab(host=SHOP).init(tenant.public_id)
    [cookie] = cookies_named(context, "hello_session")
    assert cookie["domain"] == ".example.test"
    assert cookie["path"] == "/"
    assert cookie["sameSite"] == "Lax"
    assert cookie["secure"] is False  # http page: no Secure attribute
    # ten years asked; Chromium caps cookie lifetimes at 400 days, so at least a year is left.
    assert cookie["expires"] - time.time() > 365 * 86400
    other = open_tab(host=WWW)
    assert other.init(tenant.public_id) == session


def test_s2_cookie_value_is_uri_encoded_and_raw_values_still_read(
    open_tab: Any, context: BrowserContext, tenant: Tenant
) -> None:
    """§5.2: values are written with encodeURIComponent; an undecodable raw value is read as is."""
    tab = open_tab()
    odd = 'a=b&c%d"e'
    assert tab.init(tenant.public_id, {"session": odd}) == odd
    [cookie] = cookies_named(context, "hello_session")
    assert cookie["value"] == quote(odd, safe="")
    preset(context, "hello_session", "raw%zz")
    assert tab.run("() => Hellotext.session") == "raw%zz"


def test_s2_domain_write_clears_host_only_copy(
    open_tab: Any, context: BrowserContext, tenant: Tenant
) -> None:
    """§5.2: writing on the root domain first deletes a host-only cookie of the same name."""
    context.add_cookies([{"name": "hello_session", "value": "host-only", "url": f"http://{SHOP}/"}])
    tab = open_tab()
    assert tab.init(tenant.public_id, {"session": "fresh"}) == "fresh"
    found = cookies_named(context, "hello_session")
    assert [(c["domain"], c["value"]) for c in found] == [(".example.test", "fresh")]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_s2_host_only_cookie_on_ip_and_single_label(
    open_tab: Any, context: BrowserContext, tenant: Tenant, host: str
) -> None:
    """§5.4 rule 1: IP literals and single labels get a host-only cookie (no domain attribute)."""
    tab = open_tab(host=host)
    session = tab.init(tenant.public_id)
    [cookie] = cookies_named(context, "hello_session")
    assert (cookie["domain"], cookie["value"]) == (host, session)


@pytest.mark.parametrize(
    ("host", "domain"),
    [
        ("example.com", ".example.com"),
        ("shop.example.com", ".example.com"),
        ("www.store.com.br", ".store.com.br"),
        ("x.co.uk", ".x.co.uk"),
        ("mystore.myshopify.com", ".mystore.myshopify.com"),
        ("secure.mystore.myshopify.com", ".mystore.myshopify.com"),
        ("www.abc.de", ".www.abc.de"),
        (SHOP, ".example.test"),
        (WWW, ".example.test"),
    ],
)
def test_s2_root_domain_table(
    open_tab: Any, context: BrowserContext, tenant: Tenant, host: str, domain: str
) -> None:
    """§5.4: the root-domain table, on pages really served from each host (mapped to 127.0.0.1)."""
    tab = open_tab(host=host)
    tab.init(tenant.public_id, {"session": "table"})
    assert [c["domain"] for c in cookies_named(context, "hello_session")] == [domain]


# --- S3 no generation -----------------------------------------------------------------------------


def test_s3_no_generation_leaves_no_session_and_no_cookie(
    open_tab: Any, context: BrowserContext, site: PageServer, tenant: Tenant
) -> None:
    """S3: autoGenerateSession:false and nothing found → undefined, not initialised, nothing written."""
    tab = open_tab()
    state = tab.run(
        """async (id) => { const seen = []; Hellotext.on('session-set', (s) => seen.push(s))
             await Hellotext.initialize(id, {autoGenerateSession: false})
             return [Hellotext.session === undefined, Hellotext.isInitialized, seen, document.cookie] }""",
        tenant.public_id,
    )
    assert state == [True, False, [], ""]
    assert context.cookies() == []
    # track still works and sends no session (§4.1).
    tab.run("() => Hellotext.track('page.viewed', {})")
    [body] = tab.posts("/track/events")
    assert "session" not in body
    identified = tab.run("() => Hellotext.identify('s3-user').then((r) => r.data)")
    assert (identified["session"], identified["session_attached"]) == (None, False)
    [sent] = tab.posts("/public/identifications")
    assert sent == {"user_id": "s3-user"}


# --- S4 announce ----------------------------------------------------------------------------------


def test_s4_session_set_fires_on_generation_and_on_cookie_read(
    open_tab: Any, context: BrowserContext, tenant: Tenant
) -> None:
    """S4: session-set fires with the value, also when it was read back from the cookie."""
    script = """async (id) => { const seen = []; Hellotext.on('session-set', (s) => seen.push(s))
                  await Hellotext.initialize(id); return [Hellotext.session, seen] }"""
    session, seen = open_tab().run(script, tenant.public_id)
    assert seen == [session]
    session_again, seen_again = open_tab(host=WWW).run(script, tenant.public_id)
    assert (session_again, seen_again) == (session, [session])


def test_s4_listeners_order_errors_and_removal(open_tab: Any, tenant: Tenant) -> None:
    """§6: emission in registration order; a throwing listener is reported and the others carry on;
    removeEventListener removes one registration; listeners added during an emission wait."""
    tab = open_tab()
    result = tab.run(
        """async (id) => {
             const calls = []
             const late = () => calls.push('late')
             const removed = () => calls.push('removed')
             Hellotext.on('session-set', () => { calls.push('first'); Hellotext.on('session-set', late) })
             Hellotext.on('session-set', () => { throw new Error('listener broke') })
             Hellotext.on('session-set', removed)
             Hellotext.on('session-set', (s) => calls.push('last:' + s))
             Hellotext.removeEventListener('session-set', removed)
             Hellotext.removeEventListener('session-set', () => 0)  // unknown function: no-op
             await Hellotext.initialize(id, {session: 's4-order'})
             return calls }""",
        tenant.public_id,
    )
    assert result == ["first", "last:s4-order"]
    assert ("error", "Error: listener broke") in [(t, m.split("\n")[0]) for t, m in tab.console]
    assert tab.run("() => Hellotext.session") == "s4-order"


def test_s4_unknown_listener_names_throw_invalid_event(open_tab: Any) -> None:
    """§6/§10.2: unknown names throw InvalidEvent synchronously; the official client's form names pass."""
    tab = open_tab()
    result = tab.run(
        """() => {
             const out = []
             for (const name of ['session-set', 'utm-set', 'forms:collected', 'form:completed']) {
               Hellotext.on(name, () => 0); Hellotext.removeEventListener(name, () => 0); out.push('ok')
             }
             const calls = [(n) => Hellotext.on(n, () => 0), (n) => Hellotext.removeEventListener(n, () => 0)]
             for (const f of calls) {
               try { f('session-changed'); out.push('no throw') }
               catch (e) { out.push([e.name, e instanceof Hellotext.InvalidEvent, e instanceof Error]) }
             }
             return out }"""
    )
    assert result == ["ok"] * 4 + [["InvalidEvent", True, True]] * 2


def test_s4_other_tab_rotation_is_adopted(open_tab: Any, tenant: Tenant) -> None:
    """§4.3: a session rotated in one tab reaches the others, with session-set."""
    first = open_tab()
    second = open_tab()
    session = first.init(tenant.public_id)
    first.run("() => { window.seen = []; Hellotext.on('session-set', (s) => seen.push(s)) }")
    assert second.init(tenant.public_id) == session
    rotated = second.run("() => { Hellotext.forget({newSession: true}); return Hellotext.session }")
    assert rotated != session and re.match(UUID4, rotated)
    assert first.run("() => [Hellotext.session, Hellotext.isInitialized, seen]") == [rotated, True, [rotated]]


def test_s4_utm_cookie_and_event(open_tab: Any, context: BrowserContext, tenant: Tenant) -> None:
    """§5.3: utm_source and utm_medium write hello_utm (trimmed, non-blank values) and emit utm-set."""
    tab = open_tab("/sdk/?utm_source=+newsletter+&utm_medium=email&utm_campaign=spring&utm_term=%20")
    utm = tab.run(
        """async (id) => { let got; Hellotext.on('utm-set', (u) => { got = u })
             await Hellotext.initialize(id); return got }""",
        tenant.public_id,
    )
    assert set(utm) == {"source", "medium", "campaign", "observed_at"}
    assert (utm["source"], utm["medium"], utm["campaign"]) == ("newsletter", "email", "spring")
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", utm["observed_at"])
    assert json.loads(tab.cookie("hello_utm") or "") == utm
    # A page without both parameters leaves the cookie (last touch wins only when there is a touch).
    again = open_tab("/sdk/?utm_source=only-source")
    again.init(tenant.public_id)
    assert json.loads(again.cookie("hello_utm") or "") == utm


# --- S5 client-side until used --------------------------------------------------------------------


def test_s5_initialize_makes_no_request(open_tab: Any, tenant: Tenant) -> None:
    """S5: initialisation sends nothing; only the page and the script were fetched."""
    tab = open_tab("/sdk/?utm_source=a&utm_medium=b")
    tab.init(tenant.public_id)
    tab.init(tenant.public_id, {"session": "again"})
    tab.run("() => Hellotext.session")
    tab.page.wait_for_timeout(300)
    assert tab.api_requests() == []
    assert [r.url.split("?")[0].rsplit("/", 1)[-1] for r in tab.requests] == ["", "hellotext.js"]


# --- §1 packaging, §3 configuration -----------------------------------------------------------------


def test_second_copy_leaves_the_first(open_tab: Any, tenant: Tenant) -> None:
    """§1: a second copy of the script keeps the first window.Hellotext (and its state)."""
    tab = open_tab("/twice/")
    assert tab.run("() => window.firstCopy === window.Hellotext && typeof Hellotext.version") == "string"


def test_initialize_rejects_a_bad_business_id(open_tab: Any) -> None:
    """§3 step 1: a missing or empty business id rejects with TypeError."""
    tab = open_tab()
    names = tab.run(
        """async () => { const out = []
             for (const id of ['', undefined, 42]) {
               try { await Hellotext.initialize(id); out.push('resolved') } catch (e) { out.push(e.name) } }
             return [out, Hellotext.isInitialized] }"""
    )
    assert names == [["TypeError", "TypeError", "TypeError"], False]


def test_default_api_root_is_the_script_origin(open_tab: Any, site: PageServer, tenant: Tenant) -> None:
    """§3 step 2: without apiRoot, requests go to the origin that served the script + /v1."""
    tab = open_tab()
    tab.init(tenant.public_id)
    tab.run("() => Hellotext.track('page.viewed')")
    [request] = tab.api_requests()
    assert request.url == site.api + "/v1/track/events"


def test_api_root_fallbacks_when_current_script_is_unknown(
    open_tab: Any, site: PageServer, tenant: Tenant, http: httpx.Client
) -> None:
    """§3 step 2: evaluated without currentScript, the SDK uses the first script whose path ends in
    /hellotext.js, and failing that location.origin (with a warning)."""
    source = http.get("/hellotext.js").text
    tab = open_tab("/bare/")
    tab.run(
        """(api) => { const s = document.createElement('script'); s.type = 'text/plain'
             s.src = api + '/hellotext.js?v=1'; document.head.append(s) }""",
        site.api,
    )
    tab.run(f"() => {{ (0, eval)({json.dumps(source)}) }}")
    tab.init(tenant.public_id)
    tab.run("() => Hellotext.track('page.viewed')")
    assert tab.api_requests()[-1].url == site.api + "/v1/track/events"

    plain = open_tab("/bare/")
    plain.run(f"() => {{ (0, eval)({json.dumps(source)}) }}")
    plain.init(tenant.public_id)
    plain.run("() => Hellotext.track('page.viewed')")
    assert plain.api_requests()[-1].url == site.url("/v1/track/events")
    assert any(t == "warning" and "hellotext" in m for t, m in plain.console)


def test_api_root_option_trailing_slashes_removed(open_tab: Any, site: PageServer, tenant: Tenant) -> None:
    """§3: apiRoot overrides the default; trailing slashes are removed."""
    tab = open_tab()
    tab.init(tenant.public_id, {"apiRoot": site.api + "/v1///"})
    tab.run("() => Hellotext.track('page.viewed')")
    assert tab.api_requests()[-1].url == site.api + "/v1/track/events"


def test_es_module_shares_the_global_and_finds_its_api_root(
    open_tab: Any, site: PageServer, tenant: Tenant
) -> None:
    """§1: /hellotext.mjs loads as an ES module; its default export is window.Hellotext, and the API root
    defaults to the module's origin."""
    tab = open_tab("/module/")
    tab.page.wait_for_function("() => window.moduleCopy !== undefined")
    assert tab.run("() => window.moduleCopy === window.Hellotext && typeof Hellotext.track") == "function"
    tab.init(tenant.public_id)
    tab.run("() => Hellotext.track('page.viewed')")
    assert tab.api_requests()[-1].url == site.api + "/v1/track/events"
    assert not [m for t, m in tab.console if t == "warning"]


def test_session_getter_before_initialize(open_tab: Any, context: BrowserContext) -> None:
    """§4.3: before initialisation session is undefined even when a cookie exists."""
    preset(context, "hello_session", "waiting")
    tab = open_tab()
    assert tab.run("() => [Hellotext.session === undefined, Hellotext.isInitialized]") == [True, False]


def test_public_surface(open_tab: Any) -> None:
    """§2: the public surface has exactly the documented members."""
    tab: Tab = open_tab()
    members = tab.run("""() => Object.getOwnPropertyNames(Hellotext).sort()""")
    classes = tab.run("() => [Hellotext.NotInitializedError.name, Hellotext.InvalidEvent.name]")
    assert classes == ["NotInitializedError", "InvalidEvent"]
    assert members == sorted(
        [
            "version",
            "NotInitializedError",
            "InvalidEvent",
            "session",
            "isInitialized",
            "initialize",
            "track",
            "identify",
            "forget",
            "on",
            "removeEventListener",
        ]
    )
