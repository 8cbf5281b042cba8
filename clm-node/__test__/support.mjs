// Shared by the node:test suites: the package under test, temporary
// databases, and the openssl command.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
/** CLM_NODE_PACKAGE points at an installed package (node_modules/clm); default: clm-node/. */
export const packageDir = process.env.CLM_NODE_PACKAGE ?? fileURLToPath(new URL('..', import.meta.url))
export const clm = require(packageDir)

/** A fresh SQLite clm in a temporary folder; `cleanup()` closes and removes it. */
export async function openTemporary(prefix = 'clm-node-') {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  const handle = await clm.Clm.open({
    sqlite_dir: join(dir, 'data'),
    master_key_file: join(dir, 'master.key'),
    create_master_key: true,
  })
  return {
    dir,
    clm: handle,
    async cleanup() {
      await handle.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Runs openssl; `{status, stdout, stderr}`. */
export const openssl = (args, { input, cwd } = {}) =>
  spawnSync('openssl', args, { input, cwd, encoding: 'utf8' })

/** snake_case to camelCase, as napi names methods. */
export const camel = (name) => name.replace(/_([a-z])/g, (_, c) => c.toUpperCase())
