"""One typed configuration for every loop: ``rtompc run``, ``simulate``, scenarios, campaigns,
the demo.

The application reads in this order: config (:func:`load_app`,
:func:`load_scenario`: TOML -> frozen pydantic models, every problem at once)
-> build the stack (:mod:`rtompc.config.build`) -> run the loop
(:mod:`rtompc.runtime`). ``AppConfig.model_json_schema()`` is the JSON Schema
of an application file, ``ScenarioConfig.model_json_schema()`` of a scenario.
"""

from rtompc.config.errors import ConfigProblems, Problem
from rtompc.config.load import load_app, load_scenario, read_toml, validate
from rtompc.config.model import (
    AppConfig,
    EconomicsSection,
    EstimatorSection,
    HistorianSection,
    LoopConfig,
    ModelRef,
    PlantConfig,
    RtoSection,
    SupervisionSection,
)
from rtompc.config.mpc_section import CvConfig, MpcSection, MvConfig
from rtompc.config.scenario import ScenarioConfig
from rtompc.config.transport import Security, TagsConfig, TransportConfig, TransportKind
from rtompc.config.upgrade import upgrade

__all__ = [
    "AppConfig",
    "ConfigProblems",
    "CvConfig",
    "EconomicsSection",
    "EstimatorSection",
    "HistorianSection",
    "LoopConfig",
    "ModelRef",
    "MpcSection",
    "MvConfig",
    "PlantConfig",
    "Problem",
    "RtoSection",
    "ScenarioConfig",
    "Security",
    "SupervisionSection",
    "TagsConfig",
    "TransportConfig",
    "TransportKind",
    "load_app",
    "load_scenario",
    "read_toml",
    "upgrade",
    "validate",
]
