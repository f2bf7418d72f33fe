"""level.dat: the world's gzip NBT settings file for Minecraft 1.21.4, written atomically.

The overworld is a flat generator whose layers continue the generated ground (bedrock at
y=-64, dirt, grass at ``ground_level``), so the land past the generated area is at the same
height. The nether and end use the vanilla noise generators.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

from nbtlib import Byte, Compound, File, Float, Int, List, Long, String

from arnisd.anvil.region import atomic_write

DATA_VERSION = 4189
VERSION_NAME = "1.21.4"
ANVIL_VERSION = 19133
MIN_Y_BLOCKS = -64
GAME_TYPE_CREATIVE = 1
DIFFICULTY_NORMAL = 2
GAME_RULES = {"spawnRadius": "0"}        # players appear exactly at the spawn point


def flat_layers(ground_level: int) -> list[tuple[str, int]]:
    """(block, height) layers, bottom up: bedrock at -64, dirt, grass_block at ground_level."""
    if ground_level < MIN_Y_BLOCKS + 1:
        raise ValueError(f"ground_level must be at least {MIN_Y_BLOCKS + 1}, got {ground_level}")
    dirt_height = ground_level - (MIN_Y_BLOCKS + 1)
    layers = [("minecraft:bedrock", 1)]
    if dirt_height > 0:
        layers.append(("minecraft:dirt", dirt_height))
    layers.append(("minecraft:grass_block", 1))
    return layers


def _dimensions(ground_level: int) -> Compound:
    layers = List[Compound]([Compound({"block": String(block), "height": Int(height)})
                             for block, height in flat_layers(ground_level)])
    overworld = Compound({
        "type": String("minecraft:overworld"),
        "generator": Compound({
            "type": String("minecraft:flat"),
            "settings": Compound({
                "layers": layers,
                "biome": String("minecraft:plains"),
                "features": Byte(0),
                "lakes": Byte(0),
                "structure_overrides": List[String]([]),
            }),
        }),
    })
    nether = Compound({
        "type": String("minecraft:the_nether"),
        "generator": Compound({
            "type": String("minecraft:noise"),
            "settings": String("minecraft:nether"),
            "biome_source": Compound({"type": String("minecraft:multi_noise"),
                                      "preset": String("minecraft:nether")}),
        }),
    })
    end = Compound({
        "type": String("minecraft:the_end"),
        "generator": Compound({
            "type": String("minecraft:noise"),
            "settings": String("minecraft:end"),
            "biome_source": Compound({"type": String("minecraft:the_end")}),
        }),
    })
    return Compound({"minecraft:overworld": overworld, "minecraft:the_nether": nether,
                     "minecraft:the_end": end})


def level_data(level_name: str, spawn: tuple[int, int, int], ground_level: int = -62,
               last_played_ms: int = 0, seed: int = 0) -> Compound:
    """The ``Data`` compound of level.dat."""
    spawn_x, spawn_y, spawn_z = spawn
    return Compound({
        "DataVersion": Int(DATA_VERSION),
        "version": Int(ANVIL_VERSION),
        "Version": Compound({"Id": Int(DATA_VERSION), "Name": String(VERSION_NAME),
                             "Series": String("main"), "Snapshot": Byte(0)}),
        "LevelName": String(level_name),
        "GameType": Int(GAME_TYPE_CREATIVE),
        "hardcore": Byte(0),
        "Difficulty": Byte(DIFFICULTY_NORMAL),
        "DifficultyLocked": Byte(0),
        "allowCommands": Byte(1),
        "initialized": Byte(1),
        "SpawnX": Int(spawn_x),
        "SpawnY": Int(spawn_y),
        "SpawnZ": Int(spawn_z),
        "SpawnAngle": Float(0.0),
        "LastPlayed": Long(last_played_ms),
        "Time": Long(0),
        "DayTime": Long(6000),                   # noon
        "raining": Byte(0),
        "rainTime": Int(0),
        "thundering": Byte(0),
        "thunderTime": Int(0),
        "clearWeatherTime": Int(0),
        "WasModded": Byte(0),
        "ServerBrands": List[String]([String("arnisd")]),
        "DataPacks": Compound({"Enabled": List[String]([String("vanilla")]),
                               "Disabled": List[String]([])}),
        "GameRules": Compound({k: String(v) for k, v in GAME_RULES.items()}),
        "WorldGenSettings": Compound({
            "seed": Long(seed),
            "generate_features": Byte(0),
            "bonus_chest": Byte(0),
            "dimensions": _dimensions(ground_level),
        }),
    })


def write_level_dat(world_dir: Path, level_name: str, spawn: tuple[int, int, int],
                    ground_level: int = -62, last_played_ms: int = 0, seed: int = 0) -> Path:
    """Write ``world_dir/level.dat`` atomically (temporary file + rename) and return its path."""
    world_dir = Path(world_dir)
    world_dir.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    File({"Data": level_data(level_name, spawn, ground_level, last_played_ms, seed)}).write(buffer)
    payload = gzip.compress(buffer.getvalue(), mtime=0)
    path = world_dir / "level.dat"
    atomic_write(path, [payload])
    return path
