// A module as IoT Edge runs it: credentials from the workload API via ModuleClient.fromEnvironment().
// Sends {n} on output "out1" every 100 ms.
import { Message, ModuleClient } from "azure-iot-device";
import { Mqtt } from "azure-iot-device-mqtt";

async function main(): Promise<void> {
  const client = await ModuleClient.fromEnvironment(Mqtt);
  client.on("error", (err: Error) => {
    console.error(`client error: ${err.message}`);
    process.exit(2);
  });
  await client.open();
  console.log(`sender connected as ${process.env.IOTEDGE_DEVICEID}/${process.env.IOTEDGE_MODULEID}`);
  let n = 0;
  setInterval(() => {
    const m = new Message(JSON.stringify({ n: n++, pid: process.pid }));
    client.sendOutputEvent("out1", m).catch((err: Error) => console.error(`send failed: ${err.message}`));
  }, 100);
}

main().catch((err: unknown) => {
  console.error(`sender failed: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
