"""The live web console: trends, status, controls and the change journal in a browser.

- :mod:`.settings`: :class:`ConsoleSettings` (bind, users, TLS) and the security rules
  (loopback by default; a non-loopback bind needs login and TLS).
- :mod:`.auth`: users file (roles viewer/operator/engineer), signed session cookies, CSRF.
- :mod:`.stream`: frames and journal changes pushed to browsers (Server-Sent Events).
- :mod:`.app`: the HTTP routes (Starlette).
- :mod:`.server`: :class:`ConsoleServer` (uvicorn in its own thread) and
  :func:`console_surface`, the operator surface ``rtompc run``/``rtompc demo`` start.

The console reads the running state only through :class:`rtompc.live.view.UnitView`
and writes only through :meth:`rtompc.live.LiveParameters.submit` (``Source.WEB``).
Importing this package is light (the config loader uses :mod:`.settings`); the server
(Starlette, uvicorn) is imported from :mod:`.server` when a console is started.
See ``docs/console.md``.
"""

from __future__ import annotations

from rtompc.console.settings import ConsoleSettings, is_loopback, parse_bind

__all__ = ["ConsoleSettings", "is_loopback", "parse_bind"]
