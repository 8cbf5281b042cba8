// Type-checked, not run: `tsc -p clm-node/tsconfig.json` (--strict, --noEmit)
// over a program that calls every operation of `Clm` the way a TypeScript
// host would, against the generated index.d.ts. The `@ts-expect-error`
// lines prove the types refuse what the core refuses. parity.test.mjs
// checks that every method of Clm is called here.
import {
  Actor,
  Clm,
  errorCodes,
  isClmError,
  operations,
  setLogger,
  version,
  type ActorDescription,
  type AuditCheckpoint,
  type Certificate,
  type ClmError,
  type ErrorCode,
  type IssuanceOutcome,
  type IssueInput,
  type LogRecord,
  type NewPolicy,
  type OperationInfo,
  type RolloverProgress,
  type RotationProgress,
  type UserPage,
  type Violation,
} from 'clm'

async function everyOperation(dir: string): Promise<void> {
  const clm: Clm = await Clm.open({ sqlite_dir: `${dir}/data`, master_key_file: `${dir}/master.key`, create_master_key: true })
  const text: string = Clm.version()
  const system: Actor = clm.systemActor()
  const logged: string[] = []
  setLogger((record: LogRecord) => logged.push(`${record.level} ${record.target} ${record.message}`), 'debug')
  setLogger(null)
  // @ts-expect-error levels are the five names
  setLogger(() => {}, 'loud')
  const described: ActorDescription = system.describe()
  const kind: 'user' | 'api_key' | 'system' = described.kind

  // Certificate authorities, policies, issuance.
  const root = await clm.createRootCa(system, { subject: { common_name: 'Root' }, key_algorithm: 'ecdsa_p384', path_len: 1 })
  const inter = await clm.createIntermediateCa(system, root.certificate.id, { subject: { common_name: 'Issuing' }, validity_days: 1825 })
  const authorities = await clm.listAuthorities(system)
  // CA rollover: a dry run, a run with progress, its status and trust bundle.
  const plan = await clm.planCaRollover(system, inter.certificate.id, { overlap_days: 30 })
  const toReissue: number = plan.leaves_to_reissue
  const rolloverSeen: RolloverProgress[] = []
  const rolled = await clm.runCaRollover(system, inter.certificate.id, null, 50, null, (p) => rolloverSeen.push(p))
  const rolloverStage: 'create_successor' | 'cross_sign' | 'publish_trust_bundle' | 'switch_issuance' | 'reissue_leaves' | 'retire_old' | 'done' = rolled.rollover.stage
  const rolloverStatus = await clm.caRolloverStatus(system, inter.certificate.id)
  const trustBundle: string | null | undefined = rolloverStatus.trust_bundle_pem
  // @ts-expect-error the overlap is a number of days
  await clm.planCaRollover(system, root.certificate.id, { overlap_days: 'a year' })
  const rules: NewPolicy['rules'] = { max_validity_days: 397, allowed_domains: ['example.com'], allow_subdomains: true }
  const policy = await clm.createPolicy(system, { policy_code: 'TLS', name: 'TLS', rules })
  const request: IssueInput = {
    issuer_id: inter.certificate.id,
    policy_id: policy.id,
    validity_days: 90,
    subject: { common_name: 'www.example.com' },
    sans: [{ type: 'DNS', value: 'www.example.com' }, { type: 'IP', value: '127.0.0.1' }],
    key_algorithm: 'rsa2048',
  }
  const dry = await clm.dryRunIssuance(system, request)
  const allowed: boolean = dry.allowed
  const outcome: IssuanceOutcome = await clm.issueCertificate(system, request)
  // The outcome is a tagged union: the certificate exists only when issued.
  if (outcome.outcome !== 'issued') throw new Error(`waiting for approval: ${outcome.request.id}`)
  const cert: Certificate = outcome.certificate
  const sameCert = await clm.getCertificate(system, cert.id)
  const key: string = await clm.exportPrivateKey(system, cert.id)
  const encryptedKey: string = await clm.exportPrivateKey(system, cert.id, { format: 'der', password: 'Correct horse battery 9', iterations: 10_000 })

  // Exports: bytes come as base64.
  const chainExport = await clm.exportCertificate(system, cert.id, 'pkcs7_der')
  const chainBase64: string = chainExport.data_base64
  const leafPem: string | null | undefined = (await clm.exportCertificate(system, cert.id)).text
  const p12 = await clm.exportPkcs12(system, cert.id, 'Correct horse battery 9', { encryption: 'legacy', include_chain: false, iterations: 10_000 })
  const p12Base64: string = p12.data_base64
  const renewed = await clm.renewCertificate(system, cert.id, { validity_days: 30, reuse_key: true })
  const csr = await clm.createCsr({ common_name: 'csr.example.com' }, [{ type: 'DNS', value: 'csr.example.com' }], 'ecdsa_p256')
  const csrKey: string = csr.private_key_pem

  // Inventory.
  const imported = await clm.importCertificates(system, { pem: cert.certificate_pem })
  const skippedLabels: string[] = imported.skipped.map((block) => block.label)
  const signedSerial: string = cert.serial_number_signed
  const fromFile = await clm.importCertificatesFromFile(system, 'bundle.pem', null, null, (progress) => { const read: number = progress.certificates_read; void read })
  const fromFileCount: number = fromFile.certificates_read
  const bySerial = await clm.searchCertificates(system, { serial_number: signedSerial })
  const byBusinessId = await clm.getCertificateByCertificateId(system, cert.certificate_id)
  const pem: string = await clm.getCertificatePem(system, cert.id)
  const found = await clm.searchCertificates(system, { common_name: 'www', expires_after: new Date(), status: ['active'] }, { limit: 10 })
  const next: string | null | undefined = found.next_cursor
  const chain: Certificate[] = await clm.certificateChain(system, cert.id)
  await clm.deleteCertificate(system, cert.id)
  const restored = await clm.restoreCertificate(system, cert.id)
  const refreshed = await clm.refreshCertificateStatuses(system, '2100-01-01T00:00:00Z')
  const reconciled = await clm.reconcile(system)

  // Revocation.
  const revocation = await clm.revokeCertificate(system, cert.id, 'certificate_hold', 'on hold')
  const released = await clm.releaseCertificateHold(system, cert.id)
  const crl = await clm.generateCrl(system, inter.certificate.id, 24)
  const crlSize: number = crl.size_bytes
  const crlEntries: number = crl.entry_count
  const scopedCrl = await clm.generateScopedCrl(system, inter.certificate.id, null, false, 24)
  const servedCrl = await clm.latestCrl(system, inter.certificate.id, null, false)
  const servedPem: string = servedCrl.pem
  const ocspReply = await clm.ocspRespond("MAA=")
  const ocspStatus: string = ocspReply.response_status

  // Key rotation, with a progress callback.
  const seen: RotationProgress[] = []
  const rotation = await clm.rotateDataKey(system, 100, null, (progress) => seen.push(progress))
  const rotated: number = rotation.rotated_items
  const masterRotation = await clm.rotateMasterKey(system, { master_key_file: `${dir}/next.key`, create_master_key: true })
  const keys = await clm.keyStatus(system)
  const rotations = await clm.listKeyRotations(system, { limit: 5 })

  // Identity.
  const org = await clm.createOrganization(system, { org_code: 'ACME', name: 'Acme' })
  const sameOrg = await clm.getOrganization(system, org.id)
  const orgs = await clm.listOrganizations(system)
  const suspended = await clm.setOrganizationStatus(system, org.id, 'suspended')
  const user = await clm.createUser(system, { username: 'alice', email: 'alice@example.com', password: 'a long passphrase', organization_id: org.id })
  const sameUser = await clm.getUser(system, user.id)
  const byName = await clm.getUserByUsername(system, 'alice')
  const users: UserPage = await clm.listUsers(system, { search: 'ali', status: 'active' }, { limit: 10 })
  const updated = await clm.updateUser(system, user.id, { display_name: 'Alice' })
  await clm.deleteUser(system, user.id)
  const back = await clm.restoreUser(system, user.id)
  await clm.setPassword(system, user.id, 'another passphrase')
  const unlocked = await clm.unlockUser(system, user.id)
  const login = await clm.authenticate('alice', 'another passphrase', null, '10.0.0.1', 'typed.ts')
  const token: string = login.token
  const actor: Actor = await clm.validateSession(token)
  await clm.changePassword(actor, 'another passphrase', 'a third passphrase')
  const enrollment = await clm.beginMfaEnrollment(actor, 'a third passphrase')
  const uri: string = enrollment.provisioning_uri
  await clm.confirmMfaEnrollment(actor, '123456')
  await clm.disableMfa(system, user.id)
  const onBehalf: Actor = await clm.actorForUser(user.id)
  await clm.revokeSession(system, login.session.id)
  const ended: number = await clm.revokeUserSessions(system, user.id)
  const purged: number = await clm.purgeExpiredSessions(system)
  await clm.logout(token)
  const created = await clm.createApiKey(onBehalf, { name: 'ci', scopes: { certificates: ['read'] }, organization_id: org.id })
  const keyActor: Actor = await clm.authenticateApiKey(created.key)
  const apiKeys = await clm.listApiKeys(onBehalf)
  await clm.revokeApiKey(system, created.api_key.id)

  // Roles and memberships.
  const role = await clm.createRole(system, { role_code: 'READER', role_name: 'Reader', permissions: { certificates: ['read'] } })
  const sameRole = await clm.getRole(system, role.id)
  const byCode = await clm.getRoleByCode(system, 'READER')
  const roles = await clm.listRoles(system, { limit: 100 })
  const widened = await clm.updateRolePermissions(system, role.id, { certificates: ['read'], audit: ['read'] })
  const granted = await clm.assignRole(system, user.id, role.id)
  await clm.revokeRole(system, user.id, role.id)
  await clm.deleteRole(system, role.id)
  await clm.addOrganizationMember(system, org.id, user.id, 'member')
  await clm.removeOrganizationMember(system, org.id, user.id)

  // Policies.
  const samePolicy = await clm.getPolicy(system, policy.id)
  const byPolicyCode = await clm.getPolicyByCode(system, 'TLS')
  const policies = await clm.listPolicies(system, { status: 'active' })
  const changed = await clm.updatePolicy(system, policy.id, { rules: { max_validity_days: 60 }, status: 'active' })
  await clm.deletePolicy(system, policy.id)
  const policyBack = await clm.restorePolicy(system, policy.id)

  // Workflows, approvals, notifications.
  const workflow = await clm.createWorkflow(system, {
    workflow_code: 'ONE', name: 'One approval', organization_id: org.id,
    definition: { steps: [{ step_id: 1, type: 'approval', approvers: [`user:${user.id}`] }] },
  })
  const sameWorkflow = await clm.getWorkflow(system, workflow.id)
  const byWorkflowCode = await clm.getWorkflowByCode(system, 'ONE')
  const workflows = await clm.listWorkflows(system)
  const pending = await clm.pendingApprovals(onBehalf)
  const instanceId = pending[0]?.workflow_instance_id
  if (instanceId !== undefined) {
    const decided = await clm.decideApproval(onBehalf, instanceId, true, 'fine')
    const retried = await clm.retryWorkflow(system, instanceId)
    const cancelled = await clm.cancelWorkflow(system, instanceId)
    const view = await clm.getWorkflowInstance(system, instanceId)
    const status: string = view.instance.status + decided.instance.status + retried.instance.status + cancelled.instance.status
  }
  const expired: number = await clm.expireStaleWorkflows(system, new Date())
  const notices = await clm.listNotifications(onBehalf, true, { limit: 10 })
  const theirs = await clm.listUserNotifications(system, user.id, false)
  const first = notices.items[0]
  if (first !== undefined) await clm.markNotificationRead(onBehalf, first.id)
  const marked: number = await clm.markAllNotificationsRead(onBehalf)
  const outbox = await clm.fetchUndeliveredNotifications(system, 100)
  const delivered: number = await clm.markNotificationsDelivered(system, outbox.map((n) => n.id))
  // The schema's views.
  const active = await clm.activeCertificates(system, { organization_ids: [org.id] }, { limit: 10 })
  const soon = await clm.expiringCertificates(system, 7)
  const daysLeft: number | undefined = soon.items[0]?.days_until_expiry
  const people = await clm.activeUsersWithRoles(system)
  const roleCodes: string[] | undefined = people.items[0]?.role_codes
  const summary = await clm.certificateSummary(system, { environment: 'production' })
  const summaryOrg: string | null | undefined = summary.items[0]?.org_code
  const activeCount: number = active.items.length
  const lifecycle = await clm.runLifecycle(system)
  const ran: boolean = lifecycle.ran
  const archivedRows: number = lifecycle.audit_retention.core_archived
  const archiveDir: string | null | undefined = lifecycle.audit_retention.archive_dir

  // Operator maintenance.
  const stats = await clm.databaseStats(system)
  const tableBytes: number | null | undefined = stats.core.tables[0]?.table_bytes
  const inUse: number = stats.secure.pool.in_use
  const maintained = await clm.maintain(system, true, false)
  const stepMs: number | undefined = maintained.steps[0]?.duration_ms

  // Audit.
  const events = await clm.listAuditEvents(system, 'secure', { event_type: 'private_key.exported' }, { limit: 5 })
  const chainReport = await clm.verifyAuditChain(system, 'core')
  const checkpoint: AuditCheckpoint = await clm.auditCheckpoint(system, 'core')
  const against = await clm.verifyAuditChainAgainstCheckpoint(system, 'core', checkpoint)
  const archive = await clm.archiveAuditEvents(system, 'core', 3650, `${dir}/archive.jsonl`)

  // Errors keep their structure.
  try {
    await clm.issueCertificate(system, { ...request, validity_days: 5000 })
  } catch (error: unknown) {
    if (isClmError(error)) {
      const code: ErrorCode = error.code
      const rules: Violation[] = error.violations
      const field: string | null = error.field
      const entity: string | null = error.entity
      const number: number = error.number
      const named: string[] = rules.map((violation) => `${violation.rule}: ${violation.message}`)
    }
  }
  const codes: ErrorCode[] = errorCodes()
  const table: OperationInfo[] = operations()
  const library: string = version()

  // What the types refuse.
  // @ts-expect-error a revocation reason is one of the enum's values
  await clm.revokeCertificate(system, cert.id, 'lost it')
  // @ts-expect-error validity_days is required in an issuance request
  await clm.issueCertificate(system, { issuer_id: inter.certificate.id })
  // @ts-expect-error the issuance request has no such field
  await clm.issueCertificate(system, { ...request, validityDays: 90 })
  // @ts-expect-error every operation but login and session checks takes an actor first
  await clm.getCertificate(cert.id)
  // @ts-expect-error a subject alternative name's type is DNS, IP, EMAIL or URI
  await clm.createCsr({}, [{ type: 'dns', value: 'x.example.com' }])
  // @ts-expect-error the outcome's certificate exists only once narrowed to "issued"
  const unnarrowed: Certificate = (outcome as IssuanceOutcome).certificate
  // @ts-expect-error Clm is opened, not constructed
  const constructed = new Clm()
  // @ts-expect-error the token is a secret string, not a number
  const wrongToken: number = login.token

  await clm.close()
  void [text, kind, sameCert, authorities, allowed, key, renewed, csrKey, imported, fromFileCount, byBusinessId, pem, next, chain, restored,
    refreshed, reconciled, revocation, released, crlSize, crlEntries, scopedCrl, servedPem, ocspStatus, rotated, masterRotation, keys, rotations, sameOrg, orgs,
    suspended, sameUser, byName, users, updated, back, unlocked, uri, ended, purged, keyActor, apiKeys, sameRole,
    byCode, roles, widened, granted, samePolicy, byPolicyCode, policies, changed, policyBack, sameWorkflow,
    byWorkflowCode, workflows, expired, theirs, marked, delivered, ran, events, chainReport, against, archive, codes,
    table, library, unnarrowed, constructed, wrongToken]
}

export { everyOperation }
