// examples/node/pki.mjs writes the files examples/pki.rs writes; openssl
// checks them as the Rust test of the pki example does.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { openssl, packageDir } from './support.mjs'

const example = fileURLToPath(new URL('../../examples/node/pki.mjs', import.meta.url))

test('the pki example writes a verifiable PKI, and runs again on the same data', () => {
  const out = mkdtempSync(join(tmpdir(), 'clm-node-pki-'))
  try {
    const env = { ...process.env, CLM_NODE_PACKAGE: packageDir }
    for (const name of ['CLM_SECURE_DATABASE_URL', 'CLM_CORE_DATABASE_URL', 'CLM_MASTER_KEY', 'CLM_MASTER_KEY_FILE']) {
      delete env[name]
    }
    const run = () => {
      const result = spawnSync(process.execPath, [example, out], { env, encoding: 'utf8' })
      assert.equal(result.status, 0, `pki example failed:\n${result.stdout}${result.stderr}`)
      return result.stdout
    }
    const first = run()
    assert.match(first, /creating/)
    assert.ok(existsSync(join(out, 'master.key')))

    const ok = (args) => {
      const result = openssl(args, { cwd: out })
      assert.equal(result.status, 0, `openssl ${args.join(' ')}:\n${result.stdout}${result.stderr}`)
      return result.stdout + result.stderr
    }
    ok(['verify', '-CAfile', 'root.pem', '-untrusted', 'intermediate.pem', 'server.pem', 'client.pem'])
    ok(['crl', '-in', 'crl.pem', '-CAfile', 'intermediate.pem', '-noout'])
    ok(['verify', '-crl_check', '-CRLfile', 'crl.pem', '-CAfile', 'root.pem', '-untrusted', 'intermediate.pem', 'server.pem'])
    const crl = ok(['crl', '-in', 'crl.pem', '-noout', '-text'])
    assert.match(crl, /Key Compromise/)
    assert.equal(crl.match(/Serial Number:/g).length, 1, crl)
    const server = ok(['x509', '-in', 'server.pem', '-noout', '-text'])
    assert.match(server, /DNS:server\.example\.com/)
    assert.match(server, /IP Address:127\.0\.0\.1/)
    assert.match(ok(['x509', '-in', 'client.pem', '-noout', '-text']), /TLS Web Client Authentication/)
    const intermediate = ok(['x509', '-in', 'intermediate.pem', '-noout', '-text'])
    assert.match(intermediate, /http:\/\/pki\.example\.com\/root\.crl/)
    assert.match(intermediate, /pathlen:0/)
    for (const [cert, key] of [['server.pem', 'server.key'], ['client.pem', 'client.key']]) {
      assert.equal(ok(['x509', '-in', cert, '-noout', '-pubkey']), ok(['pkey', '-in', key, '-pubout']), `${key} matches ${cert}`)
    }
    const chain = readFileSync(join(out, 'chain.pem'), 'utf8')
    assert.ok(chain.startsWith(readFileSync(join(out, 'server.pem'), 'utf8')))
    assert.equal(chain.match(/BEGIN CERTIFICATE/g).length, 2)

    const second = run()
    assert.match(second, /using/)
  } finally {
    rmSync(out, { recursive: true, force: true })
  }
})
