// A small certificate authority for one home broker, driven through the
// `openssl` command (argument arrays, never a shell string).
import { execFile } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { chmod, mkdtemp, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const OPENSSL = process.env.OPENSSL_BIN ?? 'openssl';

/** Runs `openssl` with `args` (in `cwd` when given); rejects with its stderr when it fails. */
export function openssl(args: string[], cwd?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(OPENSSL, args, { encoding: 'utf8', cwd }, (err, stdout, stderr) => {
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

/*
 * Revocation. `openssl ca` keeps the CA's record of revoked certificates in an
 * index file and numbers its CRLs; the configuration names them relative to the
 * CA's directory, where openssl runs, so no path is ever parsed by openssl's
 * configuration syntax. Certificates are issued with `openssl x509 -req` and are
 * not in the index until they are revoked (`openssl ca -revoke` adds them then).
 */
const CA_CONFIG = 'ca-openssl.cnf';
const CA_INDEX = 'ca-index.txt';
const CA_CRL_NUMBER = 'ca-crlnumber';
/** The CRL Mosquitto loads (`crlfile`), in the CA's directory. */
export const CRL_FILE = 'crl.pem';
const DAY_MS = 24 * 3600 * 1000;

/**
 * Sets up revocation for the CA in `dir` and writes its first CRL, empty
 * (Mosquitto refuses to start when its `crlfile` is missing). Returns the CRL's path.
 */
export async function initRevocation(ca: KeyAndCert, dir: string): Promise<string> {
  await writeFile(
    join(dir, CA_CONFIG),
    [
      "# Generated by broker: the home CA's revocation records, for `openssl ca`.",
      '[ ca ]',
      'default_ca = home_ca',
      '[ home_ca ]',
      `database = ${CA_INDEX}`,
      `crlnumber = ${CA_CRL_NUMBER}`,
      'default_md = sha256',
      'unique_subject = no',
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  await writeFile(join(dir, CA_INDEX), '', { mode: 0o644 });
  await writeFile(join(dir, CA_CRL_NUMBER), '1000\n', { mode: 0o644 });
  return writeCrl(ca, dir);
}

/**
 * Signs a fresh CRL of every certificate revoked so far and puts it in place
 * atomically (Mosquitto may read it at any moment). It is valid until the CA
 * expires: a CRL past its next update would make OpenSSL refuse every client,
 * and every certificate of this CA ends with the CA.
 */
export async function writeCrl(ca: KeyAndCert, dir: string): Promise<string> {
  const caCert = new X509Certificate(await readFile(ca.cert));
  const days = Math.max(1, Math.ceil((Date.parse(caCert.validTo) - Date.now()) / DAY_MS) + 1);
  const tmp = `${CRL_FILE}.tmp`;
  await openssl(
    [
      'ca',
      '-config',
      CA_CONFIG,
      '-gencrl',
      '-keyfile',
      ca.key,
      '-cert',
      ca.cert,
      '-crldays',
      String(days),
      '-out',
      tmp,
    ],
    dir,
  );
  await chmod(join(dir, tmp), 0o644);
  await rename(join(dir, tmp), join(dir, CRL_FILE));
  return join(dir, CRL_FILE);
}

export interface Revocation {
  /** The certificate's serial number, upper-case hex as openssl prints it. */
  serial: string;
  /** The certificate had been revoked before. */
  already: boolean;
  crl: string;
}

/** Revokes the certificate at `certPath` (issued by `ca`) and writes a new CRL. */
export async function revokeCertificate(ca: KeyAndCert, dir: string, certPath: string): Promise<Revocation> {
  const cert = new X509Certificate(await readFile(certPath));
  const caCert = new X509Certificate(await readFile(ca.cert));
  if (!cert.checkIssued(caCert) || !cert.verify(caCert.publicKey)) {
    throw new Error(`${certPath} was not issued by the CA in ${dir}`);
  }
  let already = false;
  try {
    await openssl(
      ['ca', '-config', CA_CONFIG, '-revoke', certPath, '-keyfile', ca.key, '-cert', ca.cert],
      dir,
    );
  } catch (err) {
    if (!/Already revoked/.test((err as Error).message)) throw err;
    already = true;
  }
  return { serial: cert.serialNumber.toUpperCase(), already, crl: await writeCrl(ca, dir) };
}
