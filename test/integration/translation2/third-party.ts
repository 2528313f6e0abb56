// Installs the standalone example package (examples/strata-plugin-json-udp) the way a third party's would be:
// into `<home>/node_modules/strata-plugin-json-udp`, next to `strata` (this build's core), `tsyringe` and
// `zod` as its peers, then builds it with its own tsconfig. Synchronous, so a test file can run the
// package's own conformance test at load time.
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** This build's output folder (dist or dist-<name>) and the repository it was built from. */
export const DIST = join(__dirname, "..", "..", "..");
export const REPO = join(DIST, "..");
export const EXAMPLE = join(REPO, "examples", "strata-plugin-json-udp");
export const PACKAGE = "strata-plugin-json-udp";

export interface Installed {
  /** The folder whose node_modules holds the package (what `packageDirs` / the working directory must be). */
  home: string;
  packageDir: string;
}

export function installExamplePackage(): Installed {
  const home = mkdtempSync(join(tmpdir(), "strata-third-party-"));
  const modules = join(home, "node_modules");
  // `strata`: this build's core, exactly one copy (the loader requires the plugin from here, the gateway is ours).
  const strata = join(modules, "strata");
  mkdirSync(strata, { recursive: true });
  const core = join(DIST, "core", "index.js");
  writeFileSync(join(strata, "package.json"), JSON.stringify({ name: "strata", version: "0.1.0", main: "index.js", types: "index.d.ts" }));
  writeFileSync(join(strata, "index.js"), `module.exports = require(${JSON.stringify(core)});\n`);
  writeFileSync(join(strata, "index.d.ts"), `export * from ${JSON.stringify(core)};\n`);
  // Peers and build tools resolve to the repository's copies (symlinks: Node and tsc follow them to one copy).
  for (const dep of ["tsyringe", "zod", "@types/node"]) {
    mkdirSync(join(modules, dep, ".."), { recursive: true });
    symlinkSync(join(REPO, "node_modules", dep), join(modules, dep), "dir");
  }
  const packageDir = join(modules, PACKAGE);
  for (const part of ["package.json", "tsconfig.json", "src", "test"]) cpSync(join(EXAMPLE, part), join(packageDir, part), { recursive: true });
  execFileSync(process.execPath, [join(REPO, "node_modules", "typescript", "bin", "tsc"), "-p", packageDir], { stdio: "pipe" });
  return { home, packageDir };
}
