"""level.dat: every field the game needs, read back with nbtlib; flat layers; atomic write."""

from __future__ import annotations

import gzip

import nbtlib
import pytest

from arnisd.anvil import leveldat


def load(path) -> nbtlib.Compound:
    return nbtlib.load(path)["Data"]


def test_fields(tmp_path):
    path = leveldat.write_level_dat(tmp_path, "Kouvola", (12, -61, -40), ground_level=-62,
                                    last_played_ms=1_700_000_000_000, seed=42)
    assert path == tmp_path / "level.dat"
    assert path.read_bytes()[:2] == b"\x1f\x8b"                    # gzip
    data = load(path)
    assert isinstance(data["DataVersion"], nbtlib.Int) and data["DataVersion"] == 4189
    assert isinstance(data["version"], nbtlib.Int) and data["version"] == 19133
    assert dict(data["Version"]) == {"Id": 4189, "Name": "1.21.4", "Series": "main", "Snapshot": 0}
    assert isinstance(data["Version"]["Snapshot"], nbtlib.Byte)
    assert data["LevelName"] == "Kouvola"
    assert data["GameType"] == 1 and isinstance(data["GameType"], nbtlib.Int)
    assert data["allowCommands"] == 1 and isinstance(data["allowCommands"], nbtlib.Byte)
    assert data["initialized"] == 1 and isinstance(data["initialized"], nbtlib.Byte)
    assert data["hardcore"] == 0
    assert (data["SpawnX"], data["SpawnY"], data["SpawnZ"]) == (12, -61, -40)
    assert isinstance(data["SpawnAngle"], nbtlib.Float)
    assert isinstance(data["LastPlayed"], nbtlib.Long) and data["LastPlayed"] == 1_700_000_000_000
    assert isinstance(data["Time"], nbtlib.Long) and isinstance(data["DayTime"], nbtlib.Long)
    assert list(data["DataPacks"]["Enabled"]) == ["vanilla"]
    assert list(data["DataPacks"]["Disabled"]) == []
    assert all(isinstance(v, nbtlib.String) for v in data["GameRules"].values())

    gen = data["WorldGenSettings"]
    assert isinstance(gen["seed"], nbtlib.Long) and gen["seed"] == 42
    assert gen["generate_features"] == 0 and gen["bonus_chest"] == 0
    dims = gen["dimensions"]
    assert set(dims) == {"minecraft:overworld", "minecraft:the_nether", "minecraft:the_end"}
    over = dims["minecraft:overworld"]
    assert over["type"] == "minecraft:overworld"
    assert over["generator"]["type"] == "minecraft:flat"
    flat = over["generator"]["settings"]
    assert flat["biome"] == "minecraft:plains"
    assert flat["features"] == 0 and isinstance(flat["features"], nbtlib.Byte)
    assert flat["lakes"] == 0 and isinstance(flat["lakes"], nbtlib.Byte)
    assert [(str(l["block"]), int(l["height"])) for l in flat["layers"]] == [
        ("minecraft:bedrock", 1), ("minecraft:dirt", 1), ("minecraft:grass_block", 1)]
    nether = dims["minecraft:the_nether"]
    assert nether["type"] == "minecraft:the_nether"
    assert nether["generator"]["type"] == "minecraft:noise"
    assert nether["generator"]["settings"] == "minecraft:nether"
    assert dict(nether["generator"]["biome_source"]) == {"type": "minecraft:multi_noise",
                                                          "preset": "minecraft:nether"}
    end = dims["minecraft:the_end"]
    assert end["type"] == "minecraft:the_end"
    assert end["generator"]["type"] == "minecraft:noise"
    assert end["generator"]["settings"] == "minecraft:end"
    assert dict(end["generator"]["biome_source"]) == {"type": "minecraft:the_end"}


@pytest.mark.parametrize("ground_level", [-63, -62, 0, 64, 200])
def test_flat_layers_put_grass_at_ground_level(ground_level):
    layers = leveldat.flat_layers(ground_level)
    assert layers[0] == ("minecraft:bedrock", 1)
    assert layers[-1] == ("minecraft:grass_block", 1)
    assert all(block == "minecraft:dirt" for block, _ in layers[1:-1])
    top_y = -64 + sum(height for _, height in layers) - 1
    assert top_y == ground_level


def test_ground_level_below_the_world_is_rejected(tmp_path):
    with pytest.raises(ValueError):
        leveldat.write_level_dat(tmp_path, "x", (0, 0, 0), ground_level=-64)
    assert list(tmp_path.iterdir()) == []


def test_atomic_and_deterministic(tmp_path):
    first = leveldat.write_level_dat(tmp_path, "x", (0, -61, 0)).read_bytes()
    second = leveldat.write_level_dat(tmp_path, "x", (0, -61, 0)).read_bytes()
    assert first == second
    assert [p.name for p in tmp_path.iterdir()] == ["level.dat"]
    assert gzip.decompress(first)[:3] == b"\x0a\x00\x00"            # unnamed root compound
