// A small internal PKI through the Node binding: what examples/pki.rs does.
// A root and an intermediate CA, a TLS server certificate (DNS
// server.example.com + IP 127.0.0.1), a TLS client certificate, one revoked
// certificate, and the intermediate's CRL.
//
//     node examples/node/pki.mjs OUT_DIR
//
// Data lives in SQLite under OUT_DIR unless CLM_SECURE_DATABASE_URL and
// CLM_CORE_DATABASE_URL are set. With no master key configured
// (CLM_MASTER_KEY / CLM_MASTER_KEY_FILE) it uses OUT_DIR/master.key, creating
// it on first run. Writes into OUT_DIR: root.pem, intermediate.pem,
// server.pem, server.key, client.pem, client.key, chain.pem, crl.pem.
// Check them with:
//
//     openssl verify -CAfile OUT_DIR/root.pem -untrusted OUT_DIR/intermediate.pem OUT_DIR/server.pem
//     openssl crl -in OUT_DIR/crl.pem -CAfile OUT_DIR/intermediate.pem -noout -text
//
// The package is `clm` (npm install dist/node/*.tgz); CLM_NODE_PACKAGE points at
// another folder, and from a checkout it falls back to clm-node/.
import { randomUUID } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
function load() {
  if (process.env.CLM_NODE_PACKAGE) return require(process.env.CLM_NODE_PACKAGE)
  try {
    return require('clm')
  } catch {
    return require(fileURLToPath(new URL('../../clm-node/', import.meta.url)))
  }
}
const { Clm } = load()

const outDir = process.argv[2]
if (!outDir) {
  console.error('usage: node examples/node/pki.mjs OUT_DIR')
  process.exit(2)
}

function write(name, contents) {
  const path = join(outDir, name)
  writeFileSync(path, contents)
  console.log(`wrote         ${path}`)
}

/** Private keys are written readable by the owner only. */
function writeKey(name, pem) {
  write(name, pem)
  chmodSync(join(outDir, name), 0o600)
}

function options() {
  const env = process.env
  const opts = env.CLM_SECURE_DATABASE_URL && env.CLM_CORE_DATABASE_URL
    ? { secure_url: env.CLM_SECURE_DATABASE_URL, core_url: env.CLM_CORE_DATABASE_URL }
    : { sqlite_dir: join(outDir, 'data') }
  if (env.CLM_MASTER_KEY) {
    opts.master_key = env.CLM_MASTER_KEY
  } else if (env.CLM_MASTER_KEY_FILE) {
    opts.master_key_file = env.CLM_MASTER_KEY_FILE
  } else {
    const keyFile = join(outDir, 'master.key')
    console.log(`no master key configured: ${existsSync(keyFile) ? 'using' : 'creating'} ${keyFile}`)
    opts.master_key_file = keyFile
    opts.create_master_key = true
  }
  return opts
}

async function build(clm) {
  const system = clm.systemActor()
  // Runs are repeatable against the same database: names carry a suffix.
  const suffix = randomUUID().replaceAll('-', '').slice(0, 8)
  const org = (cn) => ({ common_name: cn, organization: 'Example Inc.', country: 'US' })

  const root = await clm.createRootCa(system, {
    subject: org(`Example Root CA ${suffix}`),
    key_algorithm: 'ecdsa_p384',
    validity_days: 3650,
    path_len: 1,
    ca_issuers_urls: ['http://pki.example.com/root.crt'],
    crl_distribution_points: ['http://pki.example.com/root.crl'],
  })
  console.log(`root CA       ${root.certificate.subject_dn} (${root.certificate.id})`)

  const intermediate = await clm.createIntermediateCa(system, root.certificate.id, {
    subject: org(`Example Issuing CA ${suffix}`),
    key_algorithm: 'ecdsa_p256',
    validity_days: 1825,
    path_len: 0,
    crl_distribution_points: ['http://pki.example.com/issuing.crl'],
    ca_issuers_urls: ['http://pki.example.com/issuing.crt'],
  })
  console.log(`intermediate  ${intermediate.certificate.subject_dn} (${intermediate.certificate.id})`)

  const policy = await clm.createPolicy(system, {
    policy_code: `INTERNAL-TLS-${suffix}`,
    name: 'Internal TLS',
    rules: {
      max_validity_days: 397,
      allowed_domains: ['example.com'],
      allow_subdomains: true,
      allowed_ip_ranges: ['127.0.0.0/8'],
      allowed_algorithms: ['ECDSA', 'RSA'],
    },
  })
  console.log(`policy        ${policy.policy_code} v${policy.version}`)

  const issue = async (cn, sans, kind) => {
    const outcome = await clm.issueCertificate(system, {
      issuer_id: intermediate.certificate.id,
      policy_id: policy.id,
      subject: { common_name: cn },
      sans,
      kind,
      validity_days: 90,
      key_algorithm: 'ecdsa_p256',
    })
    if (outcome.outcome !== 'issued') throw new Error(`${cn}: the request waits for approval`)
    return outcome.certificate
  }
  const server = await issue('server.example.com',
    [{ type: 'DNS', value: 'server.example.com' }, { type: 'IP', value: '127.0.0.1' }], 'tls_server')
  console.log(`server        ${server.subject_dn} serial ${server.serial_number}`)
  const client = await issue('client.example.com',
    [{ type: 'DNS', value: 'client.example.com' }], 'tls_client')
  console.log(`client        ${client.subject_dn} serial ${client.serial_number}`)
  const retired = await issue('retired.example.com',
    [{ type: 'DNS', value: 'retired.example.com' }], 'tls_server')
  await clm.revokeCertificate(system, retired.id, 'key_compromise', 'pki example: a compromised key')
  console.log(`revoked       ${retired.subject_dn} serial ${retired.serial_number} (key_compromise)`)

  const generated = await clm.generateCrl(system, intermediate.certificate.id)
  console.log(`CRL           #${generated.crl_number} with ${generated.entry_count} entr(ies), ${generated.size_bytes} bytes`)
  // Generation stores the CRL; serving reads the latest of its scope.
  const crl = await clm.latestCrl(system, intermediate.certificate.id)

  write('root.pem', root.certificate.certificate_pem)
  write('intermediate.pem', intermediate.certificate.certificate_pem)
  write('server.pem', server.certificate_pem)
  writeKey('server.key', await clm.exportPrivateKey(system, server.id))
  write('client.pem', client.certificate_pem)
  writeKey('client.key', await clm.exportPrivateKey(system, client.id))
  write('chain.pem', server.certificate_pem + intermediate.certificate.certificate_pem)
  write('crl.pem', crl.pem)
}

async function main() {
  mkdirSync(outDir, { recursive: true })
  const opts = options()
  console.log(`opening clm:  ${opts.sqlite_dir ? `sqlite ${opts.sqlite_dir}` : 'postgres'}`)
  const clm = await Clm.open(opts)
  try {
    await build(clm)
  } finally {
    await clm.close()
  }
}

main().catch((err) => {
  console.error(`pki failed: ${err.message} [${err.code}]`)
  process.exit(1)
})
