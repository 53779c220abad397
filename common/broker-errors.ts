/**
 * Why a connection to the MQTT broker failed, in words a user can act on.
 * Each cause says whether retrying can fix it: a wrong CA, a missing client
 * certificate, the wrong scheme for the port, an unknown host, a closed port
 * or a refusal by the broker's access rules stay wrong however often one
 * retries; a one-command CLI gives up at once, the daemon keeps trying (a
 * broker being set up comes right) and says why, once per change.
 */
export type BrokerCause =
  | 'untrusted-certificate'
  | 'certificate-required'
  | 'certificate-refused'
  | 'plain-on-tls'
  | 'tls-on-plain'
  | 'unknown-host'
  | 'refused'
  | 'not-authorised'
  | 'other';

export interface BrokerProblem {
  cause: BrokerCause;
  /** Retrying the same settings cannot help: a CLI should stop and say so. */
  permanent: boolean;
  /** One line: what happened. */
  message: string;
  /** One line: what to change, when we know. */
  hint?: string;
}

/** MQTT 5 CONNACK reason codes that mean "not with these credentials". */
const NOT_AUTHORISED_CODES = new Set([0x86, 0x87, 0x8a, 0x8c, 4, 5]);

const UNTRUSTED_TLS_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
]);

/** String(value), or a placeholder for values that cannot be turned into one (no toString). */
function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return 'an unprintable error';
  }
}

function field(err: unknown, name: string): unknown {
  return typeof err === 'object' && err !== null ? (err as Record<string, unknown>)[name] : undefined;
}

/** Classifies an error from the MQTT client (or its socket) for a connection to `url`. */
export function classifyBrokerError(err: unknown, url: string): BrokerProblem {
  const code = field(err, 'code');
  const rawMessage = field(err, 'message');
  const text = typeof rawMessage === 'string' ? rawMessage.slice(0, 300) : safeString(err).slice(0, 300);
  const tls = url.startsWith('mqtts://');
  const firstLine = (text.split('\n')[0] ?? '').replace(/[\r\n]/g, ' ');
  if (typeof code === 'number' && NOT_AUTHORISED_CODES.has(code)) {
    return {
      cause: 'not-authorised',
      permanent: true,
      message: `the broker refused this client: ${firstLine}`,
      hint: 'its access rules do not allow this certificate or client id (a doorbell must use its own certificate, whose CN is its device id)',
    };
  }
  if (typeof code === 'string') {
    if (UNTRUSTED_TLS_CODES.has(code)) {
      return {
        cause: 'untrusted-certificate',
        permanent: true,
        message: `the broker's certificate is not trusted (${code})`,
        hint: "pass --ca with the CA certificate that signed it (make-broker-config's ca.crt)",
      };
    }
    if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
      return {
        cause: 'untrusted-certificate',
        permanent: true,
        message: `the broker's certificate is not valid now (${code})`,
        hint: "check this machine's clock, or renew the broker's certificate",
      };
    }
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
      return {
        cause: 'untrusted-certificate',
        permanent: true,
        message: "the broker's certificate is not for this host name",
        hint: 'connect by a name the certificate lists (make-broker-config --server-name)',
      };
    }
    if (code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' || /alert certificate required/.test(text)) {
      return {
        cause: 'certificate-required',
        permanent: true,
        message: 'the broker requires a client certificate',
        hint: 'pass --cert and --key (make-broker-config makes one for the hub and one per doorbell)',
      };
    }
    if (/^ERR_SSL_.*(BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_REVOKED|CERTIFICATE_EXPIRED)/.test(code)) {
      return {
        cause: 'certificate-refused',
        permanent: true,
        message: `the broker refused this client's certificate (${code})`,
        hint: "use a certificate signed by the broker's CA, not revoked and not expired",
      };
    }
    if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number/.test(text)) {
      return {
        cause: 'tls-on-plain',
        permanent: true,
        message: 'the broker does not speak TLS on this port',
        hint: 'use mqtt:// for this port, or the TLS port with mqtts://',
      };
    }
    if (code === 'ECONNRESET' || code === 'EPIPE') {
      return tls
        ? {
            cause: 'tls-on-plain',
            permanent: true,
            message: 'the broker closed the connection during the TLS handshake',
            hint: 'this may be a plain MQTT port: use mqtt://, or the TLS port with mqtts://',
          }
        : {
            cause: 'plain-on-tls',
            permanent: true,
            message: 'the broker closed the connection before answering CONNECT',
            hint: 'this may be a TLS port: use mqtts:// with --ca (and --cert/--key)',
          };
    }
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME') {
      return {
        cause: 'unknown-host',
        permanent: code !== 'EAI_AGAIN',
        message: `the broker's host name does not resolve (${code})`,
        hint: 'check the host in the broker URL',
      };
    }
    if (code === 'ECONNREFUSED') {
      return {
        cause: 'refused',
        permanent: true,
        message: 'nothing listens on that port (connection refused)',
        hint: 'is the broker running, and is this its port?',
      };
    }
  }
  return { cause: 'other', permanent: false, message: firstLine || 'an unknown error' };
}

/** `message; hint` as one line. */
export function describeBrokerProblem(p: BrokerProblem): string {
  return p.hint === undefined ? p.message : `${p.message}; ${p.hint}`;
}
