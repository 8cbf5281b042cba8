// Errors keep their structure (code, number, field, violations, entity),
// and integers out of their schema's range are InvalidInput naming the field.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { clm as addon, openTemporary } from './support.mjs'

const { Clm, isClmError } = addon
let t, clm, system, ca, policy

before(async () => {
  t = await openTemporary()
  clm = t.clm
  system = clm.systemActor()
  ca = await clm.createRootCa(system, { subject: { common_name: 'Errors Root' } })
  policy = await clm.createPolicy(system, {
    policy_code: 'STRICT', name: 'Strict',
    rules: { max_validity_days: 30, renewal_threshold_days: 10, allowed_domains: ['example.com'], allowed_algorithms: ['ECDSA'] },
  })
})
after(() => t.cleanup())

/** The rejection of `promise`, which must reject. */
const rejection = async (promise) => {
  try {
    await promise
  } catch (error) {
    return error
  }
  assert.fail('expected a rejection')
}

test('a policy refusal lists every violated rule', async () => {
  const err = await rejection(clm.issueCertificate(system, {
    issuer_id: ca.certificate.id, policy_id: policy.id, validity_days: 90, key_algorithm: 'rsa2048',
    subject: { common_name: 'www.example.org' }, sans: [{ type: 'DNS', value: 'www.example.org' }],
  }))
  assert.ok(err instanceof Error)
  assert.ok(isClmError(err))
  assert.equal(err.code, 'POLICY_VIOLATION')
  assert.equal(err.number, 4)
  assert.equal(err.field, null)
  assert.equal(err.entity, null)
  assert.ok(Array.isArray(err.violations))
  const rules = err.violations.map((v) => v.rule)
  for (const rule of ['max_validity_days', 'allowed_algorithms', 'allowed_domains']) {
    assert.ok(rules.includes(rule), `${rule} in ${JSON.stringify(err.violations)}`)
  }
  for (const violation of err.violations) {
    assert.deepEqual(Object.keys(violation).sort(), ['message', 'rule'])
    assert.equal(typeof violation.message, 'string')
    assert.ok(err.message.includes(violation.message), err.message)
  }
  // Nothing was issued.
  const found = await clm.searchCertificates(system, { common_name: 'www.example.org' })
  assert.equal(found.items.length, 0)
})

test('InvalidInput names the field; NotFound and AlreadyExists name the entity', async () => {
  const invalid = await rejection(clm.createUser(system, { username: 5, email: 'x@example.com' }))
  assert.equal(invalid.code, 'INVALID_INPUT')
  assert.equal(invalid.number, 3)
  assert.equal(invalid.field, 'new.username')
  assert.deepEqual(invalid.violations, [])

  const missing = await rejection(clm.getCertificate(system, '00000000-0000-0000-0000-000000000000'))
  assert.equal(missing.code, 'NOT_FOUND')
  assert.equal(missing.number, 1)
  assert.equal(typeof missing.entity, 'string')
  assert.ok(missing.entity.length > 0)

  await clm.createOrganization(system, { org_code: 'DUP', name: 'Dup' })
  const duplicate = await rejection(clm.createOrganization(system, { org_code: 'DUP', name: 'Again' }))
  assert.equal(duplicate.code, 'ALREADY_EXISTS')
  assert.equal(duplicate.number, 2)
  assert.equal(typeof duplicate.entity, 'string')
  assert.match(duplicate.field, /org_code/)
})

test('a JS value with no JSON form is a TypeError with the same structure', async () => {
  const err = await rejection(clm.createRootCa(system, { subject: { common_name: () => 'x' } }))
  assert.ok(err instanceof TypeError)
  assert.ok(isClmError(err))
  assert.equal(err.code, 'INVALID_INPUT')
  assert.equal(err.number, 3)
  assert.equal(err.field, 'new.subject.common_name')
  const actor = await rejection(clm.getCertificate({}, ca.certificate.id))
  assert.equal(actor.field, 'actor')
})

test('integers out of their schema range are InvalidInput naming the field, and change nothing', async () => {
  const cases = [
    // [what, call, field]
    ['negative uint32', () => clm.generateCrl(system, ca.certificate.id, -1), 'next_update_hours'],
    ['fraction', () => clm.generateCrl(system, ca.certificate.id, 1.5), 'next_update_hours'],
    ['past u32', () => clm.fetchUndeliveredNotifications(system, 2 ** 32), 'limit'],
    ['past u32 in an input', () => clm.issueCertificate(system, {
      issuer_id: ca.certificate.id, validity_days: 2 ** 32, subject: { common_name: 'big.example.com' },
    }), 'request.validity_days'],
    ['past 2^53 in an input', () => clm.createRootCa(system, {
      subject: { common_name: 'Huge' }, validity_days: 2 ** 60,
    }), 'new.validity_days'],
    ['past u8', () => clm.createRootCa(system, { subject: { common_name: 'Deep' }, path_len: 256 }), 'new.path_len'],
    ['nested in an array', () => clm.createWorkflow(system, {
      workflow_code: 'BIG', name: 'Big',
      definition: { steps: [{ step_id: 1, type: 'approval', approvers: ['role:APPROVER'], required_approvals: -2 }] },
    }), 'new.definition.steps[0].required_approvals'],
    ['page limit', () => clm.listUsers(system, null, { limit: 2 ** 40 }), 'page.limit'],
    ['batch size', () => clm.rotateDataKey(system, -5), 'batch_size'],
    ['policy rule', () => clm.createPolicy(system, {
      policy_code: 'NEG', name: 'Neg', rules: { max_validity_days: -30 },
    }), 'new.rules.max_validity_days'],
  ]
  for (const [what, call, field] of cases) {
    const err = await rejection(call())
    assert.ok(err instanceof Error, what)
    assert.equal(err.code, 'INVALID_INPUT', `${what}: ${err.message}`)
    assert.equal(err.number, 3, what)
    assert.equal(err.field, field, `${what}: ${err.message}`)
    assert.ok(err.message.includes(field), `${what}: ${err.message}`)
    // Refused by the binding from the schema's range, before the core.
    assert.match(err.message, /must be (an integer|at most)/, what)
    assert.deepEqual(err.violations, [], what)
  }
  // Nothing was written.
  assert.equal((await clm.searchCertificates(system, { common_name: 'big.example.com' })).items.length, 0)
  assert.equal((await clm.listAuthorities(system)).length, 1)
  await assert.rejects(clm.getWorkflowByCode(system, 'BIG'), { code: 'NOT_FOUND' })
  await assert.rejects(clm.getPolicyByCode(system, 'NEG'), { code: 'NOT_FOUND' })
  // In range is fine.
  const crl = await clm.generateCrl(system, ca.certificate.id, 24)
  assert.equal(crl.kind, 'full')
  assert.match((await clm.latestCrl(system, ca.certificate.id)).pem, /BEGIN X509 CRL/)
})

test('open checks its integer options too', async () => {
  const err = await rejection(Clm.open({
    sqlite_dir: join(t.dir, 'never'), master_key_file: join(t.dir, 'never.key'), create_master_key: true,
    max_connections: 2 ** 32,
  }))
  assert.equal(err.code, 'INVALID_INPUT')
  assert.equal(err.field, 'options.max_connections')
  // A u64 option: past 2^53 - 1 a JS number is not an exact integer.
  const inexact = await rejection(Clm.open({
    sqlite_dir: join(t.dir, 'never'), master_key_file: join(t.dir, 'never.key'), create_master_key: true,
    cache_ttl_ms: 2 ** 53,
  }))
  assert.equal(inexact.field, 'options.cache_ttl_ms')
  assert.match(inexact.message, /not exact/)
})
