import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { COMMAND_ROLES, type CommandKind, ROLE_NAMES, Role, roleFromName } from '../proto/roles.js';
import { chooseSigner, parseSigner, roleRefusalHint, SignerChoiceError } from './signer.js';

const KINDS = Object.keys(COMMAND_ROLES) as CommandKind[];

test('after a default pair (hub key Operate), status and ring go with the hub key; mute, keys and OTA with the owner key', () => {
  const pick = (kind: CommandKind) => chooseSigner(kind, { hasHubKey: true, hasOwnerKey: true });
  assert.equal(pick('getStatus'), 'hub');
  assert.equal(pick('listKeys'), 'hub');
  assert.equal(pick('ringChimeTest'), 'hub');
  assert.equal(pick('setChimeMuted'), 'owner');
  assert.equal(pick('addKey'), 'owner');
  assert.equal(pick('otaBegin'), 'owner');
  assert.equal(pick('pair'), 'owner');
  assert.equal(
    chooseSigner('setChimeMuted', { hasHubKey: true, hasOwnerKey: true, hubRole: 'manage' }),
    'hub',
  );
});

test('the chosen key always has the role the command needs when one of the keys has it, and the hub key is preferred', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...KINDS),
      fc.option(fc.constantFrom(...ROLE_NAMES), { nil: undefined }),
      fc.boolean(),
      fc.boolean(),
      (kind, hubRole, hasHubKey, hasOwnerKey) => {
        const chosen = chooseSigner(kind, { hubRole, hasHubKey, hasOwnerKey });
        const needed = COMMAND_ROLES[kind];
        const hubEnough = hasHubKey && needed !== 'pairing' && roleFromName(hubRole ?? 'operate') >= needed;
        if (hubEnough) assert.equal(chosen, 'hub', 'least privilege: the hub key when it is enough');
        else if (hasOwnerKey) assert.equal(chosen, 'owner', 'the owner key (Administer) otherwise');
        if (chosen === 'hub' && needed !== 'pairing' && hasOwnerKey)
          assert.ok(roleFromName(hubRole ?? 'operate') >= needed);
      },
    ),
  );
});

test('--as always wins, and only owner or hub is accepted', () => {
  fc.assert(
    fc.property(fc.constantFrom(...KINDS), fc.constantFrom('owner' as const, 'hub' as const), (kind, as) => {
      assert.equal(chooseSigner(kind, { as, hasHubKey: false, hasOwnerKey: false, hubRole: 'view' }), as);
    }),
  );
  assert.equal(parseSigner(undefined), undefined);
  assert.throws(() => parseSigner('root'), SignerChoiceError);
});

test('the hint after a role refusal names the role needed and the way out', () => {
  assert.match(
    roleRefusalHint('setChimeMuted', 'hub'),
    /needs manage.*--as owner.*keys role <device-id> <hub key id> manage/,
  );
  assert.match(roleRefusalHint('addKey', 'owner'), /removed or demoted/);
  assert.equal(Role.MANAGE, roleFromName('manage'));
});
