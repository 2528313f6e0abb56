// The first hop's part of the answer: a gateway's config, certificates and trust bundle, as `strata child add`
// writes them (same bundle format, so `childInstall` puts it in place on the new gateway).
import { isIP } from "node:net";
import { stringify as toToml } from "smol-toml";
import { BUNDLE_FORMAT, type ChildBundle } from "../cli/child.js";
import type { StrataConfig } from "../config/schema.js";
import type { IdentityRecord } from "../identity/types.js";
import { issueCaCert, issueServerCert, type CaMaterial } from "../pki/certs.js";
import type { GatewaySettings } from "./types.js";

export interface IssuerFacts {
  config: StrataConfig;
  edgeCa: CaMaterial;
  trustBundle: string;
  /** The ports this gateway really listens on (tests bind port 0). */
  httpsPort: number;
  amqpPort?: number;
}

/** Builds the bundle for gateway `record` (SAS: its key goes in; X.509: the new gateway keeps its own). */
export async function gatewayBundle(record: IdentityRecord, settings: GatewaySettings, issuer: IssuerFacts): Promise<ChildBundle> {
  const { config } = issuer;
  const hostname = settings.hostname;
  const ips = [...new Set([settings.address, isIP(hostname) ? hostname : undefined].filter((x): x is string => !!x && isIP(x) !== 0))];
  const server = await issueServerCert(issuer.edgeCa, { hostnames: isIP(hostname) ? [] : [hostname], ips });
  const childCa = await issueCaCert(issuer.edgeCa, { commonName: `Strata edge CA ${record.id}` });
  const listenAddress = config.listen.address;
  const sas = record.auth.type === "sas";
  const listen = { ...(settings.address ? { address: settings.address } : {}), ...settings.listen };
  const toml = toToml({
    hub: config.hub,
    device_id: record.id,
    hostname,
    data_dir: settings.data_dir ?? "/var/lib/strata",
    identity: sas ? { key_file: "identity.key" } : { key_file: "identity-x509.key.pem", cert_file: "identity-x509.cert.pem" },
    parent: {
      hostname: config.hostname,
      ...(listenAddress !== "0.0.0.0" && listenAddress !== "::" ? { address: listenAddress } : {}),
      https_port: issuer.httpsPort,
      ...(issuer.amqpPort ? { amqp_port: issuer.amqpPort } : {}),
    },
    tls: {
      cert_file: "server.chain.pem",
      key_file: "server.key.pem",
      ca_file: "trust-bundle.pem",
      edge_ca_cert_file: "edge-ca.cert.pem",
      edge_ca_key_file: "edge-ca.key.pem",
    },
    ...(Object.keys(listen).length ? { listen } : {}),
  });
  const files: ChildBundle["files"] = {
    "strata.toml": { content: `# strata gateway ${record.id}, provisioned through ${config.device_id} (enrollment)\n${toml}\n`, mode: 0o644 },
    "server.chain.pem": { content: server.chain, mode: 0o644 },
    "server.key.pem": { content: server.key, mode: 0o600 },
    "edge-ca.cert.pem": { content: childCa.chain, mode: 0o644 },
    "edge-ca.key.pem": { content: childCa.key, mode: 0o600 },
    "trust-bundle.pem": { content: issuer.trustBundle, mode: 0o644 },
  };
  if (record.auth.type === "sas") files["identity.key"] = { content: `${record.auth.primaryKey}\n`, mode: 0o600 };
  return { format: BUNDLE_FORMAT, childId: record.id, parent: config.device_id, createdAt: new Date().toISOString(), files };
}
