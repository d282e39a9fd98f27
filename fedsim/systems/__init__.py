"""Systems heterogeneity on a simulated clock: device and network profiles, availability, deadlines.

Pure functions and small value objects on tensors; the algorithms ask them how long a client's
task takes, whether a client is online, and which clients make a round's deadline.
"""

from fedsim.systems.availability import AlwaysAvailable, Availability, DiurnalAvailability, TraceAvailability
from fedsim.systems.clock import EventQueue, deadline_outcome, steps_within
from fedsim.systems.profiles import NAMED_PROFILES, ClientProfiles, lognormal_profiles, read_profile_trace, task_times

__all__ = [
    "NAMED_PROFILES",
    "AlwaysAvailable",
    "Availability",
    "ClientProfiles",
    "DiurnalAvailability",
    "EventQueue",
    "TraceAvailability",
    "deadline_outcome",
    "lognormal_profiles",
    "read_profile_trace",
    "steps_within",
    "task_times",
]
