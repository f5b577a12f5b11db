// hellotext.js: sessions, identity and tracking. Spec: browser-sdk.md (§). ES2017, no build step.
;(function (w, d, src) {
  'use strict'
  if (w.Hellotext && w.Hellotext.version) return // a second copy leaves the first in place

  const SESSION = 'hello_session'
  const UTM = 'hello_utm'
  const USER = 'hello_user_id'
  const SOURCE = 'hello_user_source'
  const HASH = 'hello_user_identification_hash'
  const EVENTS = ['session-set', 'utm-set', 'forms:collected', 'form:completed'] // the last two never fire
  const PLATFORMS = ['myshopify.com', 'vtexcommercestable.com.br', 'myvtex.com', 'wixsite.com']
  const listeners = {}
  let business, root, session

  class NotInitializedError extends Error {
    constructor(m) { super(m); this.name = 'NotInitializedError' }
  }
  class InvalidEvent extends Error {
    constructor(m) { super(m); this.name = 'InvalidEvent' }
  }

  const object = (v) => (v && typeof v == 'object' ? v : {})
  const query = () => new URLSearchParams(location.search)
  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
  const result = (ok, data) => Object.freeze({ succeeded: ok, failed: !ok, data })
  // §4.1: 1-256 of U+0021-U+007E except , and ;
  const usable = (s) => typeof s == 'string' && s != 'undefined' && s != 'null' && /^[!-+\--:<-~]{1,256}$/.test(s)

  // §4.2: randomUUID exists only in secure contexts.
  function uuid() {
    const c = w.crypto
    if (c.randomUUID) return c.randomUUID()
    const b = c.getRandomValues(new Uint8Array(16))
    b[6] = (b[6] & 15) | 64
    b[8] = (b[8] & 63) | 128
    return hex(b).replace(/(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-')
  }

  // §5.4: so that shop.example.com and www.example.com share cookies.
  function rootDomain(host) {
    try {
      host = host.toLowerCase().replace(/\.$/, '')
      if (/^[\d.]+$|:|^[^.]*$/.test(host)) return '' // IP literal or single label: host-only
      const labels = host.split('.')
      const n = labels.length
      for (const p of PLATFORMS) {
        if (host.endsWith('.' + p)) return '.' + labels.slice(n - p.split('.').length - 1).join('.')
      }
      return '.' + labels.slice(n > 2 && labels[n - 1].length == 2 && labels[n - 2].length < 4 ? -3 : -2).join('.')
    } catch (e) { return '' }
  }

  function setCookie(name, value, domain, age) {
    d.cookie =
      name + '=' + value + '; path=/' + (domain ? '; domain=' + domain : '') + '; max-age=' + age +
      (age ? '' : '; expires=Thu, 01 Jan 1970 00:00:00 GMT') + '; SameSite=Lax' +
      (location.protocol == 'https:' ? '; Secure' : '')
  }

  // §5.2: value undefined deletes. Both clear the host-only copy, so a name never holds two values.
  function writeCookie(name, value) {
    const domain = rootDomain(location.hostname)
    setCookie(name, '', '', 0)
    if (value !== undefined) setCookie(name, encodeURIComponent(value), domain, 315360000)
    else if (domain) setCookie(name, '', domain, 0)
  }

  function readCookie(name) {
    for (let entry of d.cookie.split(';')) {
      entry = entry.trim()
      const i = entry.indexOf('=')
      if (i > 0 && entry.slice(0, i) == name) {
        const raw = entry.slice(i + 1)
        try { return decodeURIComponent(raw) } catch (e) { return raw } // the official client wrote it raw
      }
    }
  }

  function listenersOf(name) {
    if (EVENTS.indexOf(name) < 0) throw new InvalidEvent(name + ' is not an event')
    return listeners[name] || (listeners[name] = [])
  }

  // §6: a copy, so listeners added now wait for the next emission.
  function emit(name, value) {
    for (const f of listenersOf(name).slice()) {
      try { f(value) } catch (e) { console.error(e) }
    }
  }

  function setSession(s) {
    session = s
    writeCookie(SESSION, s)
    emit('session-set', s)
  }

  // §4.3: adopt a session set by another tab or the site's server.
  function current() {
    const s = business && readCookie(SESSION)
    if (usable(s) && s != session) {
      session = s
      emit('session-set', s)
    }
    return session
  }

  function apiRoot() {
    const scripts = Array.from(d.querySelectorAll('script[src]'))
    const s = src || (scripts.find((e) => /\/hellotext\.js$/.test(new URL(e.src).pathname)) || {}).src
    if (!s) console.warn('hellotext: API root is ' + location.origin)
    return new URL(s || location.href).origin + '/v1'
  }

  // §8.2: the canonical form; absent values come back undefined.
  function canonical(v) {
    const t = typeof v
    if (v == null || t == 'function' || t == 'symbol' || (t == 'number' && !isFinite(v))) return
    if (t == 'string') return v.trim() || undefined
    if (v instanceof Date) return isNaN(v) ? undefined : v.toISOString()
    if (Array.isArray(v)) return v.map(canonical).filter((x) => x !== undefined)
    if (t != 'object') return v
    const o = {}
    for (const k of Object.keys(v).sort()) {
      const x = canonical(v[k])
      if (x !== undefined) o[k] = x
    }
    return Object.keys(o).length ? o : undefined
  }

  async function fingerprint(payload) {
    const text = JSON.stringify(canonical(payload) || {})
    const subtle = w.crypto.subtle // absent in insecure contexts
    if (subtle) return 'v1:' + hex(new Uint8Array(await subtle.digest('SHA-256', new TextEncoder().encode(text))))
    let h = 5381
    for (let i = 0; i < text.length; i++) h = (h * 33 + text.charCodeAt(i)) >>> 0
    return 'v1:' + h.toString(16).padStart(8, '0')
  }

  // §7.4: browsers cap keepalive bodies near 64 KiB.
  async function post(path, body, extra) {
    const json = JSON.stringify(body)
    const headers = new Headers(extra || {})
    headers.set('Authorization', 'Bearer ' + business)
    headers.set('Accept', 'application/json')
    headers.set('Content-Type', 'application/json')
    const init = { method: 'POST', headers, credentials: 'omit', body: json }
    if (new TextEncoder().encode(json).length < 60000) init.keepalive = true
    let status = 0
    let data = null
    try {
      const response = await fetch(root + path, init)
      status = response.status
      data = await response.json()
    } catch (e) {} // network failure; body not JSON
    return { status, data }
  }

  // JSON.stringify drops undefined values: absent cookies, a missing session.
  const identity = () => ({ id: readCookie(USER), source: readCookie(SOURCE) })

  function utmCookie() {
    try {
      const u = JSON.parse(readCookie(UTM))
      if (u && typeof u == 'object' && !Array.isArray(u)) return u
    } catch (e) {}
    return {}
  }

  function requireInitialized() {
    if (!business) throw new NotInitializedError('call Hellotext.initialize first')
  }

  w.Hellotext = {
    version: '0.1.0',
    NotInitializedError,
    InvalidEvent,

    get session() { return current() },
    get isInitialized() { return current() !== undefined },

    // §3: no request here.
    async initialize(businessId, config) {
      if (typeof businessId != 'string' || !businessId) throw new TypeError('businessId: non-empty string')
      config = object(config)
      business = businessId
      root = (typeof config.apiRoot == 'string' && config.apiRoot ? config.apiRoot : apiRoot()).replace(/\/+$/, '')
      const q = query()
      const utm = {}
      for (const k of ['source', 'medium', 'campaign', 'term', 'content']) {
        const v = (q.get('utm_' + k) || '').trim()
        if (v) utm[k] = v
      }
      if (utm.source && utm.medium) {
        utm.observed_at = new Date().toISOString()
        writeCookie(UTM, JSON.stringify(utm))
        emit('utm-set', utm)
      }
      session = [q.get(SESSION), config.session, readCookie(SESSION)].find(usable)
      if (!session && config.autoGenerateSession !== false) session = uuid()
      if (session) setSession(session)
    },

    async track(action, params) {
      requireInitialized()
      params = object(params)
      if (query().has('hello_preview')) return result(true, { received: true })
      const body = {}
      const s = current()
      if (s) body.session = s
      body.user_parameters = 'user_parameters' in params ? params.user_parameters : identity()
      body.action = action
      for (const k of Object.keys(params)) if (k != 'headers' && k != 'user_parameters') body[k] = params[k]
      let path = location.pathname
      try {
        if ('url' in params) path = new URL(params.url, location.href).pathname
      } catch (e) {}
      body.page = { url: 'url' in params ? params.url : location.href, title: d.title, path }
      body.utm_params = utmCookie()
      const r = await post('/track/events', body, params.headers)
      return result(r.status == 200, r.data)
    },

    async identify(externalId, options) {
      requireInitialized()
      options = object(options)
      for (let rotated = false; ; rotated = true) {
        const payload = Object.assign({}, options, { session: current(), user_id: externalId })
        const hash = await fingerprint(payload)
        if (readCookie(HASH) == hash) return result(true, { already_identified: true })
        const r = await post('/public/identifications', payload)
        const ok = r.status > 199 && r.status < 300
        // §8.4: another customer's session: retry once on a fresh one.
        if (ok && !rotated && r.data && r.data.session_conflict === true) {
          setSession(uuid())
          continue
        }
        if (ok) {
          writeCookie(USER, String(externalId))
          // Never pair an old source with a new id.
          if (typeof options.source == 'string' && options.source.trim()) writeCookie(SOURCE, options.source)
          else writeCookie(SOURCE)
          writeCookie(HASH, hash)
        }
        return result(ok, r.data)
      }
    },

    forget(options) {
      for (const name of [USER, SOURCE, HASH]) writeCookie(name)
      if (business && object(options).newSession) setSession(uuid())
    },

    on(name, callback) { listenersOf(name).push(callback) },

    removeEventListener(name, callback) {
      const list = listenersOf(name)
      const i = list.indexOf(callback)
      if (i >= 0) list.splice(i, 1)
    },
  }
  // The script's URL, read now: currentScript is null later (§3). hellotext.mjs passes import.meta.url.
})(window, document, document.currentScript && document.currentScript.src)
