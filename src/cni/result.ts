/**
 * What the plugin prints, per spec version. Pure.
 *
 * - 0.3.0, 0.3.1, 0.4.0: `ips[].version` ("4" or "6") is required; interfaces carry no MTU.
 * - 1.0.0: `ips[].version` is gone.
 * - 1.1.0: interfaces may carry `mtu`.
 * Errors are `{cniVersion, code, msg, details?}`; VERSION answers `{cniVersion,
 * supportedVersions}`.
 */
import { parseCidr } from "../net/cidr.ts";
import { CniCode, CniError, isSupportedVersion, LATEST_VERSION, SUPPORTED_VERSIONS, type CniResult, type CniVersion, type PrevResult, type ResultIp } from "./spec.ts";

const isLegacy = (v: CniVersion): boolean => v.startsWith("0.");

/** The result JSON object for `version` (key order as in the spec's examples). */
export function formatResult(r: CniResult, version: CniVersion): Record<string, unknown> {
  const interfaces = r.interfaces.map((i) => {
    const o: Record<string, unknown> = { name: i.name };
    if (i.mac !== undefined) o.mac = i.mac;
    if (i.mtu !== undefined && version === "1.1.0") o.mtu = i.mtu;
    if (i.sandbox !== undefined) o.sandbox = i.sandbox;
    return o;
  });
  const ips = r.ips.map((ip) => {
    const o: Record<string, unknown> = {};
    if (isLegacy(version)) o.version = String(parseCidr(ip.address).family);
    o.address = ip.address;
    if (ip.gateway !== undefined) o.gateway = ip.gateway;
    if (ip.interface !== undefined) o.interface = ip.interface;
    return o;
  });
  const out: Record<string, unknown> = { cniVersion: version, interfaces, ips };
  if (r.routes.length) out.routes = r.routes.map((rt) => (rt.gw !== undefined ? { dst: rt.dst, gw: rt.gw } : { dst: rt.dst }));
  if (r.dns && Object.keys(r.dns).length) out.dns = r.dns;
  return out;
}

/** A previous plugin's result in weft's shape (the version field of old results dropped). */
export function fromPrevResult(p: PrevResult | undefined): CniResult {
  if (!p) return { interfaces: [], ips: [], routes: [] };
  const ips: ResultIp[] = (p.ips ?? []).map((ip) => {
    const o: ResultIp = { address: ip.address };
    if (ip.gateway !== undefined) o.gateway = ip.gateway;
    if (ip.interface !== undefined) o.interface = ip.interface;
    return o;
  });
  const out: CniResult = {
    interfaces: (p.interfaces ?? []).map((i) => ({ ...i })),
    ips,
    routes: (p.routes ?? []).map((r) => ({ ...r })),
  };
  if (p.dns) out.dns = p.dns;
  return out;
}

/**
 * `ours` appended to a chained previous result: interface indexes shifted past the
 * previous interfaces, our DNS winning only where we have some (spec: a plugin passes
 * prevResult through, modified).
 */
export function mergeResults(prev: CniResult, ours: CniResult): CniResult {
  const shift = prev.interfaces.length;
  const out: CniResult = {
    interfaces: [...prev.interfaces, ...ours.interfaces],
    ips: [...prev.ips, ...ours.ips.map((ip) => (ip.interface !== undefined ? { ...ip, interface: ip.interface + shift } : ip))],
    routes: [...prev.routes, ...ours.routes],
  };
  const dns = ours.dns ?? prev.dns;
  if (dns) out.dns = dns;
  return out;
}

/** The error JSON object. */
export function formatError(e: CniError, version: CniVersion = LATEST_VERSION): Record<string, unknown> {
  const out: Record<string, unknown> = { cniVersion: version, code: e.code, msg: e.message };
  if (e.details !== undefined) out.details = e.details;
  return out;
}

/** Any thrown value as a CniError (unexpected ones become code 999, "internal", with the message). */
export function toCniError(e: unknown): CniError {
  if (e instanceof CniError) return e;
  return new CniError(CniCode.Internal, (e as Error)?.message ?? String(e), (e as Error)?.stack);
}

/**
 * VERSION's answer. `requested` is the cniVersion the runtime sent (if any): echoed when
 * weft speaks it, else weft's latest.
 */
export function versionInfo(requested?: unknown): Record<string, unknown> {
  return { cniVersion: isSupportedVersion(requested) ? requested : LATEST_VERSION, supportedVersions: [...SUPPORTED_VERSIONS] };
}
