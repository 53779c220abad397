// A small certificate authority for one home broker, driven through the
// `openssl` command (argument arrays, never a shell string).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const OPENSSL = process.env.OPENSSL_BIN ?? 'openssl';

/** Runs `openssl` with `args`; rejects with its stderr when it fails. */
export function openssl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(OPENSSL, args, { encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`openssl ${args[0] ?? ''} failed: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

export interface KeyAndCert {
  key: string;
  cert: string;
}

export interface LeafRequest {
  /** File name stem: `<stem>.key` and `<stem>.crt` in the output directory. */
  stem: string;
  commonName: string;
  usage: 'server' | 'client';
  /** DNS names and IP addresses for subjectAltName (server certificates). */
  altNames?: string[];
}

/**
 * Creates an EC P-256 private key at `path` with mode 0600. The file is created
 * empty with that mode before openssl writes it, so it is never readable by others.
 */
export async function createKey(path: string): Promise<void> {
  const handle = await open(path, 'w', 0o600);
  await handle.close();
  await chmod(path, 0o600);
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path]);
  await chmod(path, 0o600);
}

/** Creates a self-signed CA certificate (and its key) in `dir`. */
export async function createCa(dir: string, commonName: string, days: number): Promise<KeyAndCert> {
  const key = join(dir, 'ca.key');
  const cert = join(dir, 'ca.crt');
  await createKey(key);
  await openssl([
    'req',
    '-x509',
    '-new',
    '-key',
    key,
    '-sha256',
    '-days',
    String(days),
    '-subj',
    subject(commonName),
    '-addext',
    'basicConstraints=critical,CA:TRUE,pathlen:0',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-out',
    cert,
  ]);
  return { key, cert };
}

/** Issues a server or client certificate signed by `ca`, with a fresh key. */
export async function issueLeaf(
  ca: KeyAndCert,
  dir: string,
  request: LeafRequest,
  days: number,
): Promise<KeyAndCert> {
  const key = join(dir, `${request.stem}.key`);
  const cert = join(dir, `${request.stem}.crt`);
  await createKey(key);
  const work = await mkdtemp(join(tmpdir(), 'doorbell-csr-'));
  try {
    const csr = join(work, 'req.csr');
    const ext = join(work, 'ext.cnf');
    await openssl(['req', '-new', '-key', key, '-subj', subject(request.commonName), '-out', csr]);
    await writeFile(ext, `${extensions(request).join('\n')}\n`);
    await openssl([
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      ca.cert,
      '-CAkey',
      ca.key,
      '-set_serial',
      `0x${randomBytes(16).toString('hex')}`,
      '-days',
      String(days),
      '-sha256',
      '-extfile',
      ext,
      '-out',
      cert,
    ]);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return { key, cert };
}

function extensions(request: LeafRequest): string[] {
  const lines = [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    `extendedKeyUsage=${request.usage === 'server' ? 'serverAuth' : 'clientAuth'}`,
  ];
  const names = request.altNames ?? [];
  if (names.length > 0) {
    lines.push(`subjectAltName=${names.map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(',')}`);
  }
  return lines;
}

/** `/CN=<name>`; refuses characters that openssl's -subj syntax would interpret. */
function subject(commonName: string): string {
  if (!/^[A-Za-z0-9 ._-]{1,64}$/.test(commonName)) {
    throw new TypeError(`invalid certificate common name ${JSON.stringify(commonName)}`);
  }
  return `/CN=${commonName}`;
}
