import { once } from 'node:events';
import { type BrokerProblem, describeBrokerProblem } from '../common/broker-errors.js';
import type { MqttConnection } from '../common/mqtt-connection.js';
import { CommandTimeoutError } from './commander.js';

/**
 * Waits until `connection` is connected. A failure retrying cannot fix (an
 * untrusted certificate, a refused port, ...) ends the wait at once with its
 * cause and what to change; otherwise the wait ends after `timeoutMs`, naming
 * the last cause seen.
 */
export async function waitForBroker(
  connection: MqttConnection,
  url: string,
  timeoutMs: number,
): Promise<void> {
  if (connection.connected) return;
  let last: BrokerProblem | undefined;
  let timer: NodeJS.Timeout | undefined;
  let onProblem: ((p: BrokerProblem) => void) | undefined;
  try {
    await Promise.race([
      once(connection, 'connected'),
      new Promise<never>((_, reject) => {
        onProblem = (p: BrokerProblem) => {
          last = p;
          if (p.permanent)
            reject(new CommandTimeoutError(`cannot reach the broker at ${url}: ${describeBrokerProblem(p)}`));
        };
        connection.on('problem', onProblem);
        timer = setTimeout(
          () =>
            reject(
              new CommandTimeoutError(
                `cannot reach the broker at ${url} within ${timeoutMs} ms${last ? `: ${describeBrokerProblem(last)}` : ''}`,
              ),
            ),
          timeoutMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onProblem) connection.off('problem', onProblem);
  }
}
