import type { Logger } from '../../common/logger.js';
import type { Backend } from '../backend.js';
import { SimWires } from './sim-wires.js';
import { startWireServer, type WireServer } from './wire-server.js';

/** The sim backend: in-process wires and optionally the wire socket. */
export async function openSimBackend(deps: { logger: Logger; socketPath?: string }): Promise<Backend> {
  const wires = new SimWires();
  let server: WireServer | undefined;
  if (deps.socketPath !== undefined) {
    server = await startWireServer(wires, deps.socketPath, deps.logger.child({ component: 'sim-wires' }));
  }
  return {
    buttonLine: wires.buttonLine,
    chimeLine: wires.chimeLine,
    ledLine: wires.ledLine,
    sim: wires,
    close: async () => {
      await server?.close();
      await wires.close();
    },
  };
}
