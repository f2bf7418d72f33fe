"""arnisd: OpenStreetMap to Minecraft Java Edition worlds, generated on a cluster of machines."""

__version__ = "0.1.0"
