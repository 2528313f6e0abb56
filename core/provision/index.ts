// Public face of core/provision: factory provisioning of gateways (enrollment groups at the root, registration
// forwarded hop by hop, the first-boot driver and its state file).
export * from "./types.js";
export { deriveDeviceKey, registrationResource, registrationToken, sasProofProblem, x509Proof, x509ProofChain } from "./derive.js";
export { EnrollmentGroups, GROUP_NAME, summary, type EnrollmentInput } from "./enrollments.js";
export { decide, type Decision, type DecideContext } from "./decide.js";
export { gatewayBundle, type IssuerFacts } from "./bundle.js";
export { ProvisionServer, provisionRequestSchema, type ProvisionServerOptions } from "./server.js";
export { ProvisionService, type ProvisionServiceOptions } from "./service.js";
export { provisioningFileSchema, locateProvisioningFile, readProvisioningFile, type ProvisioningFile, type LocateOptions, type Located } from "./file.js";
export { readState, writeState, type ProvisionState, type ProvisionStep, PROVISION_STEPS } from "./state.js";
export { runProvisioning, provisionStatusLine, type DriverOptions, type DriverResult } from "./driver.js";
