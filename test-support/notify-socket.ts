import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { waitFor } from './wait-for.js';

/**
 * systemd's side, for real: an AF_UNIX datagram socket at `path` that, like
 * the manager, closes file descriptors passed with a message (systemd-notify's
 * BARRIER=1 waits for that).
 */
const PY_RECEIVER = `
import array, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
while True:
    msg, anc, flags, addr = s.recvmsg(4096, socket.CMSG_SPACE(64))
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds = array.array('i')
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
            for fd in fds:
                os.close(fd)
    sys.stdout.write(msg.decode() + '\\n')
    sys.stdout.flush()
`;

/** A real AF_UNIX datagram socket listening at `path`, collecting every datagram. */
export async function listenNotifySocket(
  path: string,
  kind: 'python' | 'socat',
): Promise<{ child: ChildProcess; messages: () => string }> {
  const child =
    kind === 'python'
      ? spawn('/usr/bin/python3', ['-c', PY_RECEIVER, path], { stdio: ['ignore', 'pipe', 'pipe'] })
      : // fork: one child per datagram, so it keeps receiving after the first.
        spawn('socat', ['-u', `UNIX-RECVFROM:${path},fork`, 'STDOUT'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += `${d.toString()}\n`;
  });
  await waitFor(() => existsSync(path), `${kind} creating the socket`, 2000);
  return { child, messages: () => out };
}
