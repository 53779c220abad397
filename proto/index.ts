/**
 * The wire contract of Open Doorbell: generated protobuf types, Ed25519 keys,
 * sealing and opening of signed envelopes, topics and counters.
 * See proto/README.md.
 */

export {
  ageRecipientProblem,
  RECIPIENT_FINGERPRINT,
  recipientFingerprint,
  recipientForDisplay,
} from './age-recipient.js';
export { failure, MAX_ERROR_MESSAGE_CHARS } from './command-result.js';
export { isCorrelationId, newCorrelationId } from './correlation.js';
export {
  CounterStore,
  CounterStoreError,
  type CounterStoreOptions,
  DEFAULT_COUNTER_RESERVE,
} from './counter-store.js';
export {
  MAX_DATA_ENVELOPE_BYTES,
  MAX_ENVELOPE_BYTES,
  maxEnvelopeBytes,
  SealError,
  sealCommand,
  sealEvent,
} from './envelope.js';
export { doorbell } from './gen/doorbell.js';
export { checkHeader, type HeaderFields, type HeaderInit, MAX_COUNTER } from './header.js';
export {
  generateSigningKey,
  KeyFileError,
  type KeyFileProblem,
  KeyFormatError,
  keyIdOf,
  loadOrCreateSigningKey,
  loadSigningKey,
  PUBLIC_KEY_TEXT_PREFIX,
  privateKeyToPem,
  publicKeyFromText,
  publicKeyToPem,
  publicKeyToText,
  type SigningKey,
  signingKeyFromPem,
  type VerifyKey,
  verifyKeyFromRaw,
  verifyKeyOf,
} from './keys.js';
export {
  devicePairingProof,
  fingerprintOf,
  formatPairingCode,
  MAX_PAIRING_NONCE_BYTES,
  MIN_PAIRING_NONCE_BYTES,
  newPairingSecret,
  PAIRING_PROOF_BYTES,
  PAIRING_SECRET_BYTES,
  type PairingCode,
  PairingCodeError,
  pairingKey,
  pairingProof,
  pairingTranscript,
  parsePairingCode,
  proofMatches,
  sealPairCommand,
} from './pairing.js';
export {
  DEFAULT_REPLAY_RESERVE,
  DEFAULT_REPLAY_WINDOW,
  MAX_REPLAY_FILE_BYTES,
  MAX_REPLAY_KEYS,
  type ReplayDecision,
  ReplayGuard,
  ReplayGuardError,
  type ReplayGuardOptions,
} from './replay-guard.js';
export {
  type DeviceTopics,
  isDeviceId,
  parseDeviceTopic,
  TOPIC_PREFIX,
  type TopicChannel,
  topicsFor,
  validateDeviceId,
} from './topics.js';
export {
  DEFAULT_MAX_CLOCK_SKEW_MS,
  errorKindOf,
  openCommand,
  openEvent,
  openPairCommand,
  type RejectKind,
  ReplayError,
  type VerifyContext,
  VerifyError,
} from './verify.js';
