// Independent reader for the tests: reads blocks of a world with prismarine-provider-anvil.
//
// stdin:  {"world": "<dir>", "version": "1.21.4", "positions": [[x, y, z], ...]}
// stdout: [{"name": "grass_block", "properties": {"snowy": "false"}, "biome": "plains"}
//          or {"error": "..."}, ...]   (one entry per position, in order)
//
// The world under test is never opened for writing: prismarine-provider-anvil opens region
// files read-write and creates missing ones, so the needed region files are copied to a
// temporary folder first, and a position whose region file does not exist is an error.
// Palette entries are checked against the version's block list: an unknown block name, an
// unknown property or an invalid property value is an error for every position of that chunk.
'use strict'

const fs = require('fs')
const os = require('os')
const path = require('path')

function readStdin () {
  return fs.readFileSync(0, 'utf8')
}

function checkPaletteEntry (registry, entry) {
  const fullName = entry.Name
  const name = fullName.replace(/^minecraft:/, '')
  const block = registry.blocksByName[name]
  if (!block) throw new Error(`unknown block name ${fullName} in ${registry.version.minecraftVersion}`)
  const states = block.states || []
  for (const [key, value] of Object.entries(entry.Properties || {})) {
    const state = states.find(s => s.name === key)
    if (!state) throw new Error(`block ${fullName} has no property ${key}`)
    const text = String(value)
    let valid
    if (state.type === 'bool') valid = text === 'true' || text === 'false'
    else if (state.type === 'int') {
      valid = state.values ? state.values.includes(text) : /^\d+$/.test(text) && Number(text) < state.num_values
    } else valid = (state.values || []).includes(text)
    if (!valid) throw new Error(`block ${fullName}: invalid value ${text} for property ${key}`)
  }
}

function checkChunk (registry, raw) {
  const nbt = require('prismarine-nbt')
  const data = nbt.simplify(raw)
  for (const section of data.sections) {
    for (const entry of section.block_states.palette) checkPaletteEntry(registry, entry)
    for (const biome of section.biomes.palette) {
      if (!registry.biomesByName[biome.replace(/^minecraft:/, '')]) throw new Error(`unknown biome ${biome}`)
    }
  }
}

async function main () {
  const request = JSON.parse(readStdin())
  const version = request.version || '1.21.4'
  const registry = require('prismarine-registry')(version)
  const { Anvil: AnvilFor, chunk: chunkFor } = require('prismarine-provider-anvil')
  const Anvil = AnvilFor(version)
  const { nbtChunkToPrismarineChunk } = chunkFor(version)

  const sourceRegion = path.join(request.world, 'region')
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'arnisd-reader-'))
  const results = new Array(request.positions.length)
  try {
    // Group positions by chunk; copy each needed region file that exists.
    const byChunk = new Map()
    request.positions.forEach(([x, y, z], i) => {
      const key = `${x >> 4},${z >> 4}`
      if (!byChunk.has(key)) byChunk.set(key, [])
      byChunk.get(key).push(i)
    })
    const anvil = new Anvil(tmp)
    for (const [key, indices] of byChunk) {
      const [cx, cz] = key.split(',').map(Number)
      const regionName = `r.${cx >> 5}.${cz >> 5}.mca`
      const source = path.join(sourceRegion, regionName)
      const copy = path.join(tmp, regionName)
      let column = null
      let error = null
      try {
        if (!fs.existsSync(source)) throw new Error(`no region file ${regionName}`)
        if (!fs.existsSync(copy)) fs.copyFileSync(source, copy)
        const raw = await anvil.loadRaw(cx, cz)
        if (raw == null) throw new Error(`chunk ${cx},${cz} is not in ${regionName}`)
        checkChunk(registry, raw)
        column = nbtChunkToPrismarineChunk(raw)
      } catch (err) {
        error = err.message || String(err)
      }
      for (const i of indices) {
        if (error) { results[i] = { error }; continue }
        const [x, y, z] = request.positions[i]
        const pos = { x: x & 15, y, z: z & 15 }
        try {
          const block = column.getBlock(pos)
          const properties = Object.fromEntries(
            Object.entries(block.getProperties()).map(([k, v]) => [k, String(v)]))
          const biome = registry.biomes[column.getBiome(pos)]
          results[i] = { name: block.name, properties, biome: biome ? biome.name : null }
        } catch (err) {
          results[i] = { error: err.message || String(err) }
        }
      }
    }
    await anvil.close()
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
  process.stdout.write(JSON.stringify(results))
}

main().catch(err => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + '\n')
  process.exit(1)
})
