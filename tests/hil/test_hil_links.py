"""``[[link]]`` of a multi-unit bench: a stream between two units' plants (issue 16, steel site).

After every step of the source plant its noise-free output sets the sink plant's disturbance:
the reheating furnace's fired fuel power is the gas network's furnace demand, so the
network's furnace heat margin is supply minus what the furnace burns. Bad links name the
key and what was expected.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hil.config import load_benches, load_links
from hil.simulator import PlantSimulator, SimulatorConfig
from plant_models.errors import ConfigError
from plant_models.library import load
from rtompc.commands.hil import connect_links
from rtompc.steel_site_config import FURNACE, NETWORK, bench_text


def test_link_sets_the_sink_disturbance_after_every_source_step(tmp_path: Path) -> None:
    urls = {NETWORK: "opc.tcp://127.0.0.1:4871", FURNACE: "opc.tcp://127.0.0.1:4872"}
    bench = tmp_path / "bench.toml"
    bench.write_text(bench_text(urls))
    benches = load_benches(bench)
    (link,) = load_links(bench)
    assert link.source == (FURNACE, "fuel_power") and link.sink == (NETWORK, "furnace_demand")
    sims = {
        NETWORK: PlantSimulator(load("steel_energy", furnace="external"), SimulatorConfig(60.0)),
        FURNACE: PlantSimulator(load("reheating_furnace"), SimulatorConfig(300.0)),
    }
    assert set(benches) == set(sims)
    connect_links(sims, (link,))
    net, fur = sims[NETWORK], sims[FURNACE]
    m = net.model
    i_demand = net.measurement_names.index("furnace_demand")
    i_margin = net.measurement_names.index("furnace_heat_margin")
    # linked at once: the network sees the furnace's nominal draw (94.9 MW), not its own 95.07
    first = fur.true_output("fuel_power")
    assert first == pytest.approx(94.888e6, rel=1e-3)
    snap = net.step()
    assert snap.measurements[i_demand] == pytest.approx(first)
    supply = float(snap.measurements[net.measurement_names.index("furnace_fuel_power")])
    assert snap.measurements[i_margin] == pytest.approx(supply - first, rel=1e-9, abs=1.0)
    # the furnace fires harder (REMOTE setpoints): after its step the network's demand follows
    fur.request_mode(1)
    for name in ("q_gas_preheat", "q_gas_heating", "q_gas_soaking"):
        u0 = float(fur.model.nominal.u[fur.model.u.index(name)])
        fur.write_setpoint(name, 1.2 * u0)
    fur.step()
    after = fur.true_output("fuel_power")
    assert after > 1.05 * first
    snap = net.step()
    assert snap.measurements[i_demand] == pytest.approx(after)
    assert np.isfinite(snap.measurements).all() and "furnace_demand" in m.d


@pytest.mark.parametrize(
    ("link", "words"),
    [
        (
            'from = "oven.fuel_power"\nto = "steel.furnace_demand"',
            ["link[0].from", "steel, furnace"],
        ),
        ('from = "furnace.fuel"\nto = "steel.furnace_demand"', ["no output 'fuel'", "fuel_power"]),
        ('from = "furnace.fuel_power"\nto = "steel.steam_flow"', ["no disturbance 'steam_flow'"]),
        ('from = "furnace.fuel_power"\nto = "steel.furnace_demand"\nrate = 1', ["unknown key"]),
    ],
)
def test_bad_links_name_the_key(tmp_path: Path, link: str, words: list[str]) -> None:
    urls = {NETWORK: "opc.tcp://127.0.0.1:4871", FURNACE: "opc.tcp://127.0.0.1:4872"}
    text = bench_text(urls).split("[[link]]")[0] + "[[link]]\n" + link + "\n"
    bench = tmp_path / "bench.toml"
    bench.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_links(bench)
    for w in words:
        assert w in str(err.value), (w, str(err.value))
    assert str(bench) in str(err.value)
