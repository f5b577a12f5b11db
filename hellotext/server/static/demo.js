// The demo page's script. It is a served file, not inline code, because the page's
// Content-Security-Policy runs scripts from this origin only.
;(function () {
  'use strict'
  const $ = (id) => document.getElementById(id)
  const business = document.body.dataset.business

  function cookie(name) {
    for (const entry of document.cookie.split(';')) {
      const i = entry.indexOf('=')
      if (entry.slice(0, i).trim() === name) return decodeURIComponent(entry.slice(i + 1))
    }
  }

  function show() {
    $('session').textContent = Hellotext.session || '(none)'
    const user = cookie('hello_user_id')
    const source = cookie('hello_user_source')
    $('identity').textContent = user ? user + (source ? ' (' + source + ')' : '') : 'anonymous'
  }

  function log(text, ok) {
    const item = document.createElement('li')
    item.textContent = text
    item.className = ok ? 'ok' : 'failed'
    $('log').prepend(item)
  }

  async function report(label, call) {
    const response = await call
    log(label + ': ' + (response.succeeded ? 'ok' : 'failed') + ' ' + JSON.stringify(response.data), response.succeeded)
    show()
  }

  Hellotext.on('session-set', show)

  $('track-page').addEventListener('click', () => report('page.viewed', Hellotext.track('page.viewed')))

  $('track-product').addEventListener('click', () =>
    report(
      'product.viewed',
      Hellotext.track('product.viewed', {
        object_parameters: { name: 'Blue shirt', source: 'demo', reference: 'sku-1' },
      })
    )
  )

  $('identify').addEventListener('submit', (event) => {
    event.preventDefault()
    const form = new FormData(event.target)
    const options = {}
    for (const key of ['source', 'email']) {
      const value = String(form.get(key) || '').trim()
      if (value) options[key] = value
    }
    report('identify', Hellotext.identify(String(form.get('user_id')).trim(), options))
  })

  $('forget').addEventListener('click', () => {
    Hellotext.forget()
    log('forget: identity cookies deleted', true)
    show()
  })

  Hellotext.initialize(business).then(show)
})()
