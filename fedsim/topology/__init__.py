"""Decentralized topologies: graphs, mixing matrices, validation and spectral gaps."""

from fedsim.topology.edgelist import *  # noqa: F403
from fedsim.topology.generators import *  # noqa: F403
from fedsim.topology.gossip import *  # noqa: F403
from fedsim.topology.mixing import *  # noqa: F403
from fedsim.topology.spectral import *  # noqa: F403
from fedsim.topology.specs import *  # noqa: F403
from fedsim.topology.topology import *  # noqa: F403
from fedsim.topology.timevarying import *  # noqa: F403
from fedsim.topology.validate import *  # noqa: F403
