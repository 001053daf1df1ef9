/**
 * Leveled logger with a component on every line. `text` is for terminals, `json` (one
 * object per line) for journald and collectors. Loggers are passed down, never global.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFormat = "text" | "json";
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger whose lines carry `component` (e.g. "gossip", "backend.vxlan"). */
  child(component: string): Logger;
}

const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  component?: string;
  /** Where lines go; stderr by default so stdout stays for command output. */
  write?: (line: string) => void;
  now?: () => Date;
}

/** A logger whose level (and that of every child made from it) can be changed while it runs (a reload). */
export interface LevelledLogger extends Logger {
  setLevel(level: LogLevel): void;
  level(): LogLevel;
}

export function createLogger({
  level = "info",
  format = "text",
  component = "weft",
  write = (line) => process.stderr.write(line + "\n"),
  now = () => new Date(),
}: LoggerOptions = {}): LevelledLogger {
  return makeLogger({ level }, format, component, write, now);
}

/** `shared` holds the level for a logger and all its children. */
function makeLogger(shared: { level: LogLevel }, format: LogFormat, component: string, write: (line: string) => void, now: () => Date): LevelledLogger {
  const emit = (lvl: LogLevel, msg: string, fields?: LogFields) => {
    if (rank[lvl] < rank[shared.level]) return;
    if (format === "json") {
      write(JSON.stringify({ time: now().toISOString(), level: lvl, component, msg, ...normalise(fields) }));
      return;
    }
    const extra = fields ? Object.entries(normalise(fields)).map(([k, v]) => ` ${k}=${formatValue(v)}`).join("") : "";
    write(`${now().toISOString()} ${lvl.toUpperCase().padEnd(5)} [${component}] ${msg}${extra}`);
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (c) => makeLogger(shared, format, `${component}.${c}`, write, now),
    setLevel: (l) => void (shared.level = l),
    level: () => shared.level,
  };
}

/** The log levels, for validating a level read from a file. */
export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

/** A logger that drops everything (tests that do not inspect logs). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silentLogger,
};

function normalise(fields?: LogFields): LogFields {
  if (!fields) return {};
  const out: LogFields = {};
  for (const [k, v] of Object.entries(fields)) {
    out[k] = v instanceof Error ? v.message : typeof v === "bigint" ? v.toString() : v;
  }
  return out;
}

function formatValue(v: unknown): string {
  if (typeof v === "string") return /[\s"=]/.test(v) || v === "" ? JSON.stringify(v) : v;
  return JSON.stringify(v) ?? String(v);
}
