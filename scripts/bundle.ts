// `npm run bundle -- [--key PATH] [--hardware STR] [--security-counter N] [--expires-days N] [--out FILE]`
// Builds a signed firmware bundle from this working tree; the last line printed is its path.
import { CliUsageError, parseCli, versionLine, wantsVersion } from '../common/cli-args.js';
import { defaultHardware, devKeyPath } from '../flash/release.js';
import { publicKeyToText } from '../proto/keys.js';
import { buildFirmwareBundle } from './bundle-build.js';

const USAGE = `usage: npm run bundle -- [options]

  --key PATH              release key (from \`doorbell-flash keygen\`); without it a development
                          build signed with ${devKeyPath()}
  --hardware STR          hardware compatibility string (default ${defaultHardware()})
  --security-counter N    anti-rollback counter (default: flash/release.ts)
  --expires-days N        the bundle can be installed for this many days (default 365)
  --out FILE              where to write it (default dist/bundles/...)
  -h, --help              this help;  -V, --version  print the version`;

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (wantsVersion(argv)) {
    process.stdout.write(versionLine('bundle'));
    return 0;
  }
  const { values, positionals } = parseCli('bundle', argv, {
    key: { type: 'string' },
    hardware: { type: 'string' },
    'security-counter': { type: 'string' },
    'expires-days': { type: 'string' },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (positionals.length > 0) throw new CliUsageError('bundle', `unexpected argument '${positionals[0]}'`);
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const int = (name: string, text: string | undefined, max: number): number | undefined => {
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 0 || n > max)
      throw new CliUsageError('bundle', `--${name} must be an integer 0..${max}, got '${text}'`);
    return n;
  };
  const built = await buildFirmwareBundle({
    keyPath: values.key,
    devKeyPath: devKeyPath(),
    hardware: values.hardware ?? defaultHardware(),
    securityCounter: int('security-counter', values['security-counter'], 0x7fff_ffff),
    expiresDays: int('expires-days', values['expires-days'], 3650),
    out: values.out,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  const { meta } = built;
  process.stdout.write(
    `${meta.hardware} ${meta.version} security counter ${meta.securityCounter}${built.development ? ' (development build)' : ''}, ${built.bytes} bytes\n` +
      `release key ${built.key.keyId}: ${publicKeyToText(built.key)}\n` +
      `${built.path}\n`,
  );
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof CliUsageError) {
      process.stderr.write(err.line());
      process.exit(2);
    }
    process.stderr.write(`bundle: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
