// Parity: every operation of the API description (bindings/api.json) is a
// method of Clm, the generated index.d.ts declares it with types (no
// `any`), and the type-checked __test__/typed.ts calls it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { camel, clm, packageDir } from './support.mjs'

const { Clm, Actor, operations, errorCodes, version } = clm
const table = operations()
const HANDLE_STATIC = new Set(['open', 'version'])

test('the operation table is the API description\'s', () => {
  const description = JSON.parse(readFileSync(new URL('../../bindings/api.json', import.meta.url), 'utf8'))
  assert.deepEqual(table.map((op) => op.name), description.operations.map((op) => op.name))
  assert.ok(table.length >= 90, `only ${table.length} operations`)
  for (const op of table) {
    assert.equal(op.js_name, camel(op.name))
    assert.equal(typeof op.summary, 'string')
    assert.ok(Array.isArray(op.arguments))
  }
  assert.ok(table.some((op) => op.name === 'rotate_data_key'))
})

test('every operation is a method of Clm', () => {
  const missing = table.filter((op) => {
    const owner = HANDLE_STATIC.has(op.name) ? Clm : Clm.prototype
    return typeof owner[op.js_name] !== 'function'
  })
  assert.deepEqual(missing.map((op) => op.name), [])
  // And nothing else: the methods are exactly the table's.
  const methods = Object.getOwnPropertyNames(Clm.prototype).filter((n) => n !== 'constructor')
  const names = new Set(table.map((op) => op.js_name))
  assert.deepEqual(methods.filter((m) => !names.has(m)), [])
})

test('index.d.ts declares every method with types', () => {
  const dts = readFileSync(join(packageDir, 'index.d.ts'), 'utf8')
  const start = dts.indexOf('export declare class Clm')
  assert.ok(start >= 0, 'class Clm is declared')
  const body = dts.slice(start, dts.indexOf('\n}', start))
  for (const op of table) {
    const prefix = HANDLE_STATIC.has(op.name) ? `static ${op.js_name}(` : `${op.js_name}(`
    const line = body.split('\n').find((l) => l.trim().startsWith(prefix))
    assert.ok(line, `index.d.ts lacks ${prefix}`)
    assert.doesNotMatch(line, /\bany\b|: unknown\b/, `${op.name}: ${line.trim()}`)
    if (!['version', 'system_actor'].includes(op.name)) assert.match(line, /: Promise<.+>$/, line)
    for (const param of op.arguments) {
      if (op.name === 'open') continue
      // `new` is a reserved word in JS: that argument is `input`.
      const name = param.name === 'new' ? 'input' : camel(param.name)
      assert.match(line, new RegExp(`\\b${name}\\??:`), `${op.name} names ${param.name}`)
    }
  }
  // The records and inputs of the header are there.
  for (const name of ['interface Certificate ', 'interface Page<T>', 'interface IssueInput', 'type IssuanceOutcome']) {
    assert.ok(dts.includes(name), name)
  }
  // Declarations only: the doc comments are prose ("...: any edit").
  const declarations = dts.split('\n').filter((l) => !/^\s*(\/\*\*|\*)/.test(l)).join('\n')
  assert.doesNotMatch(declarations, /:\s*any\b/)
})

test('the type-checked program calls every method of Clm', () => {
  const typed = readFileSync(fileURLToPath(new URL('typed.ts', import.meta.url)), 'utf8')
  const uncalled = table.filter((op) => {
    const receiver = HANDLE_STATIC.has(op.name) ? 'Clm' : 'clm'
    return !typed.includes(`${receiver}.${op.js_name}(`)
  })
  assert.deepEqual(uncalled.map((op) => op.name), [])
})

test('error codes, version, actors', () => {
  assert.deepEqual(errorCodes(), [
    'NOT_FOUND', 'ALREADY_EXISTS', 'INVALID_INPUT', 'POLICY_VIOLATION', 'PERMISSION_DENIED',
    'CONFLICT', 'CRYPTO', 'DATABASE', 'AUTHENTICATION', 'CONFIGURATION', 'CLOSED', 'INTERNAL',
    'STORAGE_FULL',
  ])
  assert.match(version(), /^\d+\.\d+\.\d+/)
  assert.equal(Clm.version(), version())
  assert.equal(typeof Actor, 'function')
})
