"""Ready-made controller configurations for the reference plants.

:func:`do_mpc_cstr_config` is do-mpc's CSTR example (examples/CSTR,
``template_mpc.py`` of do-mpc 5.x; Fiedler et al., Control Eng. Practice 140,
2023) for ``plant_models.library.load("van_de_vusse", parameters="do_mpc")``,
converted to SI and to this package's scaled weights:

- horizon 20, t_step 0.005 h = 18 s, Radau collocation of degree 2;
- stage and terminal cost ``(c_B - 0.6 mol/l)^2``: weight 1 on ``(c_b - 600)/1000``
  (the c_b nominal is 1000 mol/m^3);
- ``rterm(F=0.1, Q_dot=1e-3)`` acts in do-mpc on inputs scaled by 100 1/h and
  2000 kJ/h; with nominals 20 1/h and 2000 kJ/h this is ``move_weight`` 0.1*(20/100)^2
  = 0.004 for ``f_dil`` and 1e-3 for ``q_k``;
- soft ``T_R <= 140 °C`` with penalty 1e2 per K: L1 weight 1e2 * 400 K (nominal);
- input bounds are the model's (F/V in [5, 100] 1/h, Q_K in [-8500, 0] kJ/h);
- robust: ``alpha in (1, 1.05, 0.95)``, ``beta in (1, 1.1, 0.9)``, 9 scenarios.

The example's hard state bounds (c_A, c_B in [0.1, 2] mol/l, T_R >= 50 °C,
T_K in [50, 140] °C) are not part of this configuration (the controller has
soft CV limits only); they are inactive along the example's closed loop.
"""

from __future__ import annotations

from mpc.config import CvSpec, Discretisation, MpcConfig, MvSpec, RobustSpec

C0 = 273.15
"""0 °C in K."""


def do_mpc_cstr_config(
    *, robust: bool = False, discretisation: Discretisation = Discretisation.COLLOCATION,
    **overrides: object,
) -> MpcConfig:
    """do-mpc's CSTR example as an :class:`MpcConfig` (see the module docstring)."""
    args: dict[str, object] = dict(
        horizon_steps=20,
        sample_time_s=0.005 * 3600.0,
        cvs=(
            CvSpec("c_b", weight=1.0, target=600.0),
            CvSpec("t_r", upper=140.0 + C0, l1_penalty=1e2 * 400.0),
        ),
        mvs=(MvSpec("f_dil", move_weight=0.1 * (20.0 / 100.0) ** 2),
             MvSpec("q_k", move_weight=1e-3)),
        discretisation=discretisation,
        collocation_degree=2,
        terminal_weight=1.0,
        robust=RobustSpec((("alpha", (1.0, 1.05, 0.95)), ("beta", (1.0, 1.1, 0.9))))
        if robust else None,
    )
    args.update(overrides)
    return MpcConfig(**args)  # type: ignore[arg-type]
