"""``rtompc config``: check, init, schema, docs — tools around the one config model.

- ``check FILE [--connect]``: every problem of a config at once (offline: model,
  signals, units, objective, solver options, the controller built without a
  solve; with ``--connect`` also every tag on the server). Exit 0 when clean,
  2 with problems.
- ``init [PLANT] [--from-server URL] [--from-model FILE] --out FILE``: an
  annotated starter config that passes ``check``.
- ``schema [--scenario | --site]``: the JSON Schema for editors (taplo, Even Better TOML).
- ``docs``: ``docs/configuration.md`` from the model.

Registering the parsers imports nothing heavy; each sub-command imports its
implementation when it runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

EXIT_OK = 0
"""The file is clean."""
EXIT_PROBLEMS = 2
"""The file has problems (listed on stderr); same code as a failed start-up check of run."""


def _emit(text: str, out: str | None) -> int:
    """Write ``text`` to the file ``out`` (whole or not at all), or to stdout."""
    if out:
        from rtompc.config.files import write_text_atomic

        write_text_atomic(Path(out), text, force=True)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _schema(args: argparse.Namespace) -> int:
    from rtompc.config.schema import SchemaKind, schema_text

    kind = (
        SchemaKind.SCENARIO if args.scenario else SchemaKind.SITE if args.site else SchemaKind.APP
    )
    return _emit(schema_text(kind), args.out)


def _docs(args: argparse.Namespace) -> int:
    from rtompc.config.docs import reference_markdown

    text = reference_markdown()
    if args.check:
        current = Path(args.check).read_text(encoding="utf-8") if Path(args.check).is_file() else ""
        if current != text:
            print(
                f"{args.check} is out of date: run `rtompc config docs --out {args.check}`",
                file=sys.stderr,
            )
            return EXIT_PROBLEMS
        return EXIT_OK
    return _emit(text, args.out)


def _check(args: argparse.Namespace) -> int:
    from rtompc.config.check import check_file

    report = check_file(Path(args.file), connect=args.connect, timeout_s=args.timeout)
    if args.json:
        import json

        print(json.dumps(report.to_json(), indent=2))
    else:
        for line in report.passed:
            print(f"ok    {line}")
        for problem in report.problems:
            print(f"ERROR {problem}")
        verdict = "no problems" if report.ok else f"{len(report.problems)} problem(s)"
        hint = report.ok and not args.connect and report.has_server
        print(
            f"{report.file}: {verdict}"
            + (" offline (add --connect to check the tags on the server)" if hint else "")
        )
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def _pair(text: str) -> tuple[str, str]:
    sig, sep, name = text.partition("=")
    if not sep or not sig or not name:
        from plant_models.errors import ConfigError

        raise ConfigError(f"--map {text}: expected SIGNAL=VARIABLE, e.g. pump=DB2.P100_SP")
    return sig.strip(), name.strip()


def _init(args: argparse.Namespace) -> int:
    from rtompc.config.starter import StarterRequest, write_starter

    req = StarterRequest(
        plant=args.plant,
        from_server=args.from_server,
        from_model=args.from_model,
        out=Path(args.out),
        force=args.force,
        hil_plant=args.hil_plant,
        security=args.security,
        certificate=args.certificate,
        private_key=args.private_key,
        trust=tuple(args.trust or ()),
        application_uri=args.application_uri,
        user=args.user,
        password_env=args.password_env,
        sample_time_s=args.sample_time,
        mapping=tuple(_pair(m) for m in args.map or ()),
    )
    path, todo = write_starter(req)
    print(
        f"wrote {path}; next: rtompc config check {path}"
        + (" --connect" if args.from_server else "")
    )
    for item in todo:
        print(
            f"TODO  {item}: not found on the server; map it in [transport.tags] "
            "(marked TODO in the file)",
            file=sys.stderr,
        )
    return EXIT_OK if not todo else EXIT_PROBLEMS


def register(sub: Any) -> None:
    """Add the ``config`` command and its sub-commands."""
    p = sub.add_parser(
        "config",
        help="configuration tools: check, init, schema, docs",
        description="Tools around the config model. Reference of every key: docs/configuration.md.",
    )
    csub = p.add_subparsers(dest="config_command", metavar="SUBCOMMAND")

    c = csub.add_parser(
        "check",
        help="list every problem of a config file (exit 0 clean, 2 problems)",
        description="Validate an application config or scenario file offline: keys, types, "
        "units, signals against the model, objective of every CV, MV limits within the "
        "plant's, sample times, solver options; then build the model, the estimator and the "
        "controller (no solve). --connect also connects to the OPC UA server and checks every "
        "tag: node exists, data type, write access of setpoints (AccessLevel and "
        "UserAccessLevel), EURange against the MV limits, units. Every problem is listed; "
        "exit code 0 when there is none, 2 otherwise.",
    )
    c.add_argument("file", help="application config or scenario file (TOML)")
    c.add_argument("--connect", action="store_true", help="also check every tag on the server")
    c.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        help="seconds allowed for connecting with --connect (default 10)",
    )
    c.add_argument("--json", action="store_true", help="print the report as JSON")
    c.set_defaults(func=_check)

    i = csub.add_parser(
        "init",
        help="write an annotated starter config",
        description="Write an annotated starter application config that passes `rtompc config "
        "check`: for a library plant (`init williams_otto`), for a running HIL or PLC "
        "(--from-server: browse its address space and propose the tag map with namespace URI, "
        "node ids, units and data types), or for an identified model file (--from-model). "
        "An existing file is kept unless --force; the file is written whole or not at all.",
    )
    i.add_argument("plant", nargs="?", help="plant: registry name or path/to/module.py:function")
    i.add_argument(
        "--from-server", metavar="URL", help="browse this OPC UA endpoint for the tag map"
    )
    i.add_argument("--from-model", metavar="FILE", help="identified model file (.json)")
    i.add_argument("--out", default="rtompc.toml", help="file to write (default rtompc.toml)")
    i.add_argument("--force", action="store_true", help="replace an existing file")
    i.add_argument(
        "--map",
        action="append",
        metavar="SIGNAL=VARIABLE",
        help="with --from-server: the variable (browse name, path or node id) of a "
        "signal whose name differs, e.g. pump=DB2.P100_SP (repeat; an MV may name "
        "its setpoint and its read-back)",
    )
    i.add_argument("--hil-plant", help="object name of the plant on a HIL server")
    i.add_argument("--sample-time", type=float, help="control period in seconds")
    i.add_argument(
        "--security",
        choices=["none", "sign", "sign-encrypt"],
        help="endpoint security for --from-server (default none)",
    )
    i.add_argument("--certificate", help="client certificate (see `rtompc certs create`)")
    i.add_argument("--private-key", help="client private key")
    i.add_argument(
        "--trust",
        action="append",
        metavar="PATH",
        help="trusted server certificate file or folder (repeat)",
    )
    i.add_argument("--application-uri", help="client application URI (as in the certificate)")
    i.add_argument("--user", help="user name on the server")
    i.add_argument("--password-env", help="environment variable holding the password")
    i.set_defaults(func=_init)

    s = csub.add_parser(
        "schema",
        help="print the JSON Schema of the config files (for editors)",
        description="Print the JSON Schema of application configs (or --scenario files). "
        "Editors that read it (taplo, VS Code's Even Better TOML) complete and check keys "
        "while you type: put `#:schema ./rtompc-app.schema.json` on the first line of the "
        "config, or map files to the schema in .taplo.toml (see docs/configuration.md).",
    )
    kinds = s.add_mutually_exclusive_group()
    kinds.add_argument("--scenario", action="store_true", help="schema of scenario files")
    kinds.add_argument(
        "--site", action="store_true", help="schema of multi-unit applications ([[unit]] tables)"
    )
    s.add_argument("--out", help="write to this file instead of stdout")
    s.set_defaults(func=_schema)

    d = csub.add_parser(
        "docs",
        help="print docs/configuration.md, generated from the config model",
        description="Print the configuration reference (every section and key with type, "
        "unit, default, allowed values and meaning) generated from the config model.",
    )
    d.add_argument("--out", help="write to this file instead of stdout")
    d.add_argument("--check", metavar="FILE", help="exit 2 when FILE differs from the model")
    d.set_defaults(func=_docs)
    p.set_defaults(func=lambda a: (p.print_help(), EXIT_PROBLEMS)[1])
