"""Django: a middleware that gives each request a session and a bound `Hellotext`.

``settings.py``::

    MIDDLEWARE = [..., "hellotext.sdk.contrib.django.HellotextMiddleware"]
    HELLOTEXT = {"BUSINESS_ID": "D5GAnwf4", "API_ROOT": "https://track.example.com/v1"}
    # optional: "AUTO_GENERATE_SESSION": True, "REFRESH_COOKIE": True, "DEBUG": False,
    #           "DELIVERY": hellotext.sdk.DeliveryOptions(...)

In a view::

    request.hellotext.track("page.viewed", url=request.build_absolute_uri())
    request.hello_session

It runs the same logic as `HellotextWSGIMiddleware` on ``request.META`` (the WSGI environ, which Django also
builds under ASGI), and writes the cookies with ``response.set_cookie`` so Django's own cookie handling
stays in charge of the headers. Django is imported only when the middleware is built.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from hellotext.sdk.session import COOKIE_MAX_AGE, encode_cookie_value, root_domain
from hellotext.sdk.tracker import Hellotext
from hellotext.sdk.web import WebTracking
from hellotext.sdk.wsgi import environ_request

__all__ = ["HellotextMiddleware"]

logger = logging.getLogger("hellotext")


class HellotextMiddleware:
    """Django middleware: ``request.hellotext`` (a bound `Hellotext`) and ``request.hello_session``.

    Args:
        get_response: the next handler, as Django passes it.
        config: the settings mapping; ``settings.HELLOTEXT`` when not given.
    """

    def __init__(self, get_response: Callable[[Any], Any], config: dict[str, Any] | None = None) -> None:
        if config is None:
            from django.conf import settings  # type: ignore[import-untyped]

            config = dict(getattr(settings, "HELLOTEXT", {}))
        self.get_response = get_response
        tracker = Hellotext(
            config["BUSINESS_ID"],
            api_root=config["API_ROOT"],
            auto_generate_session=False,
            delivery=config.get("DELIVERY"),
            debug=bool(config.get("DEBUG", False)),
            transport=config.get("TRANSPORT"),
        )
        self.web = WebTracking(
            tracker,
            auto_generate_session=bool(config.get("AUTO_GENERATE_SESSION", True)),
            refresh_cookie=bool(config.get("REFRESH_COOKIE", True)),
        )

    def __call__(self, request: Any) -> Any:
        try:
            host, secure, url = environ_request(request.META)
            secure = secure or bool(request.is_secure())
            tracker, jar = self.web.bind(cookie_header=request.META.get("HTTP_COOKIE"), url=url)
            request.hellotext = tracker
            request.hello_session = tracker.session
        except Exception:
            logger.exception("hellotext: could not prepare the request; passing it through")
            return self.get_response(request)
        response = self.get_response(request)
        try:
            domain = root_domain(host)
            for write in jar.writes(refresh=self.web.refresh_cookie):
                if write.value is None:
                    response.delete_cookie(write.name, path="/", domain=domain, samesite="Lax")
                else:
                    response.set_cookie(
                        write.name,
                        encode_cookie_value(write.value),
                        max_age=COOKIE_MAX_AGE,
                        path="/",
                        domain=domain,
                        secure=secure,
                        httponly=False,
                        samesite="Lax",
                    )
        except Exception:
            logger.exception("hellotext: could not set the session cookie; response left unchanged")
        return response
