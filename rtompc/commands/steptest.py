"""``rtompc steptest APP.toml PLAN.toml [--preview]``: step-test a unit from the command line.

The app config says which plant and how to reach it (``[plant]``,
``[transport]``: OPC UA to a PLC or HIL server, or in-process; ``[historian]``);
the plan (:mod:`rtompc.step_plan`) says what moves, for how long and within
which CV limits. The test runs through the same edge as ``rtompc run``: REMOTE
is requested without blocking, the heartbeat is written every sample, every
write is checked per MV, and a CV that comes within its guard band makes the
test back off (MVs to their start values) until it is clear again.

While it runs, one progress line per ``--print-every`` samples (and on every
back-off, resume, pause) shows elapsed and remaining time and back-offs so far.

- pause: ``kill -USR1 PID`` or type ``p`` + Enter (MVs back to their start values,
  plan frozen); resume: ``kill -USR2 PID`` or ``r`` + Enter;
- stop: Ctrl-C (SIGINT), SIGTERM or ``q`` + Enter: the MVs are written back to their
  start values and the record so far is kept.

Every sample goes to the historian as a run of kind ``steptest`` (back-off and
pause samples flagged in the row's ``extra``); ``rtompc sysid --historian H
--run ID`` identifies from it. ``--preview`` writes nothing to the plant: it
draws the plan (PNG) and, with a model (``--model``, default the app's
``[plant]``), the predicted CV excursions and guard-band entries.

Exit codes: 0 plan completed or stopped on request, 2 config/plan problem
(nothing written), 4 aborted (the plant refused writes in a row), 6 plan not
finished in ``back_off.max_duration_factor`` x its duration (too much back-off).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import math
import signal
import sys
from pathlib import Path
from typing import Any

from plant_models.errors import ConfigError
from plant_models.library import load
from rtompc.config import build, load_app
from rtompc.step_plan import load_plan
from rtompc.step_test import (
    StepTestControl,
    StepTestData,
    StepTestProgress,
    StepTestStatus,
    run_step_test,
)

_log = logging.getLogger(__name__)

EXIT_CODES = {
    StepTestStatus.COMPLETED: 0,
    StepTestStatus.STOPPED: 0,
    StepTestStatus.ABORTED: 4,
    StepTestStatus.TIMED_OUT: 6,
}
"""Exit code per test status."""


def _hms(seconds: float) -> str:
    s = int(round(max(0.0, seconds)))
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


class _Progress:
    """Prints a progress line every ``every`` samples and on events."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.last_paused = False

    def __call__(self, p: StepTestProgress) -> None:
        event = p.event
        if p.paused != self.last_paused:
            event = (event + "; " if event else "") + ("paused" if p.paused else "resumed")
            self.last_paused = p.paused
        if not (event or (self.every and p.sample % self.every == 0)):
            return
        state = "BACKING OFF" if p.backing_off else "PAUSED" if p.paused else "running"
        pct = 100.0 * p.plan_samples_done / max(p.plan_samples, 1)
        print(
            f"steptest: elapsed {_hms(p.elapsed_s)} remaining {_hms(p.remaining_s)} "
            f"plan {pct:5.1f} % back-offs {p.back_offs} {state} write={p.write_status}"
            + (f"  [{event}]" if event else ""),
            flush=True,
        )


def _preview(args: argparse.Namespace) -> int:
    from rtompc.step_preview import plot_preview, predict

    cfg = load_app(Path(args.config))
    ms = build.models(cfg)
    plan = load_plan(args.plan, ms.plant, sample_time_s=cfg.sample_time_s)
    pred_model = load(str(args.model)) if args.model else ms.model
    prediction = predict(plan, pred_model)
    u0 = pred_model.nominal.u
    start = [u0[pred_model.u.names.index(n)] for n in plan.mv_names]
    import numpy as np

    out = Path(args.preview) if args.preview is not True else Path(args.plan).with_suffix(".png")
    plot_preview(plan, out, u_start=np.array(start), prediction=prediction)
    print(
        f"plan: {plan.deviations.shape[0]} samples of {plan.sample_time_s:g} s "
        f"({_hms(plan.duration_s)}), MVs in test: "
        f"{', '.join(n for n, on in zip(plan.mv_names, plan.in_test, strict=True) if on)}"
    )
    for exc in prediction.excursions:
        print(
            f"  {exc.name}: predicted {exc.low:.6g} .. {exc.high:.6g} (start {exc.start:.6g}), "
            f"guard-band entries {exc.guard_entries}"
        )
    print(f"wrote {out} (nothing was written to the plant)")
    return 0


async def _run_test(args: argparse.Namespace) -> tuple[StepTestData, int | None]:
    cfg = load_app(Path(args.config))
    model = build.models(cfg).plant
    io = build.plantio(cfg, model)
    plan = load_plan(
        args.plan, model, sample_time_s=cfg.sample_time_s, measured=io.measurement_names
    )
    if abs(plan.sample_time_s - io.sample_time_s) > 1e-9 * io.sample_time_s:
        raise ConfigError(
            f"{args.plan}: sample_time: {plan.sample_time_s:g} s differs from the "
            f"plant I/O's {io.sample_time_s:g} s ({args.config}: loop.sample_time_s)"
        )
    hist = build.historian(cfg, model, io.measurement_names)
    run_id: int | None = None
    if hist is not None:
        text = Path(args.config).read_text(encoding="utf-8")
        plan_text = Path(args.plan).read_text(encoding="utf-8")
        run_id = hist.begin_run(
            "steptest",
            mode="on",
            config_hash=hashlib.sha256(text.encode()).hexdigest()[:16],
            config_text=text,
            meta={
                "plan_file": str(args.plan),
                "plan": plan_text,
                "mvs_in_test": [n for n, on in zip(plan.mv_names, plan.in_test, strict=True) if on],
                "cvs": list(plan.settings.cvs),
                "units": {s.name: s.unit for s in (*model.u, *model.y, *model.d)},
                "limits": {
                    s.name: [
                        s.lower if math.isfinite(s.lower) else None,
                        s.upper if math.isfinite(s.upper) else None,
                    ]
                    for s in model.u
                },
            },
        )
        print(f"steptest: historian {hist.path} run {run_id}", flush=True)
    control = StepTestControl()
    loop = asyncio.get_running_loop()
    handlers = {
        signal.SIGINT: lambda: control.stop("stopped by SIGINT"),
        signal.SIGTERM: lambda: control.stop("stopped by SIGTERM"),
        signal.SIGUSR1: control.pause,
        signal.SIGUSR2: control.resume,
    }
    for sig, fn in handlers.items():
        loop.add_signal_handler(sig, fn)
    keyboard = sys.stdin is not None and sys.stdin.isatty()
    if keyboard:
        loop.add_reader(sys.stdin.fileno(), _key_reader(control))
    record: StepTestData | None = None
    try:
        async with io:
            record = await run_step_test(
                io,
                plan.deviations,
                plan.settings,
                historian=hist,
                control=control,
                on_sample=_Progress(args.print_every),
            )
    finally:
        for sig in handlers:
            loop.remove_signal_handler(sig)
        if keyboard:
            loop.remove_reader(sys.stdin.fileno())
        if hist is not None:
            if record is None:
                hist.end_run("step test failed", 1)
            else:
                hist.end_run(
                    f"step test {record.status.value}: {record.message}".rstrip(": "),
                    EXIT_CODES[record.status],
                )
            hist.close()
    return record, run_id


def _key_reader(control: StepTestControl) -> Any:
    def read() -> None:
        key = sys.stdin.readline().strip().lower()
        if key == "p":
            control.pause()
        elif key == "r":
            control.resume()
        elif key == "q":
            control.stop("stopped from the keyboard")

    return read


def _run(args: argparse.Namespace) -> int:
    if args.preview:
        return _preview(args)
    record, run_id = asyncio.run(_run_test(args))
    if args.csv:
        record.to_csv(args.csv)
    summary = {
        "status": record.status.value,
        "message": record.message,
        "samples": record.n_samples,
        "plan_samples_done": record.plan_samples_done,
        "plan_samples_skipped": record.plan_samples_skipped,
        "back_offs": record.back_off_events,
        "events": list(record.events),
        "run_id": run_id,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"steptest {record.status.value}: {record.n_samples} samples, "
            f"{record.back_off_events} back-off(s), plan {record.plan_samples_done} samples "
            f"({record.plan_samples_skipped} skipped after back-offs)"
            + (f"; historian run {run_id}" if run_id is not None else "")
            + (f"; {record.message}" if record.message else "")
        )
        for ev in record.events:
            print(f"  {ev}")
    return EXIT_CODES[record.status]


def register(sub: Any) -> None:
    """Add the ``steptest`` command."""
    p = sub.add_parser(
        "steptest",
        help="step-test a unit (plan in engineering units, CV back-off, historian)",
        description=(__doc__ or "").split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", help="application config (TOML): [plant], [transport], [historian]")
    p.add_argument("plan", type=Path, help="step-test plan (TOML)")
    p.add_argument(
        "--preview",
        nargs="?",
        const=True,
        default=None,
        metavar="PNG",
        help="draw the plan and predicted CVs (default PLAN.png); writes nothing to the plant",
    )
    p.add_argument(
        "--model",
        help="model for the preview's prediction (registry name or "
        "identified-model file; default: the app's [plant])",
    )
    p.add_argument("--csv", type=Path, help="also write the record as CSV")
    p.add_argument(
        "--print-every",
        type=int,
        default=20,
        help="progress line every N samples (0: only on events; default 20)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_run)
