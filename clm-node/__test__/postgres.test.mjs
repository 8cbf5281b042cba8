// open and issue on fresh PostgreSQL databases (created here, dropped after).
// CLM_TEST_PG_HOST / CLM_TEST_PG_USER override 127.0.0.1 / postgres.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { clm as addon, openssl } from './support.mjs'

const host = process.env.CLM_TEST_PG_HOST ?? '127.0.0.1'
const user = process.env.CLM_TEST_PG_USER ?? 'postgres'
const suffix = randomBytes(4).toString('hex')
const names = [`clm_node_secure_${suffix}`, `clm_node_core_${suffix}`]
const url = (db) => `postgres://${user}@${host}:5432/${db}`
const pg = (tool, db) => spawnSync(tool, ['-h', host, '-U', user, db], { encoding: 'utf8' })

before(() => {
  for (const db of names) {
    const made = pg('createdb', db)
    assert.equal(made.status, 0, `createdb ${db}: ${made.stderr}`)
  }
})
after(() => {
  for (const db of names) pg('dropdb', db)
})

test('open, issue and reopen on PostgreSQL', async () => {
  const masterKey = randomBytes(32).toString('base64')
  const options = { secure_url: url(names[0]), core_url: url(names[1]), master_key: masterKey, max_connections: 4 }
  const clm = await addon.Clm.open(options)
  let cert, root
  try {
    const system = clm.systemActor()
    root = await clm.createRootCa(system, { subject: { common_name: 'PG Root' } })
    const outcome = await clm.issueCertificate(system, {
      issuer_id: root.certificate.id, validity_days: 30,
      subject: { common_name: 'pg.example.com' }, sans: [{ type: 'DNS', value: 'pg.example.com' }],
    })
    assert.equal(outcome.outcome, 'issued')
    cert = outcome.certificate
    const dir = mkdtempSync(join(tmpdir(), 'clm-node-pg-'))
    try {
      writeFileSync(join(dir, 'root.pem'), root.certificate.certificate_pem)
      writeFileSync(join(dir, 'leaf.pem'), cert.certificate_pem)
      const checked = openssl(['verify', '-CAfile', 'root.pem', 'leaf.pem'], { cwd: dir })
      assert.equal(checked.status, 0, checked.stdout + checked.stderr)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  } finally {
    await clm.close()
  }
  const again = await addon.Clm.open(options)
  try {
    const system = again.systemActor()
    assert.equal((await again.getCertificate(system, cert.id)).common_name, 'pg.example.com')
    assert.match(await again.exportPrivateKey(system, cert.id), /BEGIN PRIVATE KEY/)
    assert.equal((await again.verifyAuditChain(system, 'core')).broken, null)
  } finally {
    await again.close()
  }
  await assert.rejects(addon.Clm.open({ ...options, master_key: randomBytes(32).toString('base64') }),
    (err) => err instanceof Error && typeof err.code === 'string')
})
