"""Skogestad's column A against its published steady state, gains and RGA.

Sources: Skogestad, Trans IChemE 75A (1997) 539-562, column A; Skogestad &
Postlethwaite, Multivariable Feedback Control (2005): x_D = 0.99, x_B = 0.01
at L = 2.70629, V = 3.20629 kmol/min; steady-state LV gain (y_D, x_B)/(L, V)
[[0.878, -0.864], [1.082, -1.096]] per kmol/min, RGA(1,1) = 35.1.
"""

from __future__ import annotations

import numpy as np
import pytest

from plant_models.library import load
from plant_models.library.distillation_column_a import (
    KMOL_PER_MIN,
    PUBLISHED_GAIN,
    PUBLISHED_RGA11,
)


@pytest.fixture(scope="module")
def column():
    return load("distillation_column_a")


def test_dimensions(column) -> None:
    assert len(column.x) == 82 and column.u.names == ("l_t", "v_b")
    assert column.d.names == ("f", "z_f")


def test_published_steady_state(column) -> None:
    ss = column.steady_state(u=[2.70629 * KMOL_PER_MIN, 3.20629 * KMOL_PER_MIN])
    y = column.y.mapping(ss.y)
    assert y["x_d"] == pytest.approx(0.99, abs=1e-4)
    assert y["x_b"] == pytest.approx(0.01, abs=1e-4)
    assert y["m_d"] == pytest.approx(500.0, rel=1e-6)  # 0.5 kmol


def test_steady_state_gain_and_rga(column) -> None:
    g = column.linearize().gain()[:2] * KMOL_PER_MIN  # per kmol/min, as published
    np.testing.assert_allclose(g, PUBLISHED_GAIN, rtol=0.01)
    rga11 = 1.0 / (1.0 - g[0, 1] * g[1, 0] / (g[0, 0] * g[1, 1]))
    assert rga11 == pytest.approx(PUBLISHED_RGA11, rel=0.05)


def test_gain_by_finite_steps_on_the_nonlinear_model(column) -> None:
    """Gain from steady states 1e-5 apart (central differences, not from the Jacobian)."""
    u0 = column.nominal.u
    cols = []
    for j in range(2):
        du = np.zeros(2)
        du[j] = 1e-5 * u0[j]
        hi = column.steady_state(u=u0 + du, x_guess=column.nominal.x).y[:2]
        lo = column.steady_state(u=u0 - du, x_guess=column.nominal.x).y[:2]
        cols.append((hi - lo) / (2 * du[j]))
    g = np.array(cols).T * KMOL_PER_MIN
    np.testing.assert_allclose(g, PUBLISHED_GAIN, rtol=0.02)


def test_more_stages_build() -> None:
    big = load("distillation_column_a", n_stages=125)
    assert len(big.x) == 250
    assert np.max(np.abs(big.rhs(x=big.nominal.x))) < 1e-9


def test_product_flows_close_the_mass_and_component_balances(column) -> None:
    """D + B = F and D x_D + B x_B = F z_F at steady states; q_reb = H_VAP * V."""
    from plant_models.library.distillation_column_a import H_VAP

    for d in ([1.0 * KMOL_PER_MIN, 0.5], [1.2 * KMOL_PER_MIN, 0.5], [1.0 * KMOL_PER_MIN, 0.6]):
        ss = column.steady_state(u=column.nominal.u, d=d, x_guess=column.nominal.x)
        y = column.y.mapping(ss.y)
        assert y["d_flow"] + y["b_flow"] == pytest.approx(d[0], rel=1e-9)
        assert y["d_flow"] * y["x_d"] + y["b_flow"] * y["x_b"] == pytest.approx(
            d[0] * d[1], rel=1e-8
        )
        assert y["q_reb"] == pytest.approx(H_VAP * column.nominal.u[1])
    # LV configuration: D = V - L at steady state (constant molar flows, total condenser)
    ss = column.steady_state(u=column.nominal.u)
    assert column.y.mapping(ss.y)["d_flow"] == pytest.approx(
        column.nominal.u[1] - column.nominal.u[0], rel=1e-9
    )
