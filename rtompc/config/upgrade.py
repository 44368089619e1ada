"""Older config layouts -> the current one; each change explained.

Old files keep loading: :func:`upgrade` rewrites a parsed table in memory and
returns one note per change, which the loader logs as a deprecation warning
naming the old and the new key (edit the file as the notes say; there is no
``rtompc config upgrade``: old files load as they are). Changes:

- ``[transport.security]`` table (``mode = "SignAndEncrypt"``, ``policy``,
  ``trusted_server_certificates = "dir"``, ``certificate``, ``private_key``,
  ``application_uri``, ``private_key_password_env``) -> flat keys in
  ``[transport]``: ``security = "sign-encrypt"``, ``policy``,
  ``trust_list = ["dir"]``, ...;
- ``transport.username`` -> ``transport.user``;
- in-process ``transport.x0`` / ``transport.d`` / ``transport.integrator`` ->
  ``[plant]`` (they describe the simulated plant).

An inline ``password`` is not carried over: secrets come from the environment
(``password_env``); the validator reports it.
"""

from __future__ import annotations

import copy
from typing import Any

_MODES = {
    "none": "none",
    "sign": "sign",
    "signandencrypt": "sign-encrypt",
    "sign-encrypt": "sign-encrypt",
    "sign_and_encrypt": "sign-encrypt",
}


def upgrade(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The table in the current layout and a note per change (``data`` is not modified)."""
    out = copy.deepcopy(data)
    notes: list[str] = []
    tr = out.get("transport")
    if isinstance(tr, dict):
        sec = tr.get("security")
        if isinstance(sec, dict):
            del tr["security"]
            mode = sec.pop("mode", "None")
            tr["security"] = _MODES.get(str(mode).lower(), mode)
            notes.append(
                f"[transport.security] mode = {mode!r} -> transport.security = {tr['security']!r}"
            )
            if "policy" in sec:
                policy = sec.pop("policy")
                if str(policy) != "None":
                    tr["policy"] = policy
                notes.append("transport.security.policy -> transport.policy")
            if "trusted_server_certificates" in sec:
                trust = sec.pop("trusted_server_certificates")
                tr["trust_list"] = trust if isinstance(trust, list) else [trust]
                notes.append(
                    "transport.security.trusted_server_certificates -> "
                    "transport.trust_list (a list of files and directories)"
                )
            for key in (
                "certificate",
                "private_key",
                "application_uri",
                "private_key_password_env",
            ):
                if key in sec:
                    tr[key] = sec.pop(key)
                    notes.append(f"transport.security.{key} -> transport.{key}")
            for key, value in sec.items():  # unknown keys stay visible to the validator
                tr.setdefault(f"security.{key}", value)
        if "username" in tr:
            tr["user"] = tr.pop("username")
            notes.append("transport.username -> transport.user")
        plant = out.get("plant")
        if tr.get("kind", "inprocess") == "inprocess" and isinstance(plant, dict):
            for key in ("x0", "d", "integrator"):
                if key in tr and key not in plant:
                    plant[key] = tr.pop(key)
                    notes.append(f"transport.{key} -> plant.{key} (the simulated plant)")
    return out, notes
