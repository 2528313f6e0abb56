import { definePlugin, TOKENS } from "../../core/index.js";
import { modbusConfigSchema } from "./config.js";
import { ModbusTcpPlugin, PLUGIN_NAME } from "./plugin.js";

export { modbusConfigSchema, type ModbusConfig, type ModbusDevice, type RegisterSpec } from "./config.js";
export { ModbusTcpPlugin, PLUGIN_NAME } from "./plugin.js";
export { modbusConverter, decode, encode, type RegisterReading, type RegisterWrite } from "./converter.js";

/** `[plugins.modbus-tcp]`: Modbus TCP register maps → telemetry; desired properties and `write` → register writes. */
export default definePlugin({
  manifest: { name: PLUGIN_NAME, apiVersion: "^1", configSchema: modbusConfigSchema },
  register(scope) {
    scope.register(TOKENS.Plugin, { useClass: ModbusTcpPlugin });
  },
});
