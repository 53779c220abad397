/**
 * MQTT topic layout of the wire contract. Every device has exactly four
 * topics, all under `doorbell/v1/<device_id>/`:
 *  - `cmd`: signed commands to the device (never retained; retained ones are ignored);
 *  - `evt`: signed events from the device, including command results;
 *  - `status`: the device's latest signed `Status` event, retained, also its last will;
 *  - `data`: signed `ItemChunk` events carrying stored ciphertext, in answer to a
 *    FetchItem command (never retained; only a fetching hub subscribes to it).
 */

/** Lowercase letters, digits and dashes; 3 to 63 characters; never an MQTT wildcard or level separator. */
const DEVICE_ID = /^[a-z0-9][a-z0-9-]{2,62}$/;

export const TOPIC_PREFIX = 'doorbell/v1';

export type TopicChannel = 'cmd' | 'evt' | 'status' | 'data';

export interface DeviceTopics {
  readonly cmd: string;
  readonly evt: string;
  readonly status: string;
  readonly data: string;
}

/** Whether `id` is a well-formed device id. */
export function isDeviceId(id: unknown): id is string {
  return typeof id === 'string' && DEVICE_ID.test(id);
}

/** Throws a TypeError naming the value unless `id` is a well-formed device id. */
export function validateDeviceId(id: unknown): string {
  if (!isDeviceId(id)) {
    throw new TypeError(
      `invalid device id ${JSON.stringify(id)}: expected ^[a-z0-9][a-z0-9-]{2,62}$ (lowercase letters, digits, dashes)`,
    );
  }
  return id;
}

/** The four topics of one device. */
export function topicsFor(deviceId: string): DeviceTopics {
  validateDeviceId(deviceId);
  const base = `${TOPIC_PREFIX}/${deviceId}`;
  return { cmd: `${base}/cmd`, evt: `${base}/evt`, status: `${base}/status`, data: `${base}/data` };
}

/**
 * Splits a device topic into its device id and channel; returns undefined for any
 * topic that is not exactly `doorbell/v1/<valid device id>/<cmd|evt|status|data>`.
 */
export function parseDeviceTopic(topic: string): { deviceId: string; channel: TopicChannel } | undefined {
  const parts = topic.split('/');
  if (parts.length !== 4 || `${parts[0]}/${parts[1]}` !== TOPIC_PREFIX) return undefined;
  const [, , deviceId, channel] = parts;
  if (!isDeviceId(deviceId)) return undefined;
  if (channel !== 'cmd' && channel !== 'evt' && channel !== 'status' && channel !== 'data') return undefined;
  return { deviceId, channel };
}
