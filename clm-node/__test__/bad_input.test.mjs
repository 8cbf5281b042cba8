// Bad input through the binding: a rejection with an Error carrying a code
// (a TypeError for JS values with no JSON form), never a crash.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { clm as addon, openTemporary } from './support.mjs'

const { Clm, Actor } = addon
let t, clm, system, ca

before(async () => {
  t = await openTemporary()
  clm = t.clm
  system = clm.systemActor()
  ca = await clm.createRootCa(system, { subject: { common_name: 'Bad Input Root' } })
})
after(() => t.cleanup())

const code = (c) => (err) => {
  assert.ok(err instanceof Error, `${err} is an Error`)
  assert.equal(err.code, c, err.message)
  return true
}
const typeError = (err) => {
  assert.ok(err instanceof TypeError, `${err} is a TypeError`)
  assert.equal(err.code, 'INVALID_INPUT')
  return true
}

test('wrong JSON types and values reject with INVALID_INPUT naming the field', async () => {
  await assert.rejects(clm.exportPrivateKey(system, 'not-a-uuid'), code('INVALID_INPUT'))
  await assert.rejects(clm.exportPrivateKey(system, '00000000-0000-0000-0000-000000000000'), code('NOT_FOUND'))
  await assert.rejects(clm.revokeCertificate(system, ca.certificate.id, 'no_such_reason'), code('INVALID_INPUT'))
  await assert.rejects(clm.createRootCa(system, 'CN=x'), code('INVALID_INPUT'))
  await assert.rejects(clm.createUser(system, { username: 5, email: 'x@example.com' }),
    (err) => code('INVALID_INPUT')(err) && /username/.test(err.message))
  await assert.rejects(clm.createUser(system, { username: 'u', email: 'u@example.com', nope: 1 }),
    (err) => code('INVALID_INPUT')(err) && /nope/.test(err.message))
  await assert.rejects(clm.listUsers(system, { status: 'sleeping' }), code('INVALID_INPUT'))
  await assert.rejects(clm.listUsers(system, null, { limit: -1 }), code('INVALID_INPUT'))
  await assert.rejects(clm.issueCertificate(system, { issuer_id: ca.certificate.id, validity_days: 1.5 }),
    code('INVALID_INPUT'))
  await assert.rejects(clm.generateCrl(system, 42), code('INVALID_INPUT'))
})

test('missing arguments reject with INVALID_INPUT', async () => {
  await assert.rejects(clm.createRootCa(system), code('INVALID_INPUT'))
  await assert.rejects(clm.createRootCa(system, undefined), code('INVALID_INPUT'))
  await assert.rejects(clm.createRootCa(system, null), code('INVALID_INPUT'))
  await assert.rejects(clm.getCertificate(system), (err) => code('INVALID_INPUT')(err) && /id/.test(err.message))
  await assert.rejects(clm.authenticate(), code('INVALID_INPUT'))
})

test('a missing or wrong actor is a TypeError', async () => {
  await assert.rejects(clm.getCertificate(undefined, ca.certificate.id), typeError)
  await assert.rejects(clm.getCertificate({}, ca.certificate.id), typeError)
  await assert.rejects(clm.getCertificate('system', ca.certificate.id), typeError)
  await assert.rejects(clm.getCertificate(clm, ca.certificate.id), typeError)
  await assert.rejects(clm.getCertificate(Object.create(Actor.prototype), ca.certificate.id), typeError)
})

test('JS values with no JSON form are a TypeError', async () => {
  const cyclic = { subject: { common_name: 'x' } }
  cyclic.subject.self = cyclic
  await assert.rejects(clm.createRootCa(system, cyclic), typeError)
  await assert.rejects(clm.createRootCa(system, { subject: { common_name: () => 'x' } }), typeError)
  await assert.rejects(clm.createRootCa(system, { subject: { common_name: Symbol('x') } }), typeError)
  await assert.rejects(clm.createRootCa(system, { subject: { common_name: 'x' }, validity_days: 10n }), typeError)
  await assert.rejects(clm.createRootCa(system, { subject: { common_name: 'x' }, validity_days: NaN }), typeError)
  await assert.rejects(clm.importCertificates(system, { pem: Buffer.from('x') }), typeError)
  await assert.rejects(clm.rotateDataKey(system, 1, 1, 'not a function'), typeError)
  let deep = {}
  for (let i = 0; i < 200; i++) deep = { deep }
  await assert.rejects(clm.createUser(system, deep), typeError)
})

test('a Date is a timestamp, an undefined property is left out', async () => {
  const page = await clm.searchCertificates(system, {
    expires_after: new Date(0), common_name: undefined,
  })
  assert.ok(page.items.some((c) => c.id === ca.certificate.id))
  await assert.rejects(clm.searchCertificates(system, { expires_after: new Date(NaN) }), typeError)
})

test('garbage PEM and DER are refused with a code', async () => {
  const garbage = '-----BEGIN CERTIFICATE REQUEST-----\ngarbage\n-----END CERTIFICATE REQUEST-----'
  await assert.rejects(clm.issueCertificate(system, {
    issuer_id: ca.certificate.id, validity_days: 30, csr: garbage, subject: { common_name: 'x' },
  }), (err) => err instanceof Error && ['INVALID_INPUT', 'CRYPTO'].includes(err.code))
  for (const input of [
    { pem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' },
    { pem: 'not pem at all' },
    { der_base64: 'bm90IGRlcg==' },
    { der_base64: '%%%' },
    { pem: 'x', der_base64: 'eA==' },
  ]) {
    await assert.rejects(clm.importCertificates(system, input),
      (err) => err instanceof Error && ['INVALID_INPUT', 'CRYPTO'].includes(err.code), JSON.stringify(input))
  }
})

test('open refuses bad options with a code', async () => {
  await assert.rejects(Clm.open({ sqlite_dir: t.dir }), code('INVALID_INPUT'))
  await assert.rejects(Clm.open({ sqlite_dir: t.dir, master_key: 'short' }), code('CONFIGURATION'))
  await assert.rejects(Clm.open(), code('INVALID_INPUT'))
  await assert.rejects(Clm.open('sqlite://x'), code('INVALID_INPUT'))
  await assert.rejects(Clm.open({ sqlite_dir: t.dir, master_key_file: () => 1 }), typeError)
  const keyFile = join(t.dir, 'ttl.key')
  await assert.rejects(
    Clm.open({ sqlite_dir: join(t.dir, 'ttl'), master_key_file: keyFile, create_master_key: true, cache_ttl_ms: -1 }),
    (err) => /cache_ttl_ms/.test(err.message),
  )
  await assert.rejects(
    Clm.open({ secure_url: 'postgres://u@127.0.0.1:1/a', core_url: 'postgres://u@127.0.0.1:1/b', master_key_file: keyFile, create_master_key: true, sslmode: 'strict' }),
    (err) => err.code === 'INVALID_INPUT' && /sslmode/.test(err.message) && /verify-full/.test(err.message),
  )
  await assert.rejects(
    Clm.open({ sqlite_dir: join(t.dir, 'tls'), master_key_file: keyFile, create_master_key: true, sslmode: 'require' }),
    (err) => err.code === 'CONFIGURATION' && /PostgreSQL/.test(err.message),
  )
  const uncached = await Clm.open({
    sqlite_dir: join(t.dir, 'ttl'), master_key_file: keyFile, create_master_key: true, cache_ttl_ms: 0,
  })
  await uncached.close()
})

test('a closed handle rejects every call with CLOSED', async () => {
  const other = await Clm.open({
    sqlite_dir: join(t.dir, 'other'), master_key_file: join(t.dir, 'other.key'), create_master_key: true,
  })
  const actor = other.systemActor()
  await other.close()
  await other.close()
  assert.throws(() => other.systemActor(), code('CLOSED'))
  await assert.rejects(other.createOrganization(actor, { org_code: 'X1', name: 'X' }), code('CLOSED'))
  await assert.rejects(other.listUsers(actor), code('CLOSED'))
  await assert.rejects(other.authenticate('a', 'b'), code('CLOSED'))
  // The actor of a closed handle is still an actor: the open handle takes it.
  await clm.listOrganizations(actor)
})

test('methods called on something else than a Clm throw, never crash', () => {
  assert.throws(() => Clm.prototype.listUsers.call({}, system))
  assert.throws(() => new Clm())
})
