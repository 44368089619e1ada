"""interfaces: the edge between the engine and a plant (see ../shared/DESIGN.md).

The seam is :class:`interfaces.plantio.PlantIO`; implementations:

- :class:`interfaces.inprocess.InProcessPlantIO` — lockstep simulation of a PlantModel;
- :class:`interfaces.opcua_client.OpcUaPlantIO` — OPC UA client for the HIL server or a PLC
  (settings in :mod:`interfaces.opcua_settings`, tag maps in :mod:`interfaces.tagmap`,
  engineering units in :mod:`interfaces.units`, connect-time node checks in
  :mod:`interfaces.node_checks`).

Every transport judges a write per MV the same way (:mod:`interfaces.mv_writes`).

Only the asyncua-free names are re-exported here, so ``import interfaces`` stays light.
"""

from interfaces.limits import MoveLimits
from interfaces.plantio import (
    LinkState,
    LockstepNotSupported,
    MvWriteStatus,
    PlantIO,
    PlantMode,
    ServerClock,
    WriteResult,
    WriteStatus,
)
from interfaces.quality import Issue
from interfaces.tagmap import HIL_NAMESPACE_URI, NodeRef, Tag, TagGroup, TagMap

__all__ = [
    "HIL_NAMESPACE_URI",
    "Issue",
    "LinkState",
    "LockstepNotSupported",
    "MoveLimits",
    "MvWriteStatus",
    "NodeRef",
    "PlantIO",
    "PlantMode",
    "ServerClock",
    "Tag",
    "TagGroup",
    "TagMap",
    "WriteResult",
    "WriteStatus",
]
