// setLogger: clm's records reach a JS callback with the operations' spans
// and outcomes, never a password, stop on null, and a registered logger
// does not keep the process alive.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { clm as addon, openTemporary, packageDir } from './support.mjs'

const { setLogger, isClmError } = addon

/** Resolves once the JS thread has run the callbacks queued so far. */
const drain = () => new Promise((resolve) => setTimeout(resolve, 50))

test('records carry the operations and never the password', async () => {
  const records = []
  setLogger((record) => records.push(record), 'debug')
  const t = await openTemporary()
  try {
    const system = t.clm.systemActor()
    const password = `Node-Log-${process.pid}-staple-horse`
    await t.clm.createUser(system, { username: 'nodelog', email: 'nodelog@example.com', password })
    await assert.rejects(t.clm.authenticate('nodelog', `${password}-wrong`), (e) => e.code === 'AUTHENTICATION')
    const login = await t.clm.authenticate('nodelog', password)
    await drain()
    const text = records.map((r) => `${r.level} ${r.target} ${r.message}`).join('\n')
    assert.ok(
      records.some((r) => r.level === 'info' && r.target === 'clm::service::identity'
        && r.message.startsWith('create_user{actor=system}: finished outcome=ok duration_ms=')),
      text,
    )
    assert.ok(text.includes('authenticate{}: finished outcome=authentication failed'), text)
    assert.ok(records.some((r) => r.level === 'debug' && r.message.includes('transaction{')), text)
    assert.ok(!records.some((r) => r.level === 'trace'), 'nothing below the level')
    assert.ok(!text.includes(password), 'the password is in no record')
    assert.ok(!text.includes(login.token), 'the session token is in no record')

    setLogger(null)
    await drain()
    const before = records.length
    await t.clm.listUsers(system)
    await drain()
    assert.equal(records.length, before, 'no record after setLogger(null)')
  } finally {
    setLogger(null)
    await t.cleanup()
  }
})

test('bad arguments are refused by name', () => {
  assert.throws(() => setLogger(() => {}, 'loud'), (e) => isClmError(e) && e.code === 'INVALID_INPUT' && e.field === 'level')
  assert.throws(() => setLogger(42), (e) => e instanceof TypeError && e.field === 'callback')
})

test('a registered logger does not keep the process alive', () => {
  const script = `const { setLogger } = require(${JSON.stringify(packageDir)}); setLogger(() => {}, 'trace')`
  const child = spawnSync(process.execPath, ['-e', script], { timeout: 30000, encoding: 'utf8' })
  assert.equal(child.error, undefined, 'the process exited by itself')
  assert.equal(child.status, 0, child.stderr)
})
