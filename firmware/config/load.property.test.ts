import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ConfigError, parseConfig } from './load.js';

test('property: any JSON value is either a valid config or a ConfigError listing problems by path', () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 4 }), (value) => {
      try {
        const config = parseConfig(value, 'fuzz');
        assert.equal(typeof config.stateDir, 'string');
      } catch (err) {
        assert.ok(err instanceof ConfigError, `threw ${String(err)}`);
        assert.ok(err.problems.length > 0);
        for (const p of err.problems) assert.equal(typeof p.path, 'string');
      }
    }),
    { numRuns: 500 },
  );
});

test('property: configs shaped like real ones are validated field by field, never crash', () => {
  const section = fc.dictionary(
    fc.constantFrom('url', 'backend', 'mode', 'maxOnMs', 'minPressMs', 'hubKeys', 'level', 'line', 'chip'),
    fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.string())),
  );
  const shaped = fc.record(
    {
      deviceId: fc.oneof(fc.string(), fc.stringMatching(/^[a-z0-9][a-z0-9-]{2,20}$/)),
      stateDir: fc.string(),
      broker: section,
      trust: section,
      hal: fc.record({ backend: fc.constantFrom('sim', 'linux', 'x'), button: section, chime: section }),
      log: section,
    },
    { requiredKeys: [] },
  );
  fc.assert(
    fc.property(shaped, (value) => {
      try {
        parseConfig(value, 'fuzz');
      } catch (err) {
        assert.ok(err instanceof ConfigError, `threw ${String(err)}`);
      }
    }),
    { numRuns: 500 },
  );
});
