"""Ready-made controller configurations for the reference plants (CSTR, industrial_poly, column A).

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


def industrial_poly_config(*, robust: bool = False, **overrides: object) -> MpcConfig:
    """do-mpc's ``examples/industrial_poly/template_mpc.py`` for ``load("industrial_poly")``.

    Horizon 20, t_step 50 s, Radau collocation of degree 2 (do-mpc's default);
    economic stage and terminal cost ``-m_P`` (kg); ``rterm`` 0.002, 0.004,
    0.002 on the feed (do-mpc scaling 100 kg/h: ``cost_scale``, while the solver
    scales by the model's nominal 1e4 kg/h) and the two coolant inlet temperatures
    (``cost_scale`` 1 K); the example's state bounds as
    hard CV bounds (the outputs are the states); ``T_R <= 365.15 K`` soft with
    penalty 1e4 per K when nominal, hard when robust (as in the example); robust:
    ``delH_R`` and ``k_0`` at their nominal and +-30 %, 9 branches (``n_robust = 1``).
    """
    t_r_soft = CvSpec("t_r", upper=363.15 + 2.0, l1_penalty=1e4 * 360.0,  # 1e4 per K
                      hard_lower=363.15 - 2.0)
    t_r_hard = CvSpec("t_r", hard_lower=363.15 - 2.0, hard_upper=363.15 + 2.0)
    args: dict[str, object] = dict(
        horizon_steps=20,
        sample_time_s=50.0,
        cvs=(
            CvSpec("m_w", hard_lower=0.0),
            CvSpec("m_a", hard_lower=0.0),
            CvSpec("m_p", hard_lower=26.0, linear_cost=-1.0, terminal_linear_cost=-1.0),
            t_r_hard if robust else t_r_soft,
            CvSpec("t_s", hard_lower=298.0, hard_upper=400.0),
            CvSpec("tout_m", hard_lower=298.0, hard_upper=400.0),
            CvSpec("t_ek", hard_lower=288.0, hard_upper=400.0),
            CvSpec("tout_awt", hard_lower=288.0, hard_upper=400.0),
            CvSpec("accum_monom", hard_lower=0.0, hard_upper=30000.0),
            CvSpec("t_adiab", hard_upper=382.15),
        ),
        mvs=(MvSpec("m_dot_f", move_weight=0.002, cost_scale=100.0 / 3600.0),
             MvSpec("t_in_m", move_weight=0.004, cost_scale=1.0),
             MvSpec("t_in_ek", move_weight=0.002, cost_scale=1.0)),
        discretisation=Discretisation.COLLOCATION,
        collocation_degree=2,
        terminal_weight=1.0,
        robust=RobustSpec((("del_h_r", (950.0, 950.0 * 1.3, 950.0 * 0.7)),
                           ("k_0", (7.0, 7.0 * 1.3, 7.0 * 0.7)))) if robust else None,
        ipopt_fallback=False,
    )
    args.update(overrides)
    return MpcConfig(**args)  # type: ignore[arg-type]


def column_a_config(
    *, discretisation: Discretisation = Discretisation.RK4, horizon_steps: int = 30,
    **overrides: object,
) -> MpcConfig:
    """Composition control of Skogestad's column A (``load("distillation_column_a")``).

    Sample time 1 min, tracking of ``x_D`` and ``x_B`` with weights expressed per
    0.001 mole fraction (``cost_scale``), move penalties per mol/s, RK4 with 16
    substeps (the cheapest stable choice for the 4 s liquid-flow and level
    dynamics) or Radau collocation of degree 1. No IPOPT is built.
    """
    args: dict[str, object] = dict(
        horizon_steps=horizon_steps,
        sample_time_s=60.0,
        cvs=(CvSpec("x_d", weight=1.0, target=0.99, cost_scale=1e-3),
             CvSpec("x_b", weight=1.0, target=0.01, cost_scale=1e-3)),
        mvs=(MvSpec("l_t", move_weight=1.0, cost_scale=1.0),
             MvSpec("v_b", move_weight=1.0, cost_scale=1.0)),
        discretisation=discretisation,
        rk4_substeps=16,
        collocation_degree=1,
        ipopt_fallback=False,
    )
    args.update(overrides)
    return MpcConfig(**args)  # type: ignore[arg-type]
