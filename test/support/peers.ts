import { spawnSync } from "node:child_process";

/**
 * For tests that need a real Debian peer (mosquitto, strace, …): returns a skip reason naming the install
 * command when the peer is missing, or false when the test can run. Use as `test(name, { skip: needPeer(...) })`.
 */
export function needPeer(pkg: string, command = pkg): string | false {
  const present = spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
  return present ? false : `needs the Debian package ${pkg}: install with 'sudo apt-get install -y ${pkg}'`;
}

/** True in `npm run soak`: full-size chaos and load instead of CI's bounded runs. */
export const SOAK = process.env.STRATA_SOAK === "1";
