"""PlantModel.resolve returns a fresh vector for the nominal default (no aliasing).

Writing into a defaulted vector (as InProcessPlantIO.set_disturbance does with its
disturbance vector) must never change the model's nominal point, which every other
user of the same PlantModel object relies on.
"""

from __future__ import annotations

import numpy as np

from interfaces.inprocess import InProcessPlantIO
from plant_models.library import load


def test_defaulted_vectors_are_copies() -> None:
    model = load("williams_otto")
    nominal = model.nominal.d.copy()
    d = model.resolve("d", None)
    d[0] = 0.9
    np.testing.assert_array_equal(model.nominal.d, nominal)
    io = InProcessPlantIO(model, 60.0)
    io.set_disturbance("f_a", 1.7)
    np.testing.assert_array_equal(model.nominal.d, nominal)
    np.testing.assert_array_equal(model.resolve("u", None), model.nominal.u)
