"""System identification: test signals, data preparation, FOPDT, MIMO ARX, subspace, validation.

Typical use (step-test data ``t``, ``u``, ``y`` logged from a plant or simulator)::

    data = prepare(t, u, y, u_names=("v1", "v2"), y_names=("h1", "h2"), sample_time_s=5.0)
    est, _ = data.split(0.7)
    fit = n4sid(est)                                   # or fit_arx(est), fit_fopdt(est)
    report = validate(fit.model, data, score_from=est.n_samples)
    fit.model.save("tank.json")                       # JSON, never pickle
    plant = plant_models.library.load("tank.json")    # discrete-time PlantModel

Also: :func:`read_csv` (logged data and historian exports), :func:`estimate_parameters`
(gray-box: a PlantModel's parameters with confidence intervals), step responses with
confidence bands (:func:`arx_step_bands`, :func:`bootstrap_step_bands`) and PNG plots
(:mod:`plant_models.identification.plots`).

The identified model is a discrete-time :class:`~plant_models.model.PlantModel`
with its sample time; dead times are states (input buffers).
"""

from plant_models.identification.arx import ArxFit, fit_arx
from plant_models.identification.csv_import import LoggedData, read_csv
from plant_models.identification.data import DataError, Detrend, IdData, prepare
from plant_models.identification.excitation import (
    ExcitationSpec,
    SignalKind,
    design_experiment,
    gbn,
    prbs,
)
from plant_models.identification.fopdt import FopdtChannel, FopdtFit, fit_fopdt, simulate_channel
from plant_models.identification.grey_box import ParameterEstimate, estimate_parameters
from plant_models.identification.linear_model import IdentifiedModel
from plant_models.identification.subspace import SubspaceFit, n4sid
from plant_models.identification.uncertainty import (
    StepResponseBands,
    arx_step_bands,
    bootstrap_step_bands,
    step_response,
)
from plant_models.identification.validation import (
    ResidualTest,
    ValidationReport,
    fit_percent,
    relative_gain_array,
    validate,
)

__all__ = [
    "ArxFit", "DataError", "Detrend", "ExcitationSpec", "FopdtChannel", "FopdtFit", "IdData",
    "IdentifiedModel", "ResidualTest", "SignalKind", "SubspaceFit", "ValidationReport",
    "design_experiment", "fit_arx", "fit_fopdt", "fit_percent", "gbn", "n4sid", "prbs",
    "prepare", "relative_gain_array", "simulate_channel", "validate",
    "LoggedData", "ParameterEstimate", "StepResponseBands", "arx_step_bands",
    "bootstrap_step_bands", "estimate_parameters", "read_csv", "step_response",
]
