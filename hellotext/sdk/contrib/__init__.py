"""Thin adapters for web frameworks; each module imports its framework only when used.

- `hellotext.sdk.contrib.django`: a Django middleware (``MIDDLEWARE``) configured by ``settings.HELLOTEXT``;
- `hellotext.sdk.contrib.flask`: ``init_app(app, ...)`` and ``current_hellotext()``;
- `hellotext.sdk.contrib.fastapi`: ``get_hellotext``, ``get_session``: FastAPI (and Starlette) dependencies.
"""
