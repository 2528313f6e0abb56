// The real Modbus peer: Debian's python3-pymodbus serving two unit ids on 127.0.0.1 (no sockets mocked).
import { spawn, type ChildProcess } from "node:child_process";
import net from "node:net";
import { once } from "node:events";

const SCRIPT = `
import sys, logging
from pymodbus.server import StartTcpServer
from pymodbus.datastore import ModbusSlaveContext, ModbusServerContext, ModbusSequentialDataBlock
def unit(hr, ir):
    # pymodbus 3.0 data blocks are 1-based: address 0 on the wire is index 1 here.
    return ModbusSlaveContext(hr=ModbusSequentialDataBlock(1, hr), ir=ModbusSequentialDataBlock(1, ir), zero_mode=False)
units = {
    1: unit([215, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20] + [0] * 20, [0, 0, 0, 0, 1, 2] + [0] * 20),
    2: unit([0xff38] + [0] * 30, [0, 0, 0, 0, 0, 7] + [0] * 20),
}
StartTcpServer(context=ModbusServerContext(slaves=units, single=False), address=("127.0.0.1", int(sys.argv[1])))
`;

async function freePort(): Promise<number> {
  const s = net.createServer();
  s.listen(0, "127.0.0.1");
  await once(s, "listening");
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Resolves once the server accepts a TCP connection (retrying on refusal, the process is still starting). */
async function untilListening(port: number, proc: ChildProcess): Promise<void> {
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`pymodbus exited with ${proc.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, "127.0.0.1");
      s.once("connect", () => { s.destroy(); resolve(true); });
      s.once("error", () => { s.destroy(); setTimeout(() => resolve(false), 50); });
    });
    if (ok) return;
  }
}

export async function startModbusPeer(): Promise<{ port: number; stop(): Promise<void> }> {
  const port = await freePort();
  const proc = spawn("/usr/bin/python3", ["-c", SCRIPT, String(port)], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proc.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
  try {
    await untilListening(port, proc);
  } catch (err) {
    throw new Error(`${(err as Error).message}: ${stderr}`);
  }
  return {
    port,
    async stop() {
      if (proc.exitCode === null) {
        proc.kill("SIGTERM");
        await once(proc, "exit");
      }
    },
  };
}
