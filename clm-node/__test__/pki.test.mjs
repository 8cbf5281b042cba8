// The first slice of the service API as a Node user drives it; every
// certificate and CRL is checked with the openssl command.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const require = createRequire(import.meta.url)
// CLM_NODE_PACKAGE points at an installed package (dist/node); default: this folder.
const { Clm, Actor, errorCodes, operations } = require(process.env.CLM_NODE_PACKAGE ?? '..')

const dir = mkdtempSync(join(tmpdir(), 'clm-node-'))
let clm, system, root, inter, policy

const openssl = (args, input) => spawnSync('openssl', args, { input, encoding: 'utf8' })

before(async () => {
  clm = await Clm.open({
    sqlite_dir: join(dir, 'data'),
    master_key_file: join(dir, 'master.key'),
    create_master_key: true,
  })
  system = clm.systemActor()
  root = await clm.createRootCa(system, {
    subject: { common_name: 'Node Root', organization: 'Acme', country: 'US' },
    key_algorithm: 'ecdsa_p384',
    path_len: 1,
  })
  inter = await clm.createIntermediateCa(system, root.certificate.id, {
    subject: { common_name: 'Node Issuing CA' },
    path_len: 0,
    validity_days: 1825,
  })
  policy = await clm.createPolicy(system, {
    policy_code: 'TLS',
    name: 'TLS',
    rules: { max_validity_days: 397, allowed_domains: ['example.com'], allow_subdomains: true },
  })
})

after(async () => {
  await clm.close()
  rmSync(dir, { recursive: true, force: true })
})

const issue = (cn, extra = {}) =>
  clm.issueCertificate(system, {
    issuer_id: inter.certificate.id,
    policy_id: policy.id,
    validity_days: 90,
    subject: { common_name: cn },
    sans: [{ type: 'DNS', value: cn }, { type: 'IP', value: '127.0.0.1' }],
    kind: 'tls_server',
    ...extra,
  })

test('root, intermediate, server certificate and its key, revocation, CRL, audit', async () => {
  const server = await issue('server.example.com', { key_algorithm: 'rsa2048' })
  assert.equal(server.status, 'active')
  writeFileSync(join(dir, 'root.pem'), root.certificate.certificate_pem)
  writeFileSync(join(dir, 'intermediate.pem'), inter.certificate.certificate_pem)
  writeFileSync(join(dir, 'server.pem'), server.certificate_pem)
  execFileSync('openssl', ['verify', '-CAfile', join(dir, 'root.pem'),
    '-untrusted', join(dir, 'intermediate.pem'), join(dir, 'server.pem')])

  const key = await clm.exportPrivateKey(system, server.id)
  assert.match(key, /^-----BEGIN PRIVATE KEY-----/)
  assert.equal(openssl(['pkey', '-pubout'], key).stdout,
    openssl(['x509', '-noout', '-pubkey'], server.certificate_pem).stdout)

  const other = await issue('old.example.com')
  const revocation = await clm.revokeCertificate(system, other.id, 'superseded')
  assert.equal(revocation.revocation_reason, 'superseded')
  const crl = await clm.generateCrl(system, inter.certificate.id)
  assert.deepEqual(crl.entries.map((e) => e.certificate_id), [other.id])
  writeFileSync(join(dir, 'crl.pem'), crl.pem)
  const checked = openssl(['crl', '-in', join(dir, 'crl.pem'), '-CAfile', join(dir, 'intermediate.pem'), '-noout', '-text'])
  assert.equal(checked.status, 0)
  assert.match(checked.stderr + checked.stdout, /verify OK/)
  assert.ok(checked.stdout.replaceAll(':', '').includes(other.serial_number.toUpperCase()))

  for (const log of ['secure', 'core']) {
    const report = await clm.verifyAuditChain(system, log)
    assert.equal(report.broken, null)
    assert.ok(report.rows_checked > 0)
  }
})

test('users, sessions and organizations', async () => {
  const org = await clm.createOrganization(system, { org_code: 'ACME', name: 'Acme' })
  const user = await clm.createUser(system, {
    username: 'alice', email: 'alice@example.com',
    password: 'correct horse battery staple', organization_id: org.id,
  })
  assert.equal(user.password_hash, undefined)
  await assert.rejects(clm.authenticate('alice', 'wrong password!'), { code: 'AUTHENTICATION' })
  const login = await clm.authenticate('alice', 'correct horse battery staple')
  const actor = await clm.validateSession(login.token)
  assert.ok(actor instanceof Actor)
  assert.deepEqual(actor.describe(), {
    kind: 'user', user_id: user.id, session_id: login.session.id, organization_ids: [org.id],
  })
  await assert.rejects(clm.verifyAuditChain(actor, 'core'), { code: 'PERMISSION_DENIED' })
  await assert.rejects(clm.createOrganization(system, { org_code: 'ACME', name: 'Again' }),
    { code: 'ALREADY_EXISTS' })
})

test('bad input rejects with an Error and a code, never a crash', async () => {
  const id = inter.certificate.id
  await assert.rejects(clm.exportPrivateKey(system, 'not-a-uuid'), { code: 'INVALID_INPUT' })
  await assert.rejects(clm.exportPrivateKey(system, '00000000-0000-0000-0000-000000000000'),
    { code: 'NOT_FOUND' })
  await assert.rejects(clm.revokeCertificate(system, id, 'no_such_reason'), { code: 'INVALID_INPUT' })
  // undefined where a value is required: napi throws (code InvalidArg) before any work.
  assert.throws(() => clm.createRootCa(system, undefined), Error)
  await assert.rejects(clm.createRootCa(system, null), { code: 'INVALID_INPUT' })
  await assert.rejects(clm.createRootCa(system, 'CN=x'), { code: 'INVALID_INPUT' })
  await assert.rejects(clm.createUser(system, { username: 5, email: 'x@example.com' }),
    { code: 'INVALID_INPUT' })
  await assert.rejects(issue('bad.example.com', {
    csr: '-----BEGIN CERTIFICATE REQUEST-----\ngarbage\n-----END CERTIFICATE REQUEST-----',
  }), (err) => err instanceof Error && err.code !== 'INTERNAL')
  await assert.rejects(async () => clm.createUser({}, { username: 'bob' }), Error)
  await assert.rejects(async () => clm.exportPrivateKey(system, undefined), Error)
  await assert.rejects(Clm.open({ sqlite_dir: dir }), { code: 'INVALID_INPUT' })
  await assert.rejects(Clm.open({ sqlite_dir: dir, master_key: 'short' }), { code: 'CONFIGURATION' })
})

test('close makes every later call fail with CLOSED', async () => {
  const other = await Clm.open({
    sqlite_dir: join(dir, 'other'), master_key_file: join(dir, 'other.key'), create_master_key: true,
  })
  const actor = other.systemActor()
  await other.close()
  await other.close()
  assert.throws(() => other.systemActor(), { code: 'CLOSED' })
  await assert.rejects(other.createOrganization(actor, { org_code: 'X1', name: 'X' }), { code: 'CLOSED' })
})

test('error codes and parity with bindings/operations.txt', () => {
  assert.equal(errorCodes().length, 12)
  const listed = readFileSync(new URL('../../bindings/operations.txt', import.meta.url), 'utf8')
    .split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
  assert.deepEqual(operations(), listed)
  const camel = (s) => s.replace(/_([a-z])/g, (_, c) => c.toUpperCase())
  const exposed = new Set([
    ...Object.getOwnPropertyNames(Clm.prototype),
    ...Object.getOwnPropertyNames(Clm),
  ].filter((n) => !['constructor', 'length', 'name', 'prototype', 'arguments', 'caller'].includes(n)))
  assert.deepEqual([...exposed].sort(), listed.map(camel).sort())
})
