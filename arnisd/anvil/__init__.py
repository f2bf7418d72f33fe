"""Minecraft Anvil output: chunk encoding, region files, level.dat."""
