"""The scheduler's public API (implemented in the `rtm.scheduling` package)."""

from rtm.scheduling import *  # noqa: F403
from rtm.scheduling import __all__  # noqa: F401
