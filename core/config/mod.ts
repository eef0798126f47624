/**
 * Configuration: the `config/stage.json` schema, loading, `${ENV}`
 * substitution and precise errors.
 *
 * @module
 */

export { ConfigError, type ConfigErrorInit, describeValue, formatKeyPath } from "./config_error.ts";
export { type EnvLookup, substituteEnv, type SubstituteEnvOptions } from "./env_substitution.ts";
export { loadConfig, parseConfig } from "./load_config.ts";
export {
  GATEWAY_TARGET_PATTERN,
  MAX_READ_BYTES,
  MAX_TIMER_MS,
  MAX_WORKERS,
  ORIGIN_PATTERN,
  PLATFORM_KEYS,
  type RawStageConfig,
  STAGE_ID_PATTERN,
  STAGE_KINDS,
  stageConfigSchema,
  type StageKind,
} from "./schema.ts";
export {
  type AdminConfig,
  type AgentConfig,
  type ClusterAuth,
  type ClusterConfig,
  DEFAULT_ADMIN_LISTEN,
  DEFAULT_AGENT_TIMEOUT_MS,
  DEFAULT_FLOW,
  DEFAULT_GATEWAY,
  DEFAULT_GATEWAY_LISTEN,
  DEFAULT_MAX_PENDING,
  DEFAULT_PACKAGES,
  DEFAULT_RELOAD_SECONDS,
  DEFAULT_TICKET_LIMIT,
  DEFAULT_USER_AGENT,
  type FlowConfig,
  type GatewayConfig,
  type IndexConfig,
  type ProcessGroup,
  type RouterConfig,
  type ScriptConfig,
  type ServicesConfig,
  type StageConfig,
  type StageRef,
  type ThreadsConfig,
  type TicketConfig,
  type WorkerPermissions,
} from "./stage_config.ts";
