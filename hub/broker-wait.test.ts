import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { freePort } from '../common/free-port.js';
import { silentLogger } from '../common/logger.js';
import { MqttConnection } from '../common/mqtt-connection.js';
import { waitForBroker } from './broker-wait.js';
import { CommandTimeoutError } from './commander.js';

test('a refused port ends the wait at once with its cause, long before the timeout', async () => {
  const port = await freePort(); // nothing listens there
  const url = `mqtt://127.0.0.1:${port}`;
  const connection = new MqttConnection({
    url,
    clientId: 'wait-refused',
    logger: silentLogger(),
    subscriptions: [],
  });
  connection.start();
  try {
    await assert.rejects(waitForBroker(connection, url, 60_000), (err) => {
      assert.ok(err instanceof CommandTimeoutError);
      assert.match(err.message, new RegExp(`cannot reach the broker at mqtt://127\\.0\\.0\\.1:${port}: `));
      assert.doesNotMatch(err.message, /within/, 'ended by the cause, not by the timeout');
      return true;
    });
  } finally {
    await connection.stop();
  }
});

test('a broker that accepts and never answers ends the wait at the timeout, naming it', async () => {
  const silent = createServer(() => undefined); // takes the connection, says nothing
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const address = silent.address();
  assert.ok(address !== null && typeof address === 'object');
  const url = `mqtt://127.0.0.1:${address.port}`;
  const connection = new MqttConnection({
    url,
    clientId: 'wait-silent',
    logger: silentLogger(),
    subscriptions: [],
  });
  connection.start();
  try {
    await assert.rejects(waitForBroker(connection, url, 300), /cannot reach the broker at \S+ within 300 ms/);
  } finally {
    await connection.stop();
    silent.close();
  }
});
