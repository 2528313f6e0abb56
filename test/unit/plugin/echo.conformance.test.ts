// What a plugin's own conformance test looks like: three lines (a package imports "strata" instead).
import { pluginConformanceSuite } from "../../../core/index.js";
import { goodPlugin } from "./conformance-fixtures.js";
pluginConformanceSuite(goodPlugin, { invalidConfig: { port: -1 } });
