"""Two-unit application texts shared by the multi-unit tests (Van de Vusse + quadruple tank)."""

from __future__ import annotations

REACTOR = """
[[unit]]
name = "reactor"
[unit.plant]
name = "van_de_vusse"
[unit.transport]
{reactor_transport}
[unit.loop]
mode = "on"
[unit.mpc]
solver = "rti"
horizon_steps = 20
sample_time_s = 20.0
[[unit.mpc.cvs]]
name = "c_b"
weight = 10.0
target = "1.0 mol/l"
[[unit.mpc.cvs]]
name = "t_r"
upper = 400.0
l1_penalty = 100.0
l2_penalty = 100.0
[[unit.mpc.mvs]]
name = "f_dil"
move_weight = 0.1
[[unit.mpc.mvs]]
name = "q_k"
move_weight = 0.1
[unit.estimator]
measured = ["c_b", "t_r", "t_k"]
output_disturbances = ["c_b"]
"""

TANKS = """
[[unit]]
name = "tanks"
[unit.plant]
name = "quadruple_tank"
[unit.transport]
{tanks_transport}
[unit.loop]
mode = "on"
[unit.mpc]
horizon_steps = 30
sample_time_s = 5.0
[[unit.mpc.cvs]]
name = "h1"
weight = 10.0
target = "13 cm"
[[unit.mpc.cvs]]
name = "h2"
weight = 10.0
target = 0.12783158
[[unit.mpc.mvs]]
name = "v1"
move_weight = 0.01
[[unit.mpc.mvs]]
name = "v2"
move_weight = 0.01
[unit.estimator]
measured = ["h1", "h2"]
output_disturbances = ["h1", "h2"]
"""

INPROCESS = 'kind = "inprocess"'


def site_text(
    historian: str | None = None,
    reactor_transport: str = INPROCESS,
    tanks_transport: str = INPROCESS,
    extra: str = "",
) -> str:
    """A two-unit application: reactor (Van de Vusse, 20 s) and tanks (quadruple tank, 5 s)."""
    head = f'[historian]\npath = "{historian}"\n' if historian else ""
    return (
        head
        + extra
        + REACTOR.format(reactor_transport=reactor_transport)
        + TANKS.format(tanks_transport=tanks_transport)
    )
