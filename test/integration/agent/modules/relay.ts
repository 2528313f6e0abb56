// Takes what arrives on input "in1" and sends it on output "up" with the manifest's GREETING as a property.
import { Message, ModuleClient } from "azure-iot-device";
import { Mqtt } from "azure-iot-device-mqtt";

async function main(): Promise<void> {
  const client = await ModuleClient.fromEnvironment(Mqtt);
  client.on("error", (err: Error) => {
    console.error(`client error: ${err.message}`);
    process.exit(2);
  });
  client.on("inputMessage", (input: string, msg: Message) => {
    client.complete(msg, () => undefined);
    const out = new Message(msg.data as Buffer);
    out.properties.add("via", "relay");
    out.properties.add("input", input);
    out.properties.add("greeting", process.env.GREETING ?? "");
    client.sendOutputEvent("up", out).catch((err: Error) => console.error(`send failed: ${err.message}`));
  });
  await client.open();
  console.log("relay connected");
}

main().catch((err: unknown) => {
  console.error(`relay failed: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
