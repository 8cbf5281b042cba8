// The service API as a Node user drives it, group by group; certificates
// and CRLs are checked with the openssl command.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { clm as addon, openTemporary, openssl } from './support.mjs'

const { Actor } = addon
let t, clm, system, root, inter, policy

before(async () => {
  t = await openTemporary()
  clm = t.clm
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
    crl_distribution_points: ['http://pki.example.com/issuing.crl'],
  })
  policy = await clm.createPolicy(system, {
    policy_code: 'TLS',
    name: 'TLS',
    rules: { max_validity_days: 397, allowed_domains: ['example.com'], allow_subdomains: true, allowed_ip_ranges: ['127.0.0.0/8'] },
  })
  writeFileSync(join(t.dir, 'root.pem'), root.certificate.certificate_pem)
  writeFileSync(join(t.dir, 'intermediate.pem'), inter.certificate.certificate_pem)
})
after(() => t.cleanup())

const request = (cn, extra = {}) => ({
  issuer_id: inter.certificate.id,
  policy_id: policy.id,
  validity_days: 90,
  subject: { common_name: cn },
  sans: [{ type: 'DNS', value: cn }],
  ...extra,
})
const issue = async (cn, extra, actor = system) => {
  const outcome = await clm.issueCertificate(actor, request(cn, extra))
  assert.equal(outcome.outcome, 'issued')
  return outcome.certificate
}
const verifies = (cert) => {
  const file = join(t.dir, `${cert.id}.pem`)
  writeFileSync(file, cert.certificate_pem)
  const result = openssl(['verify', '-CAfile', 'root.pem', '-untrusted', 'intermediate.pem', file], { cwd: t.dir })
  assert.equal(result.status, 0, result.stdout + result.stderr)
}

test('certificate authorities', async () => {
  assert.equal(root.certificate.certificate_kind, 'root_ca')
  assert.equal(inter.certificate.issuer_certificate_id, root.certificate.id)
  assert.deepEqual(inter.issuance_urls.crl_distribution_points, ['http://pki.example.com/issuing.crl'])
  const listed = await clm.listAuthorities(system)
  assert.deepEqual(listed.map((ca) => ca.certificate.id).sort(),
    [root.certificate.id, inter.certificate.id].sort())
  verifies(inter.certificate)
})

test('issuance, dry run, private key export, chain', async () => {
  const dry = await clm.dryRunIssuance(system, request('dry.example.com'))
  assert.equal(dry.allowed, true)
  assert.ok(dry.rules.length > 0)
  const refused = await clm.dryRunIssuance(system, request('dry.example.org'))
  assert.equal(refused.allowed, false)
  await assert.rejects(clm.issueCertificate(system, request('x.example.org')), { code: 'POLICY_VIOLATION' })

  const server = await issue('server.example.com', {
    key_algorithm: 'rsa2048', sans: [{ type: 'DNS', value: 'server.example.com' }, { type: 'IP', value: '127.0.0.1' }],
  })
  assert.equal(server.status, 'active')
  assert.equal(server.key_algorithm, 'RSA')
  verifies(server)
  const key = await clm.exportPrivateKey(system, server.id)
  assert.match(key, /^-----BEGIN PRIVATE KEY-----/)
  assert.equal(openssl(['pkey', '-pubout'], { input: key }).stdout,
    openssl(['x509', '-noout', '-pubkey'], { input: server.certificate_pem }).stdout)

  const chain = await clm.certificateChain(system, server.id)
  assert.deepEqual(chain.map((c) => c.id), [server.id, inter.certificate.id, root.certificate.id])
  assert.equal(await clm.getCertificatePem(system, server.id), server.certificate_pem)
  const byBusinessId = await clm.getCertificateByCertificateId(system, server.certificate_id)
  assert.equal(byBusinessId.id, server.id)
})

test('createCsr, then issue with the csr', async () => {
  const bundle = await clm.createCsr({ common_name: 'csr.example.com' },
    [{ type: 'DNS', value: 'csr.example.com' }], 'ecdsa_p256')
  assert.match(bundle.csr_pem, /BEGIN CERTIFICATE REQUEST/)
  assert.equal(openssl(['req', '-noout', '-verify'], { input: bundle.csr_pem }).status, 0)
  const cert = await issue('csr.example.com', { csr: bundle.csr_pem })
  verifies(cert)
  assert.equal(openssl(['pkey', '-pubout'], { input: bundle.private_key_pem }).stdout,
    openssl(['x509', '-noout', '-pubkey'], { input: cert.certificate_pem }).stdout)
  await assert.rejects(clm.exportPrivateKey(system, cert.id), (err) => err.code === 'NOT_FOUND' || err.code === 'CONFLICT')
  // A CSR needs a subject or a subject alternative name.
  await assert.rejects(clm.createCsr(), { code: 'INVALID_INPUT' })
})

test('import, search with paging', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'clm-node-import-'))
  try {
    const made = openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-subj', '/CN=imported.example.net', '-days', '30'])
    assert.equal(made.status, 0, made.stderr)
    const pem = openssl(['x509', '-in', join(dir, 'c.pem')]).stdout
    const report = await clm.importCertificates(system, { pem })
    assert.equal(report.imported.length, 1)
    assert.equal(report.imported[0].source, 'imported')
    assert.equal(report.imported[0].common_name, 'imported.example.net')
    const again = await clm.importCertificates(system, {
      der_base64: openssl(['x509', '-in', join(dir, 'c.pem'), '-outform', 'DER']).stdout === '' ? '' :
        Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64').toString('base64'),
    })
    assert.deepEqual(again.already_present, [report.imported[0].id])
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  const found = await clm.searchCertificates(system, { common_name: 'imported.example' })
  assert.equal(found.items.length, 1)
  assert.equal(found.items[0].certificate_pem, '')
  const withPem = await clm.searchCertificates(system, { common_name: 'imported.example', with_pem: true })
  assert.match(withPem.items[0].certificate_pem, /BEGIN CERTIFICATE/)
  const bySan = await clm.searchCertificates(system, { san: 'server.example.com' })
  assert.ok(bySan.items.length >= 1)

  const seen = new Set()
  let page = await clm.searchCertificates(system, { is_ca: false }, { limit: 1 })
  while (true) {
    assert.ok(page.items.length <= 1)
    page.items.forEach((c) => seen.add(c.id))
    if (!page.next_cursor) break
    page = await clm.searchCertificates(system, { is_ca: false }, { limit: 1, cursor: page.next_cursor })
  }
  const all = await clm.searchCertificates(system, { is_ca: false })
  assert.equal(seen.size, all.items.length)
})

test('revocation, hold and release, CRL checked by openssl', async () => {
  const old = await issue('old.example.com')
  const revocation = await clm.revokeCertificate(system, old.id, 'superseded', 'replaced')
  assert.equal(revocation.revocation_reason, 'superseded')
  assert.equal((await clm.getCertificate(system, old.id)).status, 'revoked')
  const held = await issue('held.example.com')
  await clm.revokeCertificate(system, held.id, 'certificate_hold')
  const released = await clm.releaseCertificateHold(system, held.id)
  assert.equal(released.status, 'active')

  const summary = await clm.generateCrl(system, inter.certificate.id, 24)
  assert.equal(summary.entry_count, 1)
  assert.equal(summary.pem, undefined, 'generation returns a summary, not the CRL')
  const crl = await clm.latestCrl(system, inter.certificate.id)
  assert.equal(crl.crl_number, summary.crl_number)
  assert.equal(Buffer.from(crl.pem.replace(/-----[^-]+-----|\s/g, ''), 'base64').length, summary.size_bytes)
  writeFileSync(join(t.dir, 'crl.pem'), crl.pem)
  const checked = openssl(['crl', '-in', 'crl.pem', '-CAfile', 'intermediate.pem', '-noout', '-text'], { cwd: t.dir })
  assert.equal(checked.status, 0, checked.stderr)
  assert.match(checked.stderr + checked.stdout, /verify OK/)
  assert.ok(checked.stdout.replaceAll(':', '').toLowerCase().includes(old.serial_number.toLowerCase()))
  assert.match(checked.stdout, /Superseded/)
})

test('renewal', async () => {
  const cert = await issue('renew.example.com')
  const renewed = await clm.renewCertificate(system, cert.id, { validity_days: 30 })
  assert.equal(renewed.outcome, 'issued')
  assert.equal(renewed.certificate.replaces_certificate_id, cert.id)
  verifies(renewed.certificate)
  const sameKey = await clm.renewCertificate(system, renewed.certificate.id, { reuse_key: true })
  assert.equal(openssl(['x509', '-noout', '-pubkey'], { input: sameKey.certificate.certificate_pem }).stdout,
    openssl(['x509', '-noout', '-pubkey'], { input: renewed.certificate.certificate_pem }).stdout)
  const defaults = await clm.renewCertificate(system, cert.id)
  assert.equal(defaults.outcome, 'issued')
})

test('a PEM file imports a chunk at a time with progress', async () => {
  const other = await openTemporary()
  try {
    const path = join(t.dir, 'chain.pem')
    writeFileSync(path, inter.certificate.certificate_pem + root.certificate.certificate_pem)
    const seen = []
    const summary = await other.clm.importCertificatesFromFile(other.clm.systemActor(), path, null, null, (p) => seen.push(p))
    assert.equal(summary.imported, 2, JSON.stringify(summary))
    assert.equal(summary.certificates_read, 2)
    await new Promise((resolve) => setImmediate(resolve))
    assert.ok(seen.length >= 1, `progress calls: ${seen.length}`)
    assert.equal(seen.at(-1).imported, 2)
    const again = await other.clm.importCertificatesFromFile(other.clm.systemActor(), path)
    assert.equal(again.already_present, 2)
    await assert.rejects(
      other.clm.importCertificatesFromFile(other.clm.systemActor(), join(t.dir, 'missing.pem')),
      /missing\.pem/,
    )
  } finally {
    await other.cleanup()
  }
})

test('data key rotation reports progress to a callback without blocking', async () => {
  const seen = []
  let ticks = 0
  const timer = setInterval(() => ticks++, 1)
  const report = await clm.rotateDataKey(system, 1, null, (p) => seen.push(p))
  clearInterval(timer)
  assert.equal(report.status, 'completed')
  assert.ok(report.total_items >= 3, JSON.stringify(report))
  assert.equal(report.rotated_items, report.total_items)
  await new Promise((resolve) => setImmediate(resolve))
  assert.ok(seen.length >= 3, `progress calls: ${seen.length}`)
  assert.deepEqual(Object.keys(seen[0]).sort(), ['rotated', 'rotation_id', 'total'])
  assert.equal(seen.at(-1).rotated, report.total_items)
  assert.equal(seen[0].rotation_id, report.rotation_id)

  // A callback that throws changes nothing; max_batches leaves it in progress.
  const partial = await clm.rotateDataKey(system, 1, 1, () => { throw new Error('ignored') })
  assert.equal(partial.status, 'in_progress')
  const rest = await clm.rotateDataKey(system, 100)
  assert.equal(rest.status, 'completed')
  assert.equal(rest.resumed, true)
  await new Promise((resolve) => setImmediate(resolve))

  const status = await clm.keyStatus(system)
  assert.ok(status.some((s) => s.key.key_status === 'active'))
  assert.equal(JSON.stringify(status).includes('wrapped_key'), false)
  const history = await clm.listKeyRotations(system)
  assert.ok(history.items.length >= 2)
  // Keys still open after rotating.
  assert.match(await clm.exportPrivateKey(system, (await issue('after.example.com')).id), /PRIVATE KEY/)
})

test('identity: users, sessions, API keys, roles and organizations', async () => {
  const org = await clm.createOrganization(system, { org_code: 'ACME', name: 'Acme' })
  assert.equal((await clm.getOrganization(system, org.id)).org_code, 'ACME')
  await assert.rejects(clm.createOrganization(system, { org_code: 'ACME', name: 'Again' }), { code: 'ALREADY_EXISTS' })
  const user = await clm.createUser(system, {
    username: 'alice', email: 'alice@example.com',
    password: 'correct horse battery staple', organization_id: org.id,
  })
  assert.equal(user.password_hash, undefined)
  assert.equal((await clm.getUserByUsername(system, 'alice')).id, user.id)
  const updated = await clm.updateUser(system, user.id, { display_name: 'Alice' })
  assert.equal(updated.display_name, 'Alice')
  const users = await clm.listUsers(system, { search: 'alic' })
  assert.deepEqual(users.items.map((u) => u.id), [user.id])

  await assert.rejects(clm.authenticate('alice', 'wrong password!'), { code: 'AUTHENTICATION' })
  const login = await clm.authenticate('alice', 'correct horse battery staple', null, '10.0.0.1', 'node-test')
  assert.equal(login.user.id, user.id)
  assert.equal(login.session.ip_address, '10.0.0.1')
  const actor = await clm.validateSession(login.token)
  assert.ok(actor instanceof Actor)
  assert.deepEqual(actor.describe(), {
    kind: 'user', user_id: user.id, session_id: login.session.id, api_key_id: null, organization_ids: [org.id],
  })
  assert.equal(JSON.stringify(actor), JSON.stringify(actor.describe()))
  await assert.rejects(clm.verifyAuditChain(actor, 'core'), { code: 'PERMISSION_DENIED' })

  // Roles: a custom role, a built-in one, assignment.
  const role = await clm.createRole(system, {
    role_code: 'READER', role_name: 'Reader', permissions: { certificates: ['read'] },
  })
  assert.deepEqual((await clm.getRoleByCode(system, 'READER')).permissions, { certificates: ['read'] })
  const widened = await clm.updateRolePermissions(system, role.id, '{"certificates":["read"],"audit":["read","verify"],"api_keys":["create","read","revoke"]}')
  assert.deepEqual(widened.permissions.audit, ['read', 'verify'])
  const roles = await clm.listRoles(system, { limit: 100 })
  assert.ok(roles.items.some((r) => r.role_code === 'APPROVER'))
  const granted = await clm.assignRole(system, user.id, role.id)
  assert.equal(granted.role_id, role.id)
  const asAlice = await clm.actorForUser(user.id)
  assert.equal((await clm.verifyAuditChain(asAlice, 'core')).broken, null)

  // API keys: the key is shown once and authenticates.
  const created = await clm.createApiKey(asAlice, { name: 'ci', scopes: { certificates: ['read'] }, organization_id: org.id })
  assert.match(created.key, /.{16,}/)
  const keyActor = await clm.authenticateApiKey(created.key)
  assert.equal(keyActor.describe().kind, 'api_key')
  assert.equal(keyActor.describe().api_key_id, created.api_key.id)
  const keys = await clm.listApiKeys(asAlice)
  assert.ok(keys.items.some((k) => k.id === created.api_key.id))
  assert.equal(JSON.stringify(keys).includes(created.key), false)
  await clm.revokeApiKey(system, created.api_key.id)
  await assert.rejects(clm.authenticateApiKey(created.key), { code: 'AUTHENTICATION' })

  // Sessions end.
  assert.equal(await clm.logout(login.token), undefined)
  await assert.rejects(clm.validateSession(login.token), { code: 'AUTHENTICATION' })
  await clm.authenticate('alice', 'correct horse battery staple')
  assert.equal(await clm.revokeUserSessions(system, user.id), 1)
  assert.equal(typeof (await clm.purgeExpiredSessions(system)), 'number')

  // Membership, status, password, delete and restore.
  const bob = await clm.createUser(system, { username: 'bob', email: 'bob@example.com' })
  await clm.addOrganizationMember(system, org.id, bob.id, 'member')
  assert.deepEqual((await clm.actorForUser(bob.id)).describe().organization_ids, [org.id])
  await clm.removeOrganizationMember(system, org.id, bob.id)
  await clm.setPassword(system, bob.id, 'another long passphrase 42')
  await clm.authenticate('bob', 'another long passphrase 42')
  await clm.deleteUser(system, bob.id)
  await assert.rejects(clm.getUser(system, bob.id), { code: 'NOT_FOUND' })
  assert.equal((await clm.restoreUser(system, bob.id)).id, bob.id)
  // Unlocking a user who is not locked is a conflict.
  await assert.rejects(clm.unlockUser(system, bob.id), { code: 'CONFLICT' })
  const suspended = await clm.setOrganizationStatus(system, org.id, 'suspended')
  assert.equal(suspended.status, 'suspended')
  await clm.setOrganizationStatus(system, org.id, 'active')
  assert.ok((await clm.listOrganizations(system)).items.length >= 1)
  await clm.revokeRole(system, user.id, role.id)
})

test('policies', async () => {
  const p = await clm.createPolicy(system, {
    policy_code: 'SHORT', name: 'Short', rules: '{"max_validity_days": 30, "renewal_threshold_days": 10}', status: 'draft',
  })
  assert.equal(p.policy_rules.max_validity_days, 30)
  assert.equal((await clm.getPolicyByCode(system, 'SHORT')).id, p.id)
  const changed = await clm.updatePolicy(system, p.id, { rules: { max_validity_days: 60 }, status: 'active' })
  assert.equal(changed.version, p.version + 1)
  const active = await clm.listPolicies(system, { status: 'active' })
  assert.ok(active.items.some((x) => x.id === p.id))
  await clm.deletePolicy(system, p.id)
  await assert.rejects(clm.getPolicy(system, p.id), { code: 'NOT_FOUND' })
  assert.equal((await clm.restorePolicy(system, p.id)).id, p.id)
})

test('workflows, approvals and notifications', async () => {
  const org = await clm.createOrganization(system, { org_code: 'WF', name: 'Workflow Org' })
  const operator = await clm.getRoleByCode(system, 'OPERATOR')
  const approverRole = await clm.getRoleByCode(system, 'APPROVER')
  const requester = await clm.createUser(system, { username: 'req', email: 'req@example.com', organization_id: org.id })
  const approver = await clm.createUser(system, { username: 'appr', email: 'appr@example.com', organization_id: org.id })
  await clm.assignRole(system, requester.id, operator.id)
  await clm.assignRole(system, approver.id, approverRole.id)
  const workflow = await clm.createWorkflow(system, {
    workflow_code: 'ONE-APPROVAL', name: 'One approval', organization_id: org.id,
    definition: { steps: [{ step_id: 1, type: 'approval', approvers: [`user:${approver.id}`] }] },
  })
  assert.equal((await clm.getWorkflowByCode(system, 'ONE-APPROVAL')).id, workflow.id)
  assert.equal((await clm.getWorkflow(system, workflow.id)).workflow_definition.steps.length, 1)
  assert.ok((await clm.listWorkflows(system)).items.length >= 2)
  const gated = await clm.createPolicy(system, {
    policy_code: 'GATED', name: 'Gated', organization_id: org.id, workflow_id: workflow.id,
    rules: {
      max_validity_days: 90, require_approval: true, workflow_code: 'ONE-APPROVAL',
      // The shared intermediate serves the organization through this policy only.
      issuer_ids: [inter.certificate.id],
    },
  })
  const asRequester = await clm.actorForUser(requester.id)
  const asApprover = await clm.actorForUser(approver.id)
  const outcome = await clm.issueCertificate(asRequester,
    request('gated.example.com', { policy_id: gated.id, organization_id: org.id }))
  assert.equal(outcome.outcome, 'pending')
  const instanceId = outcome.request.workflow_instance_id
  const pending = await clm.pendingApprovals(asApprover)
  assert.deepEqual(pending.map((p) => p.workflow_instance_id), [instanceId])

  const notices = await clm.listNotifications(asApprover, true)
  assert.ok(notices.items.some((n) => n.notification_type === 'approval_required'), JSON.stringify(notices))
  await clm.markNotificationRead(asApprover, notices.items[0].id)
  assert.equal(typeof (await clm.markAllNotificationsRead(asApprover)), 'number')
  assert.equal((await clm.listNotifications(asApprover, true)).items.length, 0)
  const outbox = await clm.fetchUndeliveredNotifications(system, 100)
  assert.ok(outbox.length >= 1)
  assert.equal(await clm.markNotificationsDelivered(system, outbox.map((n) => n.id)), outbox.length)

  const decided = await clm.decideApproval(asApprover, instanceId, true, 'fine')
  assert.equal(decided.instance.status, 'completed')
  const view = await clm.getWorkflowInstance(asRequester, instanceId)
  assert.ok(view.instance.certificate_id)
  const issued = await clm.getCertificate(system, view.instance.certificate_id)
  assert.equal(issued.common_name, 'gated.example.com')

  // A second request, cancelled; expiring stale ones.
  const second = await clm.issueCertificate(asRequester,
    request('gated2.example.com', { policy_id: gated.id, organization_id: org.id }))
  const cancelled = await clm.cancelWorkflow(asRequester, second.request.workflow_instance_id)
  assert.equal(cancelled.instance.status, 'cancelled')
  await assert.rejects(clm.retryWorkflow(system, second.request.workflow_instance_id), { code: 'CONFLICT' })
  assert.equal(await clm.expireStaleWorkflows(system, new Date()), 0)
})

test('inventory upkeep and lifecycle', async () => {
  const cert = await issue('upkeep.example.com')
  await clm.deleteCertificate(system, cert.id)
  await assert.rejects(clm.getCertificate(system, cert.id), { code: 'NOT_FOUND' })
  assert.equal((await clm.restoreCertificate(system, cert.id)).id, cert.id)
  const refreshed = await clm.refreshCertificateStatuses(system, '2100-01-01T00:00:00Z')
  assert.ok(refreshed.expired >= 1)
  assert.deepEqual(await clm.reconcile(system), { metadata_created: 0, requests_settled: 0 })
  const report = await clm.runLifecycle(system)
  assert.equal(typeof report.ran, 'boolean')
  assert.deepEqual(Object.keys(report.statuses).sort(), ['activated', 'expired', 'expiring'])
})

test('audit: list, verify, archive', async () => {
  for (const log of ['secure', 'core']) {
    const report = await clm.verifyAuditChain(system, log)
    assert.equal(report.broken, null)
    assert.ok(report.rows_checked > 0)
  }
  const exports = await clm.listAuditEvents(system, 'secure', { event_type: 'private_key.exported' }, { limit: 5 })
  assert.ok(exports.items.length >= 1, JSON.stringify(exports.items.map((e) => e.event_type)))
  const page = await clm.listAuditEvents(system, 'core', null, { limit: 2 })
  assert.equal(page.items.length, 2)
  assert.ok(page.next_cursor)
  const archive = await clm.archiveAuditEvents(system, 'core', 3650, join(t.dir, 'archive.jsonl'))
  assert.equal(archive.archived, 0)
})

test('MFA enrollment starts for a user and version/close are handle operations', async () => {
  await clm.createUser(system, { username: 'mfa', email: 'mfa@example.com', password: 'a long enough passphrase' })
  const login = await clm.authenticate('mfa', 'a long enough passphrase')
  const actor = await clm.validateSession(login.token)
  const enrollment = await clm.beginMfaEnrollment(actor, 'a long enough passphrase')
  assert.match(enrollment.provisioning_uri, /^otpauth:\/\//)
  await assert.rejects(clm.confirmMfaEnrollment(actor, '000000'), (err) => ['AUTHENTICATION', 'INVALID_INPUT'].includes(err.code))
  const user = await clm.getUserByUsername(system, 'mfa')
  await clm.disableMfa(system, user.id)
  await clm.revokeSession(system, login.session.id)
})
