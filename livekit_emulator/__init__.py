"""A faithful emulator of LiveKit's server control plane (Twirp API, grants, webhooks, egress and ingress).

Run it with ``python -m livekit_emulator``; see docs/livekit-emulator.md. ``livekit_emulator.testing`` starts it as a
subprocess for tests.
"""

from .config import EmulatorConfig

__all__ = ["EmulatorConfig", "__version__"]
__version__ = "0.1.0"
