// Strict structural check of every chunk of a world, independent of arnisd's own code: region
// framing, zlib, NBT framing and the chunk fields a 1.21.4 server needs to load a chunk.
//
// argv:   <world dir> [data version]
// stdout: {"chunks": <count>, "regions": <count>, "problems": ["r.0.0.mca 3,4: ...", ...]}
//
// Read-only: region files are read with fs, inflated with Node's zlib and parsed with
// prismarine-nbt's big-endian protocol, which reports how many bytes the NBT took; with a few
// bytes appended, a missing end tag or trailing bytes are caught (the chunk loader in
// read_blocks.js, and prismarine-nbt alone, accept both).
'use strict'

const fs = require('fs')
const path = require('path')
const zlib = require('zlib')
const nbt = require('prismarine-nbt')

const SECTOR = 4096
const TRAILER = Buffer.from([1, 0, 0, 0]) // a byte tag with an empty name: never read if whole
const MIN_SECTION = -4
const MAX_SECTION = 19
const HEIGHTMAP_LONGS = 37 // 256 columns x 9 bits (384 blocks of height), 7 values per long
const HEIGHTMAPS = ['MOTION_BLOCKING', 'MOTION_BLOCKING_NO_LEAVES', 'OCEAN_FLOOR', 'WORLD_SURFACE']

function packedLongs (entries, bits) {
  return Math.ceil(entries / Math.floor(64 / bits))
}

function checkPaletted (where, container, entries, minBits) {
  const problems = []
  if (!container || container.type !== 'compound') return [`${where}: missing`]
  const palette = container.value.palette
  if (!palette || palette.type !== 'list' || palette.value.value.length === 0) {
    return [`${where}: empty or missing palette`]
  }
  const size = palette.value.value.length
  const data = container.value.data
  if (size === 1) {
    if (data) problems.push(`${where}: data present with a single-entry palette`)
    return problems
  }
  const bits = Math.max(minBits, Math.ceil(Math.log2(size)))
  if (!data || data.type !== 'longArray') return [`${where}: data missing for ${size} palette entries`]
  const expected = packedLongs(entries, bits)
  if (data.value.length !== expected) {
    problems.push(`${where}: ${data.value.length} longs of data, expected ${expected} (${bits} bits)`)
  }
  return problems
}

function checkChunk (root, cx, cz, dataVersion) {
  const problems = []
  const v = root.value
  const int = (name) => (v[name] && v[name].type === 'int' ? v[name].value : undefined)
  if (int('DataVersion') !== dataVersion) problems.push(`DataVersion ${int('DataVersion')}, expected ${dataVersion}`)
  if (int('xPos') !== cx || int('zPos') !== cz) problems.push(`position ${int('xPos')},${int('zPos')} in slot ${cx},${cz}`)
  if (int('yPos') !== MIN_SECTION) problems.push(`yPos ${int('yPos')}, expected ${MIN_SECTION}`)
  if (!v.Status || v.Status.value !== 'minecraft:full') problems.push(`Status ${v.Status && v.Status.value}`)
  const sections = v.sections
  if (!sections || sections.type !== 'list' || sections.value.type !== 'compound') {
    problems.push('sections missing or not a list of compounds')
  } else {
    const seen = new Set()
    for (const section of sections.value.value) {
      const y = section.Y && section.Y.type === 'byte' ? section.Y.value : undefined
      if (y === undefined || y < MIN_SECTION || y > MAX_SECTION) { problems.push(`section Y ${y}`); continue }
      if (seen.has(y)) problems.push(`section Y ${y} twice`)
      seen.add(y)
      problems.push(...checkPaletted(`section ${y} block_states`, section.block_states, 4096, 4))
      problems.push(...checkPaletted(`section ${y} biomes`, section.biomes, 64, 1))
    }
  }
  const heightmaps = v.Heightmaps
  if (!heightmaps || heightmaps.type !== 'compound') {
    problems.push('Heightmaps missing')
  } else {
    for (const name of HEIGHTMAPS) {
      const map = heightmaps.value[name]
      if (!map || map.type !== 'longArray' || map.value.length !== HEIGHTMAP_LONGS) {
        problems.push(`heightmap ${name}: ${map ? map.value.length : 'missing'}`)
      }
    }
  }
  return problems
}

function checkRegion (file, dataVersion, report) {
  const name = path.basename(file)
  const match = /^r\.(-?\d+)\.(-?\d+)\.mca$/.exec(name)
  if (!match) { report.problems.push(`${name}: not a region file name`); return }
  const [rx, rz] = [Number(match[1]), Number(match[2])]
  const data = fs.readFileSync(file)
  if (data.length < 2 * SECTOR || data.length % SECTOR !== 0) {
    report.problems.push(`${name}: ${data.length} bytes is not a whole number of sectors`)
    return
  }
  const used = new Set()
  for (let index = 0; index < 1024; index++) {
    const location = data.readUInt32BE(index * 4)
    if (location === 0) continue
    const cx = rx * 32 + (index % 32)
    const cz = rz * 32 + Math.floor(index / 32)
    const where = `${name} ${cx},${cz}`
    const offset = location >>> 8
    const count = location & 0xff
    if (offset < 2 || count === 0 || (offset + count) * SECTOR > data.length) {
      report.problems.push(`${where}: sectors ${offset}+${count} outside the file`)
      continue
    }
    for (let s = offset; s < offset + count; s++) {
      if (used.has(s)) report.problems.push(`${where}: sector ${s} shared with another chunk`)
      used.add(s)
    }
    const start = offset * SECTOR
    const length = data.readUInt32BE(start)
    const compression = data[start + 4]
    if (length < 1 || length + 4 > count * SECTOR) { report.problems.push(`${where}: length ${length} overruns its sectors`); continue }
    if (compression !== 2) { report.problems.push(`${where}: compression ${compression}, expected 2 (zlib)`); continue }
    let raw
    try {
      raw = zlib.inflateSync(data.subarray(start + 5, start + 4 + length))
    } catch (err) {
      report.problems.push(`${where}: zlib: ${err.message}`)
      continue
    }
    let parsed
    try {
      // prismarine-nbt ends a compound at the end of the buffer as if it had met the end
      // tag; bytes after the NBT (a byte tag here) make a missing end tag show as overrun
      parsed = nbt.protos.big.parsePacketBuffer('nbt', Buffer.concat([raw, TRAILER]))
    } catch (err) {
      report.problems.push(`${where}: NBT: ${err.message}`)
      continue
    }
    if (parsed.metadata.size !== raw.length) {
      report.problems.push(`${where}: NBT ends after ${parsed.metadata.size} of ${raw.length} bytes`)
    }
    if (parsed.data.type !== 'compound' || parsed.data.name !== '') {
      report.problems.push(`${where}: root is ${parsed.data.type} named ${JSON.stringify(parsed.data.name)}`)
      continue
    }
    for (const problem of checkChunk(parsed.data, cx, cz, dataVersion)) report.problems.push(`${where}: ${problem}`)
    report.chunks++
  }
  report.regions++
}

function main () {
  const world = process.argv[2]
  const dataVersion = Number(process.argv[3] || 4189)
  const regionDir = path.join(world, 'region')
  const report = { chunks: 0, regions: 0, problems: [] }
  for (const name of fs.readdirSync(regionDir).sort()) {
    if (name.endsWith('.mca')) checkRegion(path.join(regionDir, name), dataVersion, report)
  }
  report.problems = report.problems.slice(0, 200)
  process.stdout.write(JSON.stringify(report))
}

main()
